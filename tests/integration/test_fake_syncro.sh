#!/bin/sh
# tests/integration/test_fake_syncro.sh — runs the fake Syncro server's own
# self-test (tests/fakes/test_fake_syncro.py), one "ok - NAME"/"FAIL - NAME"
# line per unittest case, so tests/run.sh counts them.
cd "$(dirname "$0")/../.." || exit 2
if ! command -v python3 >/dev/null 2>&1; then
  echo "FAIL - fake_syncro: python3 not found"; exit 1
fi
python3 tests/fakes/test_fake_syncro.py --ok-lines
