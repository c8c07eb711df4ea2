#!/bin/sh
# test_install — `make install PREFIX=… DESTDIR=…` puts the binary, the
# runtime Lua, the default and example policies, the demo's fakes (not
# their self-tests) and the man page where docs/operations.md says, and
# the installed binary runs from anywhere: it reports its version and its
# demo finds the installed fakes and policy beside it (BINDIR/../share),
# even under a PREFIX other than the one it was built for.
. tests/lib.sh

D=$T_OUT/destdir
P=/opt/entrasync-test
if [ ! -x ./entrasync ]; then             # `make install` installs the plain build
  echo "skip - make install (no ./entrasync built in this tree)"
  exit 0
fi
make -s install PREFIX=$P DESTDIR="$D" >"$T_OUT/out" 2>"$T_OUT/err"; rc=$?
check "make install: exit 0" test $rc = 0
R=$D$P
for f in bin/entrasync share/entrasync/lua/entrasync/policy.lua share/entrasync/policies/default.lua \
         share/entrasync/policies/examples/by_group.lua share/entrasync/fakes/fake_graph.py \
         share/entrasync/fakes/fake_syncro.py share/entrasync/fakes/httptest.py share/man/man1/entrasync.1; do
  check "installed: $f" test -f "$R/$f"
done
check "the fakes' self-tests are not installed" sh -c "! ls '$R'/share/entrasync/fakes/test_* >/dev/null 2>&1"
check "installed binary is executable" test -x "$R/bin/entrasync"
( cd / && "$R/bin/entrasync" --version ) >"$T_OUT/out" 2>&1
check "installed binary runs from / (--version)" grep -q "^entrasync " "$T_OUT/out"
# The demo's first step is finding its fakes; with no python3 on PATH it
# stops right after, saying so. "cannot find the bundled fakes" would mean
# the install layout is not found.
( cd / && PATH=/nonexistent "$R/bin/entrasync" demo ) >"$T_OUT/out" 2>&1
check "installed demo finds its fakes and policy beside the binary" \
  sh -c "grep -q 'python3 is not installed' '$T_OUT/out' && ! grep -q 'cannot find the bundled fakes' '$T_OUT/out'"
