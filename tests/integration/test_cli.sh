#!/bin/sh
# test_cli — the command-line face: help and version, the command table,
# "did you mean" for commands and options, the shared option parser, global
# options before or after the command, exit codes and output errors.
. tests/lib.sh

# --- help and version
expect_exit "no arguments: short help, exit 2" 2 "usage: entrasync <command>" --
check "no arguments: the help goes to stderr" test ! -s "$T_OUT/out"
expect_exit "--help: full help, exit 0" 0 "Exit status:" -- --help
check "--help lists the commands" grep -Eq "^  check +Validate the config" "$T_OUT/out"
check "--help documents the exit codes" grep -q "2  usage or config error" "$T_OUT/out"
check "--help documents the global options" grep -q -- "--log-format FORMAT" "$T_OUT/out"
check "--help hides developer commands" sh -c "! grep -q '^  lua' '$T_OUT/out'"
cp "$T_OUT/out" "$T_OUT/help.txt"
expect_ok "help: exit 0" -- help
check "help prints the same as --help" cmp -s "$T_OUT/out" "$T_OUT/help.txt"
expect_ok "-h: exit 0" -- -h
check "-h prints the same as --help" cmp -s "$T_OUT/out" "$T_OUT/help.txt"
expect_exit "--version" 0 "^entrasync [0-9]+\.[0-9]+\.[0-9]+$" -- --version
expect_exit "version" 0 "^entrasync [0-9]+\.[0-9]+\.[0-9]+$" -- version
expect_exit "version takes no argument" 2 "^entrasync version: unexpected argument 'x'$" -- version x
expect_exit "help check" 0 "^usage: entrasync check \[--config FILE\]" -- help check
check "help check shows the global options" grep -q -- "--lua-dir DIR" "$T_OUT/out"
cp "$T_OUT/out" "$T_OUT/help-check.txt"
expect_ok "check --help: exit 0" -- check --help
check "check --help prints the same as help check" cmp -s "$T_OUT/out" "$T_OUT/help-check.txt"
expect_ok "check -h (after other options)" -- check --config nowhere.lua -h
check "check -h prints the same as help check" cmp -s "$T_OUT/out" "$T_OUT/help-check.txt"
expect_ok "--help check" -- --help check
check "--help check prints the same as help check" cmp -s "$T_OUT/out" "$T_OUT/help-check.txt"
expect_exit "help lua: hidden commands still have help" 0 "^usage: entrasync lua \[--instructions N\]" -- help lua
expect_exit "help of an unknown command" 2 "^entrasync: unknown command 'chek' \(did you mean 'check'\?\)$" -- help chek
expect_exit "help with two commands" 2 "^entrasync help: unexpected argument 'version'$" -- help check version

# --- unknown commands and options: one line, nearest spelling, exit 2
expect_exit "unknown command: suggestion" 2 "^entrasync: unknown command 'chek' \(did you mean 'check'\?\)$" -- chek
check "unknown command: one line" test "$(wc -l < "$T_OUT/err")" -eq 1
expect_exit "unknown command: prefix suggestion" 2 "did you mean 'version'\?" -- vers
expect_exit "unknown command: nothing close" 2 "^entrasync: unknown command 'frobnicate' \(see 'entrasync help'\)$" -- frobnicate
expect_exit "unknown option after the command" 2 \
  "^entrasync check: unknown option '--confg' \(did you mean '--config'\?\)$" -- check --confg x.lua
check "unknown option: one line" test "$(wc -l < "$T_OUT/err")" -eq 1
expect_exit "unknown option with =value" 2 "^entrasync check: unknown option '--log-levl' \(did you mean '--log-level'\?\)$" \
  -- check --log-levl=debug
expect_exit "unknown option before the command" 2 \
  "^entrasync: unknown option '--confg' \(did you mean '--config'\?\)$" -- --confg x.lua check
