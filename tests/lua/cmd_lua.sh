#!/bin/sh
# tests/lua/cmd_lua.sh — the `entrasync lua` developer command: print reaches
# stdout, arguments reach `arg` and `...`, exit codes, usage errors, and the
# error format (kind, file:line, traceback) on stderr.
. tests/lib.sh

print_output() { printf 'hello\t42\tnil\nargs\tone\ttwo\t2\n' | cmp -s - "$T_OUT/out"; }
traceback_lines() {
  grep -q '^stack traceback:' "$T_OUT/err" &&
    grep -q "fail.lua:3: in local 'check'" "$T_OUT/err" &&
    grep -q 'fail.lua:5: in main chunk' "$T_OUT/err"
}

expect_ok cmd_lua_print_to_stdout -- lua tests/lua/cmd_lua/print.lua one two
check cmd_lua_print_output print_output
check cmd_lua_nothing_on_stderr test ! -s "$T_OUT/err"

expect_exit cmd_lua_error_traceback 1 "^entrasync: lua: lua error: tests/lua/cmd_lua/fail\.lua:3: bad input" -- lua tests/lua/cmd_lua/fail.lua
check cmd_lua_traceback_lines traceback_lines
check cmd_lua_output_before_error grep -qx before "$T_OUT/out"

expect_exit cmd_lua_syntax_error 1 "tests/lua/cmd_lua/syntax\.lua:2: .*near" -- lua tests/lua/cmd_lua/syntax.lua
expect_exit cmd_lua_missing_file 1 "cannot read Lua file: tests/lua/cmd_lua/nope\.lua: No such file or directory" -- lua tests/lua/cmd_lua/nope.lua
expect_exit cmd_lua_no_file 2 "missing FILE" -- lua
expect_exit cmd_lua_unknown_option 2 "unknown option '--memory' for 'lua' \(did you mean '--memory-mb'\?\)" -- lua --memory 5 x.lua
expect_exit cmd_lua_bad_limit 2 "invalid value" -- lua --instructions -5 x.lua
expect_ok cmd_lua_help -- lua --help
check cmd_lua_help_text grep -q "usage: entrasync lua" "$T_OUT/out"
expect_ok cmd_lua_shebang_skipped -- lua tests/lua/cmd_lua/shebang.lua
expect_exit cmd_lua_default_limits 1 "instruction budget exceeded \(10000000 instructions\)" -- lua tests/lua/cmd_lua/big.lua
expect_exit cmd_lua_default_memory 1 "memory limit exceeded \(64 MiB\)" -- lua --instructions 50000000 tests/lua/cmd_lua/big.lua
expect_ok cmd_lua_limits_flags -- lua --instructions 50000000 --memory-mb 128 tests/lua/cmd_lua/big.lua
expect_exit cmd_lua_small_budget 1 "instruction budget exceeded \(1000 instructions\)" -- lua --instructions 1000 tests/lua/cmd_lua/big.lua
