#!/bin/sh
# The end-to-end cases, run inside the test VM as the test user, each in a
# scope of its own (Delegate=yes) under the systemd user manager (guest_run.sh starts them:
# `guest_cases.sh CASE`). trun runs from source under the deno binary on the
# per-run disk (/e2e), containers from the busybox rootfs there. One line
# per result on stdout:
#   E2E PASS|FAIL|SKIP <case> <detail>
# Deno runs some 30-40x slower under software emulation, so each case is one
# or two trun commands that prove one thing about enforcement.
set -u
R=/e2e/rootfs
UID_=${E2E_UID:-1000}
SVC=/sys/fs/cgroup/user.slice/user-$UID_.slice/user@$UID_.service
cd /e2e/trun || exit 1

say() { echo "E2E $*"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# A hung command fails its case (exit 124) instead of the whole run.
# The VM has no network helper (no passt) and the cases need no network:
# `run` gets --network none, so no warning mixes into what they read.
trun() {
  if [ "$1" = run ]; then
    shift
    set -- run --network none "$@"
  fi
  timeout -k 10 "${E2E_CMD_TIMEOUT:-240}" deno run -A --quiet --no-prompt /e2e/trun/main.ts "$@"
}
# One line of output for a report: newlines as " | ", at most 300 characters.
oneline() { tr '\n' '|' | sed 's/|$//; s/|/ | /g' | cut -c1-300; }
# The value after "KEY " in a flat-keyed cgroup file's text ($1), or empty.
field() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 }'; }

# --- what works before any resource flag: placement of the caller, trun, a container
case_user_scope() {
  own=$(sed -n 's/^0:://p' /proc/self/cgroup)
  if [ -w "/sys/fs/cgroup$own/cgroup.procs" ] && case "$own" in "${SVC#/sys/fs/cgroup}"/*) true ;; *) false ;; esac; then
    say "PASS user-scope in $own (writable)"
  else
    say "FAIL user-scope in $own, not a writable cgroup under ${SVC#/sys/fs/cgroup}"
  fi
}

case_trun_info() {
  t=$(ms)
  info=$(trun info --format json 2>&1)
  rc=$?
  version=$(printf '%s\n' "$info" | sed -n '/"cgroups"/,/}/s/^ *"version": "\([^"]*\)".*/\1/p' | head -1)
  if [ $rc -eq 0 ] && [ "$version" = v2 ]; then
    say "PASS trun-info cgroups v2 ($(($(ms) - t)) ms): $(printf '%s\n' "$info" | sed -n '/"cgroups"/,/^  }/p' | tr -s ' \n' ' ' | cut -c1-400)"
  else
    say "FAIL trun-info exit $rc, cgroups version '$version': $(printf '%s\n' "$info" | oneline)"
  fi
}

