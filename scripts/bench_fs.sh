#!/bin/sh
# A fresh ext4 file system for benchmarks that create many files (pulls):
# on an ext4 that has seen many thousands of files deleted, as a test
# machine's /tmp has, creating an inode scans the recently freed ones, and
# GNU tar alone slowed from 1.5 s to 9 s there, which hides every
# difference a benchmark looks for. Run as root; mounts a new loop file
# system at DIR (default /mnt/trun-bench), writable by everyone (sticky),
# replacing one mounted there before.
#
#   scripts/bench_fs.sh [DIR] [SIZE]        e.g. scripts/bench_fs.sh /mnt/trun-bench 40G
#   TMPDIR=/mnt/trun-bench deno run -A bench/pull_bench.ts --tar DEBIAN.tar
#   scripts/bench_fs.sh --remove [DIR]
set -eu
if [ "${1:-}" = "--remove" ]; then
  dir=${2:-/mnt/trun-bench}
  umount "$dir" 2>/dev/null || true
  rm -f "/var/tmp/$(basename "$dir").img"
  exit 0
fi
dir=${1:-/mnt/trun-bench}
size=${2:-20G}
img=/var/tmp/$(basename "$dir").img
umount "$dir" 2>/dev/null || true
rm -f "$img"
truncate -s "$size" "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$dir"
mount -o loop "$img" "$dir"
chmod 1777 "$dir"
echo "$dir: a fresh ext4 of $size (image $img)"
