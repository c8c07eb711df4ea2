#!/bin/sh
# tests/fakes/up.sh DIR — starts the loopback fakes for the test runner:
# generates the test PKI into DIR/certs (mkcerts.sh), starts each fake with
# its pid in DIR/NAME.pid, waits until it has written DIR/NAME.env (its
# addresses), then assembles DIR/env, which tests/run.sh sources.
# To add a fake: one more `start_fake NAME COMMAND...` line below; the
# command must write its exports to "$env_out" (set by start_fake) when ready.
# tests/fakes/down.sh DIR stops them all.
set -eu
dir=${1:?usage: up.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

sh "$here/mkcerts.sh" "$dir/certs"
{
  echo "export TEST_CA_FILE='$dir/certs/ca.pem'"
  echo "export TEST_OTHER_CA_FILE='$dir/certs/other-ca.pem'"
} > "$dir/env.tmp"

# start_fake NAME CMD...: runs CMD in the background (env_out=DIR/NAME.env in
# its environment and arguments), waits up to 10 s for DIR/NAME.env.
start_fake() {
  name=$1; shift
  env_out="$dir/$name.env"
  rm -f "$env_out"
  env_out="$env_out" "$@" >"$dir/$name.log" 2>&1 &
  echo $! > "$dir/$name.pid"
  i=0
  while [ ! -s "$env_out" ]; do
    if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
      echo "up.sh: fake $name died:"; cat "$dir/$name.log"; exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 200 ]; then echo "up.sh: fake $name not ready after 10 s"; cat "$dir/$name.log"; exit 1; fi
    sleep 0.05
  done
  cat "$env_out" >> "$dir/env.tmp"
}

start_fake httptest python3 "$here/httptest.py" --certs "$dir/certs" --env "$dir/httptest.env"

mv "$dir/env.tmp" "$dir/env"
echo "fakes up in $dir"
