#!/bin/sh
# test_contrib — the files in contrib/: the systemd units pass
# `systemd-analyze verify` with no complaint and `systemd-analyze security`
# rates them at most 2.0 (both skipped when systemd-analyze is missing);
# the hardening the docs promise is there; the example config, with the
# secrets from the example environment file, passes `entrasync check`; the
# cron line is a valid cron.d entry whose command parses; the config
# examples of README.md, the man page and docs/operations.md pass `check`.
. tests/lib.sh

C=contrib
W=$T_OUT/contrib
mkdir -p "$W/units"

# ---- hardening promised by docs/operations.md
for u in entrasync.service entrasync-daemon.service; do
  for line in "User=entrasync" "ProtectSystem=strict" "NoNewPrivileges=yes" "StateDirectory=entrasync" \
              "EnvironmentFile=/etc/entrasync/entrasync.env" "ProtectHome=yes" "PrivateTmp=yes" "CapabilityBoundingSet="; do
    check "$u has $line" grep -qx "$line" "$C/systemd/$u"
  done
done
check "the timer runs hourly with a random delay" \
  sh -c "grep -qx 'OnCalendar=hourly' $C/systemd/entrasync.timer && grep -q '^RandomizedDelaySec=' $C/systemd/entrasync.timer"
check "the daemon unit signals only the daemon on stop (KillMode=mixed)" grep -qx "KillMode=mixed" "$C/systemd/entrasync-daemon.service"
check "the daemon unit reloads with SIGHUP" grep -q '^ExecReload=.*-HUP \$MAINPID' "$C/systemd/entrasync-daemon.service"
check "the sysusers entry makes the entrasync user" grep -q "^u entrasync " "$C/systemd/entrasync.sysusers.conf"
check "the env example tells to keep it mode 0600" grep -q "0600" "$C/entrasync.env.example"

# ---- systemd-analyze
if command -v systemd-analyze >/dev/null 2>&1; then
  # the units name the installed binary and the secrets file: point them at this build
  : >"$W/units/env"
  for f in "$C"/systemd/*.service "$C"/systemd/*.timer; do
    sed -e "s#/usr/local/bin/entrasync#$ENTRASYNC#g" -e "s#/etc/entrasync/entrasync.env#$W/units/env#" "$f" \
      >"$W/units/$(basename "$f")"
  done
  for u in entrasync.service entrasync.timer entrasync-daemon.service; do
    systemd-analyze verify --man=no "$W/units/$u" >"$W/verify.$u" 2>&1; rc=$?
    check "systemd-analyze verify $u: exit 0" test $rc = 0
    check "systemd-analyze verify $u: no warning" sh -c "! grep . '$W/verify.$u'"
    [ -s "$W/verify.$u" ] && sed 's/^/    /' "$W/verify.$u"
  done
  for u in entrasync.service entrasync-daemon.service; do
    check "systemd-analyze security $u: exposure at most 2.0" \
      sh -c "systemd-analyze security --offline=true --threshold=20 '$W/units/$u' >/dev/null 2>&1"
  done
else
  echo "skip - systemd-analyze verify (systemd-analyze not installed)"
fi

# ---- the example config with the example secrets passes `entrasync check`
mkdir -p "$W/etc/policies"
cp "$C/entrasync.lua.example" "$W/etc/entrasync.lua"
cp policies/default.lua "$W/etc/policies/default.lua"
cp policies/default.lua "$W/etc/policies/contoso.lua"
( set -a; . "$C/entrasync.env.example"; set +a
  "$ENTRASYNC" --config "$W/etc/entrasync.lua" check >"$W/check.out" 2>&1 )
check "the example config passes entrasync check" grep -q "^config OK" "$W/check.out"
( unset ENTRASYNC_GRAPH_SECRET SYNCRO_API_KEY
  "$ENTRASYNC" --config "$W/etc/entrasync.lua" check >"$W/check2.out" 2>&1 )
check "without the environment file, check names the missing secret" grep -q "ENTRASYNC_GRAPH_SECRET" "$W/check2.out"

# ---- the cron line
LINE=$(grep -E '^[0-9*@]' "$C/cron/entrasync.cron")
check "cron: one job line" test "$(grep -cE '^[0-9*@]' "$C/cron/entrasync.cron")" = 1
check "cron: minute 17 of every hour, as entrasync" \
  sh -c "printf '%s\n' \"\$1\" | grep -Eq '^17 \* \* \* \* entrasync '" _ "$LINE"
CMD=$(printf '%s\n' "$LINE" | cut -d' ' -f7-)
check "cron: the command parses (sh -n)" sh -n -c "$CMD"
check "cron: it sources the environment file and runs sync then metrics" \
  sh -c "printf '%s\n' \"\$1\" | grep -q '\. /etc/entrasync/entrasync.env.*entrasync sync.*entrasync metrics --output'" _ "$CMD"

# ---- the config examples of the docs pass `entrasync check`: README's
# Configuration block, the man page's CONFIGURATION block, and the operations
# guide's tenant entries and "For example" block (each after README's, which
# has the rest a config needs)
mkdir -p "$W/docs/policies"
cp policies/default.lua "$W/docs/policies/default.lua"
cp policies/default.lua "$W/docs/policies/contoso.lua"
block() {  # block FILE START_PATTERN: the first ```lua block after the line matching START_PATTERN
  awk -v start="$2" '$0 ~ start { f = 1 } f && /^```lua/ { g = 1; next } g && /^```/ { exit } g' "$1"
}
block README.md '^## Configuration' >"$W/docs/readme.lua"
awk '/^\.SH CONFIGURATION/ { f = 1 } f && /^\.nf/ { g = 1; next } g && /^\.fi/ { exit } g && !/^\.(RS|RE)/' docs/entrasync.1 |
  sed -e 's/\\-/-/g' -e 's/\\(->/->/g' >"$W/docs/man.lua"
{ cat "$W/docs/readme.lua"; block docs/operations.md '^A tenant entry maps'; } >"$W/docs/ops_tenants.lua"
{ cat "$W/docs/readme.lua"; block docs/operations.md '^For example:'; } >"$W/docs/ops_example.lua"
for ex in readme man ops_tenants ops_example; do
  check "docs config example $ex.lua is there" test "$(grep -c . "$W/docs/$ex.lua")" -gt 2
  ( cd "$W/docs" && ENTRASYNC_GRAPH_SECRET=s SYNCRO_API_KEY=k "$ENTRASYNC" --config "$ex.lua" check >"$ex.out" 2>&1 )
  check "docs config example $ex.lua passes entrasync check" grep -q "^config OK" "$W/docs/$ex.out"
  grep -q "^config OK" "$W/docs/$ex.out" || sed 's/^/    /' "$W/docs/$ex.out"
done
