/**
 * The container's standard filesystem: which filesystems go where, with
 * which options, and Docker's masked and read-only paths. Pure data; the
 * child program compiler turns it into mount ops (see mount(8), proc(5),
 * devpts in Documentation/filesystems/devpts.rst, sysfs(5)).
 */

/** A mount inside the container, target relative to the container root. */
export type MountSpec =
  | {
    kind: "fs";
    /** Filesystem type for fsopen(2): proc, tmpfs, devpts, mqueue, sysfs. */
    fstype: string;
    /** Absolute path inside the container. */
    target: string;
    /** fsconfig(2) string options (`mode` → `0755`); a null value sets a flag option. */
    options: Record<string, string | null>;
    /** Mount attributes. */
    attrs: MountAttrs;
    /** Refuse (true) or contain (false) symlinks on the target path. */
    noSymlinks: boolean;
  }
  | {
    kind: "bind";
    /** Host path (resolved before pivot_root, in trun's view of the host). */
    source: string;
    /** Absolute path inside the container. */
    target: string;
    /** Whether the target is a directory or a file (created if missing). */
    targetType: "dir" | "file";
    /** Bind the whole tree under source (MS_REC). */
    recursive: boolean;
    /** Mount attributes set on the new mount(s). */
    attrs: MountAttrs;
    /** Refuse (true) or contain (false) symlinks on the target path. */
    noSymlinks: boolean;
  };

/** Attributes of a mount (mount_setattr(2) MOUNT_ATTR_*). */
export interface MountAttrs {
  /** Read-only. */
  readOnly?: boolean;
  /** Ignore setuid bits. */
  nosuid?: boolean;
  /** No device access. */
  nodev?: boolean;
  /** No execution. */
  noexec?: boolean;
}

/** Device nodes bind-mounted from the host into the container's /dev. */
export const DEFAULT_DEVICES: readonly string[] = [
  "null",
  "zero",
  "full",
  "random",
  "urandom",
  "tty",
];

/** Symlinks in the container's /dev: name → link text. */
export const DEV_SYMLINKS: Readonly<Record<string, string>> = {
  fd: "/proc/self/fd",
  stdin: "/proc/self/fd/0",
  stdout: "/proc/self/fd/1",
  stderr: "/proc/self/fd/2",
  ptmx: "pts/ptmx",
  core: "/proc/kcore",
};

/** Docker's masked paths: hidden behind /dev/null (files) or an empty read-only tmpfs (dirs). */
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
];

/** Docker's read-only paths. */
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
}

/**
 * The standard mounts, in order: /proc, /dev and its devices, /dev/pts,
 * /dev/shm, /dev/mqueue, /sys. Symlinks on these targets are refused: an
 * image has no business making /proc or /dev a link.
 */
export function standardMounts(opts: StandardMountOptions): MountSpec[] {
  const fs = (
    fstype: string,
    target: string,
    options: Record<string, string | null>,
    attrs: MountAttrs,
  ): MountSpec => ({
    kind: "fs",
    fstype,
    target,
    options,
    attrs,
    noSymlinks: true,
  });
  const mounts: MountSpec[] = [
    fs("proc", "/proc", {}, { nosuid: true, nodev: true, noexec: true }),
    fs("tmpfs", "/dev", { mode: "755", size: "65536k" }, { nosuid: true }),
  ];
  for (const dev of DEFAULT_DEVICES) {
    mounts.push({
      kind: "bind",
      source: `/dev/${dev}`,
      target: `/dev/${dev}`,
      targetType: "file",
      recursive: false,
      attrs: { nosuid: true, noexec: true },
      noSymlinks: true,
    });
  }
  const ptsOptions: Record<string, string | null> = {
    newinstance: null,
    ptmxmode: "0666",
    mode: "0620",
  };
  if (opts.ttyGroupMapped) ptsOptions.gid = "5";
  mounts.push(
    fs("devpts", "/dev/pts", ptsOptions, { nosuid: true, noexec: true }),
    fs("tmpfs", "/dev/shm", { mode: "1777", size: "65536k" }, {
      nosuid: true,
      nodev: true,
      noexec: true,
    }),
    fs("mqueue", "/dev/mqueue", {}, { nosuid: true, nodev: true, noexec: true }),
  );
  // sysfs can only be mounted by the owner of the network namespace; sharing
  // the host's network means binding the host's /sys instead (as rootless
  // Podman and runc do), read-only either way.
  if (opts.ownNetwork) {
    mounts.push(
      fs("sysfs", "/sys", {}, { readOnly: true, nosuid: true, nodev: true, noexec: true }),
    );
  } else {
    mounts.push({
      kind: "bind",
      source: "/sys",
      target: "/sys",
      targetType: "dir",
      recursive: true,
      attrs: { readOnly: true, nosuid: true, nodev: true, noexec: true },
      noSymlinks: true,
    });
  }
  return mounts;
}

/** A `-v`/`--volume` bind mount. */
export interface VolumeSpec {
  /** Absolute host path. */
  source: string;
  /** Absolute container path. */
  target: string;
  /** `:ro`. */
  readOnly: boolean;
}

/**
 * Parses `-v HOST:CONTAINER[:OPTIONS]` (options: `ro`, `rw`, `z`/`Z` ignored).
 * Named volumes are not supported yet: the host part must be an absolute path.
 */
export function parseVolume(spec: string): VolumeSpec {
  const parts = spec.split(":");
  const [source, target, opts] = parts;
  if (parts.length < 2 || parts.length > 3 || !source || !target) {
    throw new Error(`invalid volume "${spec}": expected HOST-PATH:CONTAINER-PATH[:ro]`);
  }
  if (!source.startsWith("/")) {
    throw new Error(
      `invalid volume "${spec}": named volumes are not supported yet; give an absolute host path`,
    );
  }
  if (!target.startsWith("/")) {
    throw new Error(`invalid volume "${spec}": the container path "${target}" must be absolute`);
  }
  let readOnly = false;
  for (const o of (opts ?? "").split(",").filter((x) => x !== "")) {
    if (o === "ro") readOnly = true;
    else if (o === "rw") readOnly = false;
    else if (o === "z" || o === "Z") continue;
    else throw new Error(`invalid volume "${spec}": unknown option "${o}" (expected ro or rw)`);
  }
  return { source: normalizePath(source), target: normalizePath(target), readOnly };
}

/** Normalises an absolute path lexically: collapses `//`, `.` and `..` (never above `/`). */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return "/" + out.join("/");
}
