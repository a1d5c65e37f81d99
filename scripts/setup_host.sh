#!/usr/bin/env bash
# Prepares a Debian 12 host for trun's test suite: the packages the
# integration tests use, Deno, device permissions, and the unprivileged
# test user `truntest` with subordinate ids. Run as root; idempotent and
# non-interactive, so CI (.ci/run) calls it on every run and a second run
# changes nothing.
set -euo pipefail

DENO_VERSION=2.9.6
TEST_USER=truntest
SUBID_RANGE=300000:65536
PACKAGES=(
  busybox-static  # the test rootfs and fixture images
  uidmap          # newuidmap/newgidmap
  docker-registry # the registry the tests pull from
  fuse-overlayfs
  passt           # pasta
  iptables        # forwarding out of the user-defined networks' namespace
  slirp4netns
  hyperfine       # benchmarks
  iperf3          # network benchmark (bench/network_bench.ts)
  zstd
  binutils
  procps
  iproute2
  ca-certificates
  util-linux      # unshare, setsid, runuser
  tar
  runc            # the reference OCI runtime (engine tests)
  podman          # a real client of trun's runtime (podman --runtime)
  conmon
  catatonit
  crun            # benchmark peer
  zsh             # runs `trun completion zsh` (completion tests)
  fish            # runs `trun completion fish` (completion tests)
  keyutils        # keyctl: the session keyring tests (security tests)
  gcc             # builds the static syscall probe of the seccomp tests
  libc6-dev       # its static libc
  qemu-system-x86 # the pure cgroup v2 VM (deno task test:vm)
  debootstrap     # builds its Debian root filesystem
  e2fsprogs       # mkfs.ext4 -d: its disks
)

log() { printf 'setup_host: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup_host: must run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  # Keep services from starting during the install (there is often no init
  # system here at all); docker-registry must not take port 5000.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
  fi
  local rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null || rc=$?
  [ "$created_policy" -eq 1 ] && rm -f "$policy"
  return "$rc"
}

apt_install "${PACKAGES[@]}"

# The Debian registry service: stopped and disabled, the harness starts its own.
if [ -d /run/systemd/system ]; then
  if systemctl is-enabled --quiet docker-registry 2>/dev/null ||
    systemctl is-active --quiet docker-registry 2>/dev/null; then
    log "stopping and disabling the docker-registry service"
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
else
  pidfile=/var/run/docker-registry.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "stopping the docker-registry service"
    start-stop-daemon --stop --quiet --pidfile "$pidfile" --retry 5 || true
    rm -f "$pidfile"
  fi
  if command -v update-rc.d >/dev/null && ls /etc/rc[2-5].d/S*docker-registry >/dev/null 2>&1; then
    update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
fi
if command -v ss >/dev/null && ss -Hltn 'sport = :5000' | grep -q .; then
  log "warning: something still listens on port 5000 (the tests use their own ports)"
fi

# Deno, from npm (JSR and dl.deno.land are unreachable here).
if ! deno --version 2>/dev/null | grep -q "^deno ${DENO_VERSION} "; then
  if ! command -v npm >/dev/null; then apt_install npm; fi
  log "installing deno ${DENO_VERSION} from npm"
  npm install -g --no-fund --no-audit --loglevel=error "deno@${DENO_VERSION}" </dev/null
  hash -r
  if ! deno --version 2>/dev/null | grep -q "^deno ${DENO_VERSION} "; then
    echo "setup_host: deno ${DENO_VERSION} is not on PATH after npm install" >&2
    exit 1
  fi
fi
deno_bin=$(command -v deno)
case "$deno_bin" in
/usr/bin/* | /usr/local/bin/* | /bin/*) ;;
*)
  # The test user must find the same deno; link it where PATH looks.
  ln -sf "$(readlink -f "$deno_bin")" /usr/local/bin/deno
  ;;
esac

# Devices: without udev these are 0600; Debian's normal mode is 0666.
for dev in /dev/fuse /dev/net/tun; do
  if [ -c "$dev" ] && [ "$(stat -c %a "$dev")" != 666 ]; then
    log "chmod 0666 $dev"
    chmod 0666 "$dev"
  fi
done

# User namespaces for unprivileged users (on by default in Debian 12).
if [ -e /proc/sys/kernel/unprivileged_userns_clone ] &&
  [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
  log "enabling kernel.unprivileged_userns_clone"
  echo 1 >/proc/sys/kernel/unprivileged_userns_clone
fi
if [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 1)" = 0 ]; then
  log "raising user.max_user_namespaces"
  echo 15000 >/proc/sys/user/max_user_namespaces
fi

# The unprivileged test user. SUB_UID_COUNT=0 stops useradd from picking
# ranges of its own: the tests expect exactly the one below.
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
  log "creating user $TEST_USER"
  useradd --create-home --home-dir "/home/$TEST_USER" --shell /bin/bash \
    -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$TEST_USER"
fi
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  if ! grep -qx "$TEST_USER:$SUBID_RANGE" "$f"; then
    # A last line without a newline would swallow ours.
    if [ -s "$f" ] && [ -n "$(tail -c1 "$f")" ]; then echo >>"$f"; fi
    log "adding $TEST_USER:$SUBID_RANGE to $f"
    echo "$TEST_USER:$SUBID_RANGE" >>"$f"
  fi
done

# newuidmap/newgidmap need privilege: setuid root (Debian's default) or file caps.
for tool in newuidmap newgidmap; do
  path=$(command -v "$tool")
  caps=$( (command -v getcap >/dev/null && getcap "$path") || true)
  if [ ! -u "$path" ] && ! grep -q 'cap_set[ug]id' <<<"$caps"; then
    log "making $path setuid root"
    chown root:root "$path"
    chmod u+s "$path"
  fi
done

log "done (deno $(deno --version | head -1 | cut -d' ' -f2), user $TEST_USER $(id -u "$TEST_USER"))"
