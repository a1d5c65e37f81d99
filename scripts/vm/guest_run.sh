#!/bin/sh
# Runs inside the test VM as root, started at boot by trun-e2e.service (see
# build_image.sh) from the per-run disk mounted at /e2e. Checks what the
# tests stand on (pure cgroup v2, the user manager's delegated subtree), then
# runs guest_cases.sh as the test user inside the user manager's tree, in a
# transient scope (`systemd-run --user --scope`): a process elsewhere (this
# service's cgroup, a login session's scope) may not write to the subtree.
#
# Every result is one line on the serial console, read by scripts/vm_e2e.ts:
#   E2E PASS|FAIL|SKIP <case> <detail>     E2E BENCH ...     E2E END
set -u
E2E_USER=${E2E_USER:-tester}
E2E_UID=${E2E_UID:-1000}
E2E_BENCH=0
E2E_CASES=
E2E_SCOPE_PROPERTIES=
# Per-run settings from the runner (E2E_BENCH, E2E_CASES, E2E_SCOPE_PROPERTIES).
[ -f /e2e/config ] && . /e2e/config

say() { echo "E2E $*"; }
say "BEGIN kernel=$(uname -r) cpus=$(nproc) mem_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo) scope properties: -p Delegate=yes ${E2E_SCOPE_PROPERTIES}"

fs=$(stat -f -c %T /sys/fs/cgroup)
if [ "$fs" = cgroup2fs ]; then
  say "PASS vm-cgroup2 /sys/fs/cgroup is cgroup2 ($(cat /sys/fs/cgroup/cgroup.controllers))"
else
  say "FAIL vm-cgroup2 /sys/fs/cgroup is $fs, not cgroup2fs"
fi

# The user manager starts at boot because the user lingers; wait for its bus.
svc=/sys/fs/cgroup/user.slice/user-$E2E_UID.slice/user@$E2E_UID.service
bus=/run/user/$E2E_UID/bus
i=0
while [ $i -lt 120 ] && ! { [ -S "$bus" ] && systemctl is-active --quiet "user@$E2E_UID.service"; }; do
  sleep 1
  i=$((i + 1))
done
if [ -S "$bus" ] && [ -d "$svc" ]; then
  say "PASS vm-user-manager user@$E2E_UID.service is up after ${i}s of waiting"
else
  say "FAIL vm-user-manager no user@$E2E_UID.service or $bus after ${i}s ($(systemctl is-active "user@$E2E_UID.service"))"
  say "END"
  exit 0
fi

ctl=$(cat "$svc/cgroup.controllers")
missing=
for c in cpu memory pids; do
  case " $ctl " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
owner=$(stat -c %u "$svc")
if [ -z "$missing" ] && [ "$owner" = "$E2E_UID" ]; then
  say "PASS vm-delegation $svc offers: $ctl (owned by uid $owner)"
else
  say "FAIL vm-delegation $svc offers: $ctl; missing:${missing:- none}; owner uid $owner"
fi

# Each case runs as the test user, with what a login would give them (the
# runtime dir and the user bus), in a scope of its own under the user
# manager, as trun's README tells users to run it where systemd manages
# cgroups: `systemd-run --user --scope -p Delegate=yes trun …` (a plain
# scope gets only the controllers its slice enables: memory and pids, no
# cpu). Systemd's other defaults stay, OOMPolicy=stop included: a case
# whose scope systemd stops fails alone, with the status it ended with.
chown -R "$E2E_UID:$E2E_UID" /e2e 2>/dev/null || true
as_user() {
  runuser -u "$E2E_USER" -- env -i HOME="/home/$E2E_USER" USER="$E2E_USER" LOGNAME="$E2E_USER" \
    PATH=/e2e/bin:/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 NO_COLOR=1 TERM=dumb \
    XDG_RUNTIME_DIR="/run/user/$E2E_UID" DBUS_SESSION_BUS_ADDRESS="unix:path=$bus" \
    DENO_DIR=/e2e/deno_dir DENO_NO_UPDATE_CHECK=1 E2E_UID="$E2E_UID" E2E_BENCH="$E2E_BENCH" "$@"
}
cases="user-scope trun-info run-rootless limits-visible memory-oom pids-limit cpus-throttle live"
[ "$E2E_BENCH" -gt 0 ] && cases="$cases bench"
[ -n "$E2E_CASES" ] && cases=$E2E_CASES
find "$svc" -mindepth 1 -type d | sort >/run/e2e-cgroups-before
for c in $cases; do
  # shellcheck disable=SC2086 # the properties are words: -p A=B -p C=D
  as_user systemd-run --user --scope --quiet --unit="trun-e2e-$c" -p Delegate=yes \
    $E2E_SCOPE_PROPERTIES -- \
    sh /e2e/guest_cases.sh "$c" >/run/e2e-case.out 2>&1
  rc=$?
  cat /run/e2e-case.out
  if ! grep -Eq '^E2E (PASS|FAIL|SKIP|BENCH) ' /run/e2e-case.out; then
    say "FAIL $c ended with status $rc before reporting a result$([ $rc -eq 143 ] && echo ' (SIGTERM: was its scope stopped?)')"
  fi
done

# Cgroups of removed containers must go: new directories left under the user
# manager's subtree that name a container (an id, the test's names) are leaks.
find "$svc" -mindepth 1 -type d | sort >/run/e2e-cgroups-after
new_dirs=$(comm -13 /run/e2e-cgroups-before /run/e2e-cgroups-after | tr '\n' ' ')
leaks=$(printf '%s\n' $new_dirs | grep -E '[0-9a-f]{12}|e2e-live' | tr '\n' ' ')
if [ -z "$leaks" ]; then
  say "PASS cgroup-cleanup no container cgroup left (new dirs: ${new_dirs:-none})"
else
  say "FAIL cgroup-cleanup left behind: $leaks"
fi
# What systemd did about OOM kills and stopped units, for the log.
journalctl -b --no-pager -q -o cat 2>/dev/null | grep -Ei 'out of memory|oom-kill|oom killer|failed with result' | tail -8 |
  while IFS= read -r l; do say "INFO journal: $l"; done
say "END"
