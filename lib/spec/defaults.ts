/**
 * The defaults Docker and Podman give every container, as OCI spec data:
 * the standard mounts, the 14 capabilities, and the masked and read-only
 * paths (moby's `oci/defaults.go`, Podman's `pkg/specgen/generate`).
 */
import type { Mount } from "./types.ts";

/** Docker's default capabilities. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_RAW",
  "CAP_SYS_CHROOT",
  "CAP_MKNOD",
  "CAP_AUDIT_WRITE",
  "CAP_SETFCAP",
];

/**
 * The masked paths, hidden behind /dev/null (files) or an empty read-only
 * tmpfs (dirs): Docker's list and Podman's (containers/common) together.
 * /proc/asound is masked as Docker does (Podman only makes it read-only).
 */
export const MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  "/sys/fs/selinux",
  "/sys/dev/block",
];

/** The read-only paths (Docker's and Podman's, the same but /proc/asound). */
export const READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/** What decides the standard mounts. */
export interface StandardMountOptions {
  /** The container has its own network namespace (sysfs can then be mounted fresh). */
  ownNetwork: boolean;
  /** The pts group (gid 5, "tty") is mapped inside the user namespace. */
  ttyGroupMapped: boolean;
  /** `--privileged`: /sys is writable, as Docker and Podman leave it. */
  privileged?: boolean;
}

/**
 * The standard mounts, in order: /proc, /dev, /dev/pts, /dev/shm,
 * /dev/mqueue, /sys. The engine adds the default device nodes on a tmpfs
 * /dev, as runc does.
 */
export function standardMounts(opts: StandardMountOptions): Mount[] {
  const pts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
  if (opts.ttyGroupMapped) pts.push("gid=5");
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: pts },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
      destination: "/dev/mqueue",
      type: "mqueue",
      source: "mqueue",
      options: ["nosuid", "noexec", "nodev"],
    },
    // sysfs can only be mounted by the owner of the network namespace;
    // sharing the host's network means binding the host's /sys instead (as
    // rootless Podman and runc do), read-only either way but with --privileged.
    opts.ownNetwork
      ? {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", opts.privileged ? "rw" : "ro"],
      }
      : {
        destination: "/sys",
        type: "bind",
        source: "/sys",
        options: ["rbind", "nosuid", "noexec", "nodev", opts.privileged ? "rw" : "ro"],
      },
  ];
}