expect_exit "unknown option: help suggested" 2 "did you mean '--help'\?" -- check --hlep
expect_exit "unknown short option" 2 "^entrasync: unknown option '-x'$" -- -x check
expect_exit "unexpected argument" 2 "^entrasync check: unexpected argument 'extra'$" -- check extra
expect_exit "after -- an option is an argument" 2 "^entrasync check: unexpected argument '--config'$" -- check -- --config x

# --- option values
expect_exit "option needs a value (end of line)" 2 "option '--config' needs a value" -- check --config
expect_exit "option needs a value (next is an option)" 2 "option '--config' needs a value" -- check --config --log-level debug
expect_exit "option needs a value (empty =)" 2 "option '--config' needs a value" -- --config= check
expect_exit "--lua-dir needs a value" 2 "option '--lua-dir' needs a value \(--lua-dir DIR\)" -- version --lua-dir
expect_exit "invalid --log-level" 2 \
  "^entrasync: invalid value 'verbose' for --log-level \(expected error, warn, info, debug or trace\)$" -- --log-level verbose version
expect_exit "invalid --log-level: suggestion" 2 "did you mean 'warn'\?" -- version --log-level=warning
expect_exit "invalid --log-format" 2 "invalid value 'xml' for --log-format \(expected human or json\)" -- version --log-format xml
expect_exit "--lua-dir must be a directory" 2 "^entrasync: --lua-dir '/nonexistent/lua' is not a directory$" -- --lua-dir /nonexistent/lua version
expect_exit "global options before the command" 0 "^entrasync " -- --log-level debug --log-format=json --lua-dir tests version
expect_exit "global options after the command" 0 "^entrasync " -- version --log-level=trace --log-format human --lua-dir=tests

# --- output errors: a full disk is reported; a reader that went away is not
if [ -w /dev/full ]; then
  "$ENTRASYNC" --help >/dev/full 2>"$T_OUT/err"; rc=$?
  if [ $rc = 1 ] && grep -q "^entrasync: cannot write the output: No space left on device$" "$T_OUT/err"; then
    pass "write error on stdout: reported, exit 1"
  else
    fail "write error on stdout: reported, exit 1" "exit $rc"
  fi
fi
if command -v python3 >/dev/null 2>&1; then
  out=$(python3 - "$ENTRASYNC" <<'PY'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)                      # the reader is gone before we write
p = subprocess.run([sys.argv[1], "--help"], stdout=w, stderr=subprocess.PIPE)
print(p.returncode, len(p.stderr), p.stderr.decode()[:200])
PY
)
  if [ "$out" = "0 0 " ]; then pass "closed output pipe: quiet, exit 0"; else fail "closed output pipe: quiet, exit 0" "got: $out"; fi
fi

# no core files: a core would hold the client secret, the private key and the Syncro API key
core_limit() {  # [ENV=VALUE]: the soft core limit of a running entrasync, started with ulimit -c unlimited
  (ulimit -c unlimited 2>/dev/null || exit 0
   sleep 3 | env "$@" "$ENTRASYNC" lua /dev/stdin &
   p=$!   # the pipeline's last command (env execs entrasync)
   i=0
   while [ $i -lt 40 ] && ! readlink "/proc/$p/exe" 2>/dev/null | grep -q 'entrasync$'; do sleep 0.05; i=$((i + 1)); done
   sleep 1   # exec'd: give it the time to reach main and set its limit
   awk '/^Max core file size/ { print $5 }' "/proc/$p/limits"
   kill "$p" 2>/dev/null)
}
if (ulimit -c unlimited 2>/dev/null); then
  check "no core file: the soft limit is 0" test "$(core_limit X=1)" = 0
  if [ "${SANITIZED:-0}" = 1 ]; then
    echo "skip - ENTRASYNC_CORE=1 (AddressSanitizer sets the core limit to 0 itself)"
  else
    check "ENTRASYNC_CORE=1 keeps the limit given" test "$(core_limit ENTRASYNC_CORE=1)" = unlimited
  fi
else
  echo "skip - core limit (ulimit -c unlimited not allowed here)"
fi

