#!/usr/bin/env bash
# Delegates a cgroup v2 subtree to a user the way systemd's Delegate=yes
# does, for CI and for trying trun's cgroup support on a host without a
# systemd user manager (as root):
#
#   cgroup_delegate.sh create USER      makes <cgroup2>/trun-ci.<random>, owned by
#                                       USER (the directory and its cgroup.procs,
#                                       cgroup.subtree_control, cgroup.threads);
#                                       prints its path
#   cgroup_delegate.sh enter DIR CMD…   moves this shell into DIR, then runs CMD
#                                       (e.g. runuser -u USER -- …): CMD and its
#                                       children start inside the delegated cgroup
#   cgroup_delegate.sh remove DIR       kills what is left in DIR (cgroup.kill) and
#                                       removes it with its sub-cgroups
#
# It only makes and removes its own directory: the host's hierarchies are
# never mounted, unmounted or moved, and no controller is enabled.
set -euo pipefail

die() {
  echo "cgroup_delegate.sh: $*" >&2
  exit 1
}

# The cgroup2 mount: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid).
cgroup2_mount() {
  awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
    /proc/self/mountinfo | head -1
}

case "${1:-}" in
create)
  user=${2:?usage: cgroup_delegate.sh create USER}
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  mount=$(cgroup2_mount)
  [ -n "$mount" ] || die "no cgroup2 hierarchy is mounted"
  dir=$(mktemp -d "$mount/trun-ci.XXXXXX" 2>/dev/null) || {
    # mktemp chmods its directory, which cgroupfs allows; a kernel that
    # refuses it gets a plain mkdir.
    dir="$mount/trun-ci.$$.$RANDOM"
    mkdir "$dir"
  }
  chown "$user:" "$dir" "$dir/cgroup.procs" "$dir/cgroup.subtree_control" "$dir/cgroup.threads"
  chmod 0755 "$dir"
  echo "$dir"
  ;;
enter)
  dir=${2:?usage: cgroup_delegate.sh enter DIR CMD...}
  shift 2
  [ -f "$dir/cgroup.procs" ] || die "$dir is not a cgroup"
  echo $$ >"$dir/cgroup.procs"
  exec "$@"
  ;;
remove)
  dir=${2:?usage: cgroup_delegate.sh remove DIR}
  [ -d "$dir" ] || exit 0
  case "$(basename "$dir")" in
  trun-ci.*) ;;
  *) die "refusing to remove $dir: not made by this script" ;;
  esac
  if [ -e "$dir/cgroup.kill" ]; then echo 1 >"$dir/cgroup.kill" || true; fi
  # Deepest first; a cgroup is removed with rmdir once its processes are gone.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$dir" ] || exit 0
    sleep 0.2
  done
  die "could not remove $dir (processes still in it: $(find "$dir" -name cgroup.procs -exec cat {} + | tr '\n' ' '))"
  ;;
*)
  die "usage: cgroup_delegate.sh create USER | enter DIR CMD... | remove DIR"
  ;;
esac
