#!/usr/bin/env bash
# Builds the VM image for the end-to-end cgroup v2 tests (scripts/vm_e2e.ts):
# a Debian 12 root filesystem from Debian's packages only (debootstrap), with
# systemd, a lingering test user whose user@UID.service systemd delegates
# `cpu memory pids` to, and a unit that runs /e2e/run.sh from a second disk
# at boot and powers the machine off when it ends.
#
#   bash scripts/vm/build_image.sh OUTDIR
#
# Writes OUTDIR/rootfs.img (ext4, made with `mkfs.ext4 -d`), OUTDIR/vmlinuz
# and OUTDIR/initrd.img. Run as root (debootstrap, chroot). The runner caches
# OUTDIR keyed by a hash of this file, so any change here rebuilds the image.
set -euo pipefail

out=${1:?usage: build_image.sh OUTDIR}
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
TEST_USER=tester
TEST_UID=1000
SUBID_RANGE=100000:65536
IMAGE_SIZE=1200M
PACKAGES=(
  linux-image-cloud-amd64 # cgroup2, memcg, pids, CFS bandwidth, user namespaces; virtio
  systemd systemd-sysv
  dbus dbus-user-session # the user manager's bus: systemd-run --user
  libpam-systemd         # logind: lingering starts user@UID.service
  uidmap                 # newuidmap/newgidmap for rootless trun
  busybox-static         # the containers' root filesystem
  procps                 # ps, for the test log when something hangs
)

log() { printf 'build_image: %s\n' "$*" >&2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "build_image: must run as root (debootstrap)" >&2
  exit 1
fi

tmp=$(mktemp -d /var/tmp/trun-vm-build.XXXXXX)
trap 'rm -rf --one-file-system "$tmp"' EXIT
root=$tmp/root

log "debootstrap $SUITE from $MIRROR"
include=$(
  IFS=,
  echo "${PACKAGES[*]}"
)
debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
  tail -30 "$tmp/debootstrap.log" >&2
  exit 1
}

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

log "configuring"
echo trun-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,relatime 0 1\n/dev/vdb /e2e ext4 rw,relatime,nofail 0 0\n' >"$root/etc/fstab"
mkdir -p "$root/e2e"
# root without a password on the console, for debugging with `vm_e2e.ts --shell`.
in_root passwd -d root >/dev/null

# The test user, with subordinate ids, lingering (so user@UID.service starts
# at boot without a login) and Debian's delegation of cpu memory pids.
in_root useradd --create-home --uid "$TEST_UID" --shell /bin/sh \
  -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$TEST_USER"
echo "$TEST_USER:$SUBID_RANGE" >"$root/etc/subuid"
echo "$TEST_USER:$SUBID_RANGE" >"$root/etc/subgid"
mkdir -p "$root/var/lib/systemd/linger"
touch "$root/var/lib/systemd/linger/$TEST_USER"
if ! grep -rqs 'Delegate=.*memory' "$root/usr/lib/systemd/system/user@.service" \
  "$root/usr/lib/systemd/system/user@.service.d/"; then
  log "user@.service does not delegate memory; adding a drop-in"
  mkdir -p "$root/etc/systemd/system/user@.service.d"
  printf '[Service]\nDelegate=cpu cpuset io memory pids\n' \
    >"$root/etc/systemd/system/user@.service.d/delegate.conf"
fi

# The test unit: runs /e2e/run.sh once the user manager is up, its output on
# the serial console; the machine powers off when it ends, whatever happens.
# (SuccessAction=/FailureAction= belong in [Unit]: in [Service] systemd
# ignores them.)
cat >"$root/etc/systemd/system/trun-e2e.service" <<UNIT
[Unit]
Description=trun end-to-end tests
Wants=user@$TEST_UID.service
After=user@$TEST_UID.service systemd-user-sessions.service local-fs.target
ConditionPathExists=/e2e/run.sh
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
Environment=E2E_USER=$TEST_USER E2E_UID=$TEST_UID
ExecStart=/bin/sh /e2e/run.sh
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/trun-e2e.service \
  "$root/etc/systemd/system/multi-user.target.wants/trun-e2e.service"
# Quiet and fast boot: no login prompt on the console, no apt timers.
for unit in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer \
  apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-timesyncd.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
in_root apt-get clean
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/usr/share/doc" \
  "$root/usr/share/man" "$root/usr/share/locale"

log "copying the kernel and initrd"
mkdir -p "$out"
cp "$(ls "$root"/boot/vmlinuz-* | tail -1)" "$out/vmlinuz.tmp"
cp "$(ls "$root"/boot/initrd.img-* | tail -1)" "$out/initrd.img.tmp"

log "mkfs.ext4 -d ($IMAGE_SIZE)"
rm -f "$out/rootfs.img.tmp"
mkfs.ext4 -q -F -L trun-vm -d "$root" "$out/rootfs.img.tmp" "$IMAGE_SIZE"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/rootfs.img.tmp" "$out/rootfs.img"
log "wrote $out (kernel $(basename "$(ls "$root"/boot/vmlinuz-* | tail -1)"))"