# --- the man page and each command's help agree, and name options that exist.
# A command's options are those of its usage lines and of the lines its help
# starts with an option; each must be accepted by the command (an option the
# parser does not know is "unknown option", whatever else is wrong: here the
# config is missing) and named in the man page's entry for the command; each
# option of a man page synopsis line must be accepted too. (The global
# options have their own section.)
if command -v python3 >/dev/null 2>&1 && [ -f docs/entrasync.1 ]; then
  python3 - "$ENTRASYNC" docs/entrasync.1 <<'PY'
import re, subprocess, sys
es, man = sys.argv[1], open(sys.argv[2]).read()
OPT = r"(?<![\w-])--[a-z][a-z-]*[a-z]"
CMDS = [l.split()[0] for l in subprocess.run([es, "--help"], capture_output=True, text=True).stdout
        .split("Commands:\n")[1].split("\n\n")[0].splitlines()]
CMDS = [c for c in CMDS if c not in ("help", "version")]
GLOBAL = {"--config", "--lua-dir", "--log-level", "--log-format", "--help", "--version"}   # GLOBAL OPTIONS

def words_to_sub(words):
    """the subcommand words of a synopsis: literal words, an alternative's first, a PLACEHOLDER as x"""
    sub = []
    for w in words:
        if w.startswith("-") or w.startswith("["): break
        a = w.split("|")[0]
        sub.append(a if a.islower() else "x")
    return sub

def unknown(argv):
    r = subprocess.run([es] + argv + ["--config", "/nonexistent/entrasync.lua"], capture_output=True, text=True)
    return "unknown option" in r.stderr

def plain(roff):
    return re.sub(r"\\f[BIRP]", "", roff).replace("\\-", "-")

# the man page's COMMANDS section: entries ".TP" then ".B CMD ..." (then ".TQ" + ".B CMD ..." lines)
section = man.split("\n.SH COMMANDS", 1)[1].split("\n.SH ", 1)[0]
entries = {}   # command -> (its entries' text, [synopsis lines])
for e in section.split("\n.TP\n")[1:]:
    lines = e.split("\n")
    heads = [lines[0]]
    i = 1
    while i + 1 < len(lines) and lines[i] == ".TQ":
        heads.append(lines[i + 1]); i += 2
    heads = [plain(re.sub(r"^\.BR? ", "", h)).split() for h in heads]
    cmd = heads[0][0]
    text, syn = entries.get(cmd, ("", []))
    entries[cmd] = (text + plain(e), syn + heads)

for c in CMDS:
    h = subprocess.run([es, "help", c], capture_output=True, text=True).stdout.split("\nGlobal options")[0]
    subs, opts = [], set()
    for l in h.splitlines():
        m = re.match(r"^(?:usage:)?\s+entrasync %s\b(.*)" % c, l)
        if m:
            subs.append(words_to_sub(m.group(1).split()))
        if m or (subs and re.match(r"^\s+\[", l)):
            opts |= set(re.findall(OPT, l))
        m = re.match(r"^\s*(--[a-z][a-z-]*[a-z])(?=[\s:=]|$)", l)
        if m: opts.add(m.group(1))
    bad = sorted(o for o in opts if all(unknown([c] + s + [o]) for s in subs))
    print("%s - entrasync help %s: every option it lists is accepted%s"
          % ("FAIL" if bad else "ok", c, "\n    unknown: " + " ".join(bad) if bad else ""))
    text, syn = entries.get(c, ("", []))
    missing = sorted(o for o in opts - GLOBAL if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text))
    print("%s - the man page's entry for %s names every option of its help%s"
          % ("FAIL" if missing or not text else "ok", c, "\n    missing: " + " ".join(missing) if missing else
             ("\n    no entry" if not text else "")))
    bad = sorted(set(o for s in syn for o in re.findall(OPT, " ".join(s)) if unknown([c] + words_to_sub(s[1:]) + [o])))
    print("%s - the man page's synopsis of %s names options it accepts%s"
          % ("FAIL" if bad else "ok", c, "\n    unknown: " + " ".join(bad) if bad else ""))
PY
else
  echo "skip - the man page against the help (python3 or docs/entrasync.1 missing)"
fi