case_run_rootless() {
  t=$(ms)
  out=$(trun run --rm --rootfs "$R" sh -c 'echo hello-from-container; id -u; cat /proc/self/cgroup' 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^hello-from-container$'; then
    say "PASS run-rootless ($(($(ms) - t)) ms): $(printf '%s\n' "$out" | oneline)"
  else
    say "FAIL run-rootless exit $rc: $(printf '%s\n' "$out" | oneline)"
  fi
}

# --- the limits (issue 10): each needs the flags in `trun run`
case_limits_visible() {
  t=$(ms)
  out=$(trun run --rm --memory 64m --cpus 0.5 --pids-limit 50 --rootfs "$R" \
    cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max 2>&1)
  rc=$?
  want=$(printf '67108864\n50000 100000\n50')
  if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then
    say "PASS limits-visible memory.max, cpu.max, pids.max inside: $(printf '%s\n' "$out" | oneline) ($(($(ms) - t)) ms)"
  else
    say "FAIL limits-visible exit $rc, want '67108864 | 50000 100000 | 50', got: $(printf '%s\n' "$out" | oneline)"
  fi
}

# dd's 50 MB buffer cannot fit in 10 MB: the kernel's OOM killer ends it, the
# container's memory.events counts it, and the same again as the container's
# main process makes `trun run` exit 137 (128 + SIGKILL), as Docker does.
case_memory_oom() {
  out=$(trun run --rm --memory 10m --rootfs "$R" sh -c \
    'dd if=/dev/zero of=/dev/null bs=50M count=1 2>/dev/null; echo dd-status=$?
     cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.events
     exec dd if=/dev/zero of=/dev/null bs=50M count=1' 2>&1)
  rc=$?
  oom_kill=$(field "$out" oom_kill)
  if [ $rc -eq 137 ] && printf '%s\n' "$out" | grep -q '^dd-status=137$' && [ "${oom_kill:-0}" -ge 1 ]; then
    say "PASS memory-oom dd of 50 MB killed under --memory 10m, oom_kill $oom_kill, trun exit 137"
  else
    say "FAIL memory-oom trun exit $rc (want 137), oom_kill '${oom_kill}': $(printf '%s\n' "$out" | oneline)"
  fi
}

# A fork bomb, bounded so that without a limit it ends by itself: a shell
# that forks background sleeps until fork fails (ash then exits). With 5 pids
# (this shell, the bomb's shell, 3 sleeps) it stops early; the outer shell
# then kills the rest with builtins only, since it cannot fork either.
case_pids_limit() {
  out=$(trun run --rm --pids-limit 5 --rootfs "$R" sh -c \
    'sh -c "i=0; while [ \$i -lt 40 ]; do sleep 60 & i=\$((i+1)); echo started \$i; done" 2>&1
     while read -r k v; do echo "pids.max=$k"; done </sys/fs/cgroup/pids.max
     while read -r k v; do echo "events $k $v"; done </sys/fs/cgroup/pids.events
     kill -9 -1' 2>&1)
  rc=$?
  started=$(printf '%s\n' "$out" | grep -c '^started ')
  max_events=$(printf '%s\n' "$out" | awk '$1 == "events" && $2 == "max" { print $3 }')
  if [ "$started" -le 4 ] && [ "${max_events:-0}" -ge 1 ] && printf '%s\n' "$out" | grep -q '^pids.max=5$'; then
    say "PASS pids-limit fork bomb stopped after $started forks, pids.events max $max_events"
  else
    say "FAIL pids-limit $started of 40 forks succeeded, pids.events max '${max_events}', exit $rc: $(printf '%s\n' "$out" | tail -5 | oneline)"
  fi
}

# A busy loop for 4 s of wall time under --cpus 0.1 gets about 0.4 s of CPU;
# the tolerance is loose (emulated CPU, timer slack): under 1.2 s, and
# cpu.stat must show throttling.
case_cpus_throttle() {
  out=$(trun run --rm --cpus 0.1 --rootfs "$R" sh -c \
    'sh -c "while :; do :; done" & p=$!; sleep 4; kill $p
     cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.stat' 2>&1)
  rc=$?
  usage=$(field "$out" usage_usec)
  throttled=$(field "$out" nr_throttled)
  if [ $rc -eq 0 ] && [ -n "$usage" ] && [ "$usage" -lt 1200000 ] && [ "${throttled:-0}" -ge 1 ]; then
    say "PASS cpus-throttle 4 s busy loop used $((usage / 1000)) ms of CPU, throttled $throttled times"
  else
    say "FAIL cpus-throttle exit $rc, usage_usec '${usage}' (want < 1200000), nr_throttled '${throttled}': $(printf '%s\n' "$out" | oneline)"
  fi
}

# --- a long-running container: stats, pause, unpause
case_live() {
  name=e2e-live
  id=$(trun run -d --name "$name" --memory 64m --rootfs "$R" sh -c \
    'i=0; while :; do i=$((i+1)); echo $i; sleep 0.5; done' 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    say "FAIL detached-run exit $rc: $(printf '%s\n' "$id" | oneline)"
    say "SKIP stats no detached container"
    say "SKIP pause-unpause no detached container"
  else
    say "PASS detached-run $id"
    t=$(ms)
    out=$(trun stats --no-stream --format json "$name" 2>&1)
    rc=$?
    mem=$(printf '%s\n' "$out" | sed -n 's/.*"MemUsage": *"\([^"]*\)".*/\1/p' | head -1)
    pids=$(printf '%s\n' "$out" | sed -n 's/.*"PIDs": *"\{0,1\}\([0-9]*\).*/\1/p' | head -1)
    case "$mem" in
    0B* | 0.00B*) memok=no ;;
    *" / 64MiB") memok=yes ;;
    *) memok=no ;;
    esac
    if [ $rc -eq 0 ] && [ "$memok" = yes ] && [ "${pids:-0}" -ge 1 ]; then
      say "PASS stats MemUsage '$mem', PIDs $pids ($(($(ms) - t)) ms): $(printf '%s\n' "$out" | oneline)"
    else
      say "FAIL stats exit $rc, want MemUsage 'N / 64MiB' with N > 0 and PIDs >= 1: $(printf '%s\n' "$out" | oneline)"
    fi

    last() { trun logs "$name" 2>/dev/null | tail -1; }
    status() { trun inspect --format '{{.State.Status}}' "$name" 2>&1; }
    out=$(trun pause "$name" 2>&1)
    rc=$?
    s1=$(status)
    n1=$(last)
    sleep 3
    n2=$(last)
    out2=$(trun unpause "$name" 2>&1)
    rc2=$?
    s2=$(status)
    sleep 3
    n3=$(last)
    if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$s1" = paused ] && [ "$s2" = running ] &&
      [ -n "$n1" ] && [ "$n1" = "$n2" ] && [ "${n3:-0}" -gt "$n2" ]; then
      say "PASS pause-unpause counter held at $n2 while paused, $n3 after unpause"
    else
      say "FAIL pause-unpause pause exit $rc ($(printf '%s\n' "$out" | oneline)), status '$s1', counter $n1 then $n2; unpause exit $rc2 ($(printf '%s\n' "$out2" | oneline)), status '$s2', counter $n3"
    fi
    trun rm -f "$name" >/dev/null 2>&1 || say "FAIL rm-f could not remove $name"
  fi
}

# --- what a limit costs `trun run` (E2E_BENCH=N runs of each, interleaved)
case_bench() {
  # One unmeasured run first: deno's caches of the sources on this disk.
  trun run --rm --rootfs "$R" true >/dev/null 2>&1
  plain= limits= i=0
  while [ $i -lt "$E2E_BENCH" ]; do
    t=$(ms)
    trun run --rm --rootfs "$R" true >/dev/null 2>&1
    rc=$?
    plain="$plain $(($(ms) - t))/$rc"
    t=$(ms)
    trun run --rm --memory 64m --cpus 0.5 --rootfs "$R" true >/dev/null 2>&1
    rc=$?
    limits="$limits $(($(ms) - t))/$rc"
    i=$((i + 1))
  done
  say "BENCH run-plain ms/exit:$plain"
  say "BENCH run-memory-cpus ms/exit:$limits"
}

case "${1:-}" in
user-scope | trun-info | run-rootless | limits-visible | memory-oom | pids-limit | cpus-throttle | live | bench)
  "case_$(echo "$1" | tr - _)"
  ;;
*)
  echo "guest_cases.sh: unknown case '${1:-}'" >&2
  exit 2
  ;;
esac
