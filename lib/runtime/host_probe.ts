/**
 * What this host offers a rootless container runtime, and what each missing
 * piece costs: the data behind `trun info` and the integration tests' skip
 * checks.
 *
 * Static checks by default (files and modes only, a few milliseconds):
 * user_namespaces(7) and its sysctls (`user.max_user_namespaces`, Debian's
 * `kernel.unprivileged_userns_clone`, Ubuntu's
 * `kernel.apparmor_restrict_unprivileged_userns`); newuidmap(1)/newgidmap(1)
 * with their setuid bit or capabilities(7) file capabilities
 * (`security.capability`, VFS_CAP_REVISION_2/3); subuid(5)/subgid(5);
 * overlayfs in a user namespace (Linux 5.11, Documentation/filesystems/
 * overlayfs.rst); fuse-overlayfs(1) and /dev/fuse; cgroups(7) v1/v2 from
 * proc(5) `/proc/self/cgroup` and `/proc/self/mountinfo` with the delegation
 * model of Documentation/admin-guide/cgroup-v2.rst; pasta(1)/slirp4netns(1)
 * and /dev/net/tun. With `active`, `unshare -Ur` really creates a user
 * namespace and mounts an overlay in it (`trun info --probe`).
 *
 * Every kernel path is read under `root` so tests build fake trees.
 */
import { type PathEnv, runtimeRoot, storeRoot } from "../store/paths.ts";
import {
  currentUserName,
  findExecutable,
  parseSubordinateIds,
  planIdMapping,
  rangesFor,
  suggestSubordinateRange,
} from "./idmap.ts";

/** A device node or file trun needs to open read-write. */
export interface DeviceAccess {
  /** The path, without the probe's `root` prefix. */
  path: string;
  /** Whether it exists. */
  exists: boolean;
  /** Permission bits as 4 octal digits (`"0666"`), or null when absent. */
  mode: string | null;
  /** Whether the probed user may open it read-write (by its mode, owner and groups). */
  accessible: boolean;
}

/** A setuid helper (newuidmap/newgidmap) and what lets it work. */
export interface HelperReport {
  /** Where it was found, or null. */
  path: string | null;
  /** Permission bits as 4 octal digits, or null when not found. */
  mode: string | null;
  /** Setuid bit set and owned by root. */
  setuidRoot: boolean;
  /**
   * Permitted file capabilities from `security.capability` (`["cap_setuid"]`),
   * `[]` when there are none, null when they could not be read.
   */
  fileCaps: string[] | null;
  /** Setuid root or the needed capability (`cap_setuid`/`cap_setgid`) is present. */
  usable: boolean;
}

/** A subordinate id range owned by the probed user. */
export interface IdSpan {
  /** First host id. */
  start: number;
  /** Number of ids. */
  count: number;
}

/** The probe's findings, grouped as `trun info` shows them. JSON keys are stable. */
export interface HostReport {
  /** The machine and the probed user. */
  host: {
    os: string;
    arch: string;
    /** `/proc/sys/kernel/osrelease`. */
    kernel: string | null;
    /** PRETTY_NAME from `/etc/os-release`. */
    distribution: string | null;
    user: { name: string; uid: number; gid: number };
  };
  /** Whether containers can get a user namespace and a full id mapping. */
  userNamespaces: {
    /** False when a sysctl forbids them or the kernel lacks them (for root: always true). */
    allowed: boolean;
    maxUserNamespaces: number | null;
    /** Debian's `kernel.unprivileged_userns_clone`, null when the kernel has no such sysctl. */
    unprivilegedUsernsClone: number | null;
    /** Ubuntu's `kernel.apparmor_restrict_unprivileged_userns`, null when absent. */
    apparmorRestrictUnprivilegedUserns: number | null;
    /** Active probe result: `unshare -Ur true`; "not tested" without `active`. */
    tested: "works" | "fails" | "not tested";
    newuidmap: HelperReport;
    newgidmap: HelperReport;
    subuidRanges: IdSpan[];
    subgidRanges: IdSpan[];
    /** The mode `trun run` would use (see lib/runtime/idmap.ts). */
    idMapping: "subordinate" | "single" | "host";
  };
  /** Where images and containers live, and how root file systems get mounted. */
  storage: {
    storeRoot: string | null;
    storeFilesystem: string | null;
    runtimeRoot: string | null;
    runtimeFilesystem: string | null;
    kernelOverlay: {
      /** `registered` in /proc/filesystems, loadable `module`, or `missing`. */
      filesystem: "registered" | "module" | "missing";
      /** Kernel ≥ 5.11 (overlay in a user namespace); true for root, which needs none. */
      kernelSupportsUserns: boolean;
      /** `works`/`fails` when tested; else `expected` or `unavailable` from static checks. */
      status: "works" | "fails" | "expected" | "unavailable";
      tested: boolean;
    };
    fuseOverlayfs: string | null;
    devFuse: DeviceAccess;
  };
  /** Which cgroup hierarchy this host has and whether trun may create cgroups in it. */
  cgroups: {
    /** `v2` (only cgroup2), `hybrid` (cgroup2 beside v1 hierarchies), `v1` or `none`. */
    version: "v2" | "hybrid" | "v1" | "none";
    /** Where cgroup2 is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`). */
    v2Mount: string | null;
    /** Controllers on cgroup v1 hierarchies. */
    v1Controllers: string[];
    /** The process's cgroup2 path (from `/proc/self/cgroup`). */
    ownCgroup: string | null;
    /** `cgroup.controllers` of the own cgroup: what can be delegated below it. */
    controllers: string[];
    /** `cgroup.subtree_control` of the own cgroup: what is enabled for children. */
    subtreeControl: string[];
    /** Whether the user may create cgroups in and move processes into the own cgroup. */
    writable: boolean;
    /** A writable systemd `user@UID.service` cgroup (delegated), or null. */
    userServiceCgroup: string | null;
  };
  /** What gives containers a network. */
  network: {
    pasta: string | null;
    slirp4netns: string | null;
    devNetTun: DeviceAccess;
  };
  /** One line per missing piece: what it costs and how to fix it. */
  problems: string[];
}

/** Where and as whom {@link probeHost} looks; defaults are the real host and caller. */
export interface ProbeOptions {
  /** Prefix for /proc, /sys, /etc, /dev, /lib/modules and the PATH directories. */
  root?: string;
  /** Default `Deno.uid()`. */
  uid?: number;
  /** Default `Deno.gid()`. */
  gid?: number;
  /** Supplementary groups; default from `/proc/self/status`. */
  groups?: number[];
  /** Default: /etc/passwd, then USER/LOGNAME. */
  userName?: string;
  /** The PATH searched for helpers (default `$PATH`). */
  pathEnv?: string;
  /** Identity and environment for the store and runtime paths (lib/store/paths.ts). */
  paths?: PathEnv;
  /** Run `unshare` to test user namespaces and overlay for real (spawns processes). */
  active?: boolean;
  /** Reads `security.capability` of a file (default: lgetxattr through ffi/libc.ts). */
  readFileCaps?: (path: string) => Uint8Array | null;
}

/** One line of /proc/PID/mountinfo (proc(5)). */
export interface MountEntry {
  /** The mount's root within its file system (cgroup namespaces make it non-`/`). */
  root: string;
  /** Where it is mounted. */
  mountPoint: string;
  /** File system type (`cgroup2`, `ext4`, `fuse.sshfs`). */
  fsType: string;
  /** Per-superblock options (for v1 cgroups: the controllers). */
  superOptions: string[];
}

/** Parses proc(5) mountinfo text; octal escapes (`\040`) in paths are decoded. */
export function parseMountInfo(text: string): MountEntry[] {
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    out.push({
      root: unescape(fields[3] ?? ""),
      mountPoint: unescape(fields[4] ?? ""),
      fsType: fields[dash + 1] ?? "",
      superOptions: (fields[dash + 3] ?? "").split(","),
    });
  }
  return out;
}

/** The type of the file system holding `path`: the last-mounted, longest matching mount point. */
export function filesystemOf(path: string, mounts: readonly MountEntry[]): string | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === "/" || path === mp || path.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best?.fsType ?? null;
}

/** capabilities(7) names by number, for reporting file capabilities. */
const CAP_NAMES = [
  "cap_chown",
  "cap_dac_override",
  "cap_dac_read_search",
  "cap_fowner",
  "cap_fsetid",
  "cap_kill",
  "cap_setgid",
  "cap_setuid",
  "cap_setpcap",
  "cap_linux_immutable",
  "cap_net_bind_service",
  "cap_net_broadcast",
  "cap_net_admin",
  "cap_net_raw",
  "cap_ipc_lock",
  "cap_ipc_owner",
  "cap_sys_module",
  "cap_sys_rawio",
  "cap_sys_chroot",
  "cap_sys_ptrace",
  "cap_sys_pacct",
  "cap_sys_admin",
  "cap_sys_boot",
  "cap_sys_nice",
  "cap_sys_resource",
  "cap_sys_time",
  "cap_sys_tty_config",
  "cap_mknod",
  "cap_lease",
  "cap_audit_write",
  "cap_audit_control",
  "cap_setfcap",
  "cap_mac_override",
  "cap_mac_admin",
  "cap_syslog",
  "cap_wake_alarm",
  "cap_block_suspend",
  "cap_audit_read",
  "cap_perfmon",
  "cap_bpf",
  "cap_checkpoint_restore",
];

/**
 * Decodes a `security.capability` value (struct vfs_cap_data, little-endian:
 * magic_etc, then permitted/inheritable words; revision 1 has one 32-bit
 * word each, revisions 2 and 3 two, revision 3 adds the namespace root uid).
 * Returns the permitted capabilities and the effective flag, or null when
 * the value is not a capability set.
 */
export function parseFileCaps(
  value: Uint8Array,
): { permitted: string[]; effective: boolean } | null {
  if (value.length < 12) return null;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const magic = view.getUint32(0, true);
  const revision = magic & 0xff000000;
  const words = revision === 0x01000000
    ? 1
    : revision === 0x02000000 || revision === 0x03000000
    ? 2
    : 0;
  if (words === 0 || value.length < 4 + words * 8) return null;
  const permitted: string[] = [];
  for (let w = 0; w < words; w++) {
    const bits = view.getUint32(4 + w * 8, true);
    for (let b = 0; b < 32; b++) {
      if (bits & (1 << b)) permitted.push(CAP_NAMES[w * 32 + b] ?? `cap_${w * 32 + b}`);
    }
  }
  return { permitted, effective: (magic & 1) === 1 };
}

/** The stat fields the access checks read (a subset of Deno.FileInfo). */
export type Owned = { mode: number | null; uid: number | null; gid: number | null };

/** The rwx bits that apply to `who`: owner, else group (primary or supplementary), else other. */
function permBits(st: Owned, who: { uid: number; groups: readonly number[] }): number {
  const mode = st.mode ?? 0;
  if (st.uid === who.uid) return (mode >> 6) & 7;
  if (st.gid !== null && who.groups.includes(st.gid)) return (mode >> 3) & 7;
  return mode & 7;
}

/** Whether `who` may open a file with this stat read-write, by its mode bits (root always may). */
export function canReadWrite(st: Owned, who: { uid: number; groups: readonly number[] }): boolean {
  return who.uid === 0 || (permBits(st, who) & 6) === 6;
}

/** Whether `who` may create entries in a directory with this stat (write and search). */
function canWriteDir(st: Owned, who: { uid: number; groups: readonly number[] }): boolean {
  return who.uid === 0 || (permBits(st, who) & 3) === 3;
}

const octal = (mode: number | null) => ((mode ?? 0) & 0o7777).toString(8).padStart(4, "0");

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    // Absent (an older kernel, another distribution) or unreadable: reported as unknown.
    return null;
  }
}

function readInt(path: string): number | null {
  const text = readText(path);
  if (text === null) return null;
  const n = Number(text.trim());
  return Number.isInteger(n) ? n : null;
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

function deviceAccess(root: string, path: string, who: { uid: number; groups: number[] }) {
  const st = statOrNull(`${root}${path}`);
  return {
    path,
    exists: st !== null,
    mode: st ? octal(st.mode) : null,
    accessible: st !== null && canReadWrite(st, who),
  };
}

async function defaultReadFileCaps(): Promise<(path: string) => Uint8Array | null> {
  try {
    const { lgetxattr } = await import("../../ffi/libc.ts");
    return (path) => lgetxattr(path, "security.capability");
  } catch {
    // FFI not permitted (deno run without --allow-ffi): caps are reported as unknown.
    return () => {
      throw new Error("cannot read file capabilities without FFI");
    };
  }
}

function helperReport(
  root: string,
  path: string | null,
  needed: string,
  readCaps: (path: string) => Uint8Array | null,
): HelperReport {
  if (path === null) {
    return { path, mode: null, setuidRoot: false, fileCaps: null, usable: false };
  }
  const st = statOrNull(`${root}${path}`);
  const setuidRoot = st !== null && ((st.mode ?? 0) & 0o4000) !== 0 && st.uid === 0;
  let fileCaps: string[] | null = null, capable = false;
  try {
    const raw = readCaps(`${root}${path}`);
    const caps = raw === null ? null : parseFileCaps(raw);
    fileCaps = caps?.permitted ?? [];
    capable = caps !== null && caps.effective && caps.permitted.includes(needed);
  } catch {
    // Unreadable caps stay null ("unknown"); setuid alone still decides.
  }
  return {
    path,
    mode: st ? octal(st.mode) : null,
    setuidRoot,
    fileCaps,
    usable: setuidRoot || capable,
  };
}

/** `6.18.44-fc` → [6, 18]; null when the release does not start with numbers. */
function kernelVersion(release: string | null): [number, number] | null {
  const m = release?.match(/^(\d+)\.(\d+)/);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function overlayFilesystem(
  root: string,
  release: string | null,
): "registered" | "module" | "missing" {
  const fs = readText(`${root}/proc/filesystems`) ?? "";
  if (fs.split("\n").some((l) => l.trim().split(/\s+/).pop() === "overlay")) return "registered";
  if (release) {
    const dir = `${root}/lib/modules/${release}`;
    if (/(^|\/)overlay\.ko/m.test(readText(`${dir}/modules.builtin`) ?? "")) return "registered";
    for (const ext of ["", ".xz", ".zst", ".gz"]) {
      if (statOrNull(`${dir}/kernel/fs/overlayfs/overlay.ko${ext}`)) return "module";
    }
  }
  return "missing";
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    })
      .output();
    const stderr = new TextDecoder().decode(out.stderr).trim().replaceAll("\n", "; ");
    return { ok: out.success, stderr };
  } catch (e) {
    return { ok: false, stderr: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Tries a user namespace and an overlay mount in it with `unshare -Urm`
 * (a single-id mapping is enough for overlay). The scratch directories go
 * next to the store when it exists (its file system is the one that
 * matters), else in the temp dir; the mount dies with the namespace.
 */
async function activeProbe(unshare: string, near: string | null) {
  const userns = await run(unshare, ["-Ur", "true"]);
  if (!userns.ok) return { userns, overlay: null };
  let dir: string;
  try {
    dir = await Deno.makeTempDir(
      near ? { dir: near, prefix: ".probe-" } : { prefix: "trun-probe-" },
    );
  } catch {
    dir = await Deno.makeTempDir({ prefix: "trun-probe-" });
  }
  try {
    for (const d of ["lower", "upper", "work", "merged"]) await Deno.mkdir(`${dir}/${d}`);
    const opts = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work,userxattr`;
    const overlay = await run(unshare, [
      "-Urm",
      "mount",
      "-t",
      "overlay",
      "overlay",
      "-o",
      opts,
      `${dir}/merged`,
    ]);
    return { userns, overlay };
  } finally {
    // overlay leaves work/work with mode 0000, which a recursive remove cannot list.
    await Deno.chmod(`${dir}/work/work`, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The cgroup v1 controllers (cgroups(7)); other super options of a v1 mount
 * (`xattr`, `name=systemd`, `clone_children`) are not controllers.
 */
const V1_CONTROLLERS = new Set([
  "blkio",
  "cpu",
  "cpuacct",
  "cpuset",
  "devices",
  "freezer",
  "hugetlb",
  "memory",
  "misc",
  "net_cls",
  "net_prio",
  "perf_event",
  "pids",
  "rdma",
]);

/** The cgroup part of the report, from mountinfo, /proc/self/cgroup and the cgroup files. */
function probeCgroups(
  root: string,
  who: { uid: number; groups: number[] },
  mounts: readonly MountEntry[],
): HostReport["cgroups"] {
  const v2 = mounts.filter((m) => m.fsType === "cgroup2");
  const v1 = mounts.filter((m) => m.fsType === "cgroup");
  const v1Controllers = [
    ...new Set(v1.flatMap((m) => m.superOptions.filter((o) => V1_CONTROLLERS.has(o)))),
  ].sort();
  const main = v2.find((m) => m.mountPoint === "/sys/fs/cgroup") ?? v2[0] ?? null;
  const version = main ? (v1.length > 0 ? "hybrid" : "v2") : v1.length > 0 ? "v1" : "none";
  const report: HostReport["cgroups"] = {
    version,
    v2Mount: main?.mountPoint ?? null,
    v1Controllers,
    ownCgroup: null,
    controllers: [],
    subtreeControl: [],
    writable: false,
    userServiceCgroup: null,
  };
  if (!main) return report;
  const line = (readText(`${root}/proc/self/cgroup`) ?? "").split("\n")
    .find((l) => l.startsWith("0::"));
  if (line === undefined) return report;
  const own = line.slice(3).trim() || "/";
  report.ownCgroup = own;
  // Under a cgroup namespace the mount's root is a prefix of the path the kernel shows.
  const rel = main.root !== "/" && own.startsWith(main.root) ? own.slice(main.root.length) : own;
  const dir = `${root}${main.mountPoint}${rel === "/" ? "" : rel}`;
  const words = (f: string) => (readText(`${dir}/${f}`) ?? "").split(/\s+/).filter((w) => w);
  report.controllers = words("cgroup.controllers");
  report.subtreeControl = words("cgroup.subtree_control");
  const dirSt = statOrNull(dir), procs = statOrNull(`${dir}/cgroup.procs`);
  report.writable = dirSt !== null && procs !== null && canWriteDir(dirSt, who) &&
    canReadWrite(procs, who);
  if (who.uid !== 0) {
    const svc = `/user.slice/user-${who.uid}.slice/user@${who.uid}.service`;
    const svcSt = statOrNull(`${root}${main.mountPoint}${svc}`);
    if (svcSt && canWriteDir(svcSt, who)) report.userServiceCgroup = svc;
  }
  return report;
}

function storagePath(get: () => string): { path: string | null; error: string | null } {
  try {
    return { path: get(), error: null };
  } catch (e) {
    return { path: null, error: e instanceof Error ? e.message : String(e) };
  }
}

/** The file system of `path`, or of its nearest existing ancestor (the store may not exist yet). */
function filesystemOfPath(path: string | null, mounts: readonly MountEntry[]): string | null {
  if (path === null) return null;
  for (let p = path; p !== "";) {
    try {
      return filesystemOf(Deno.realPathSync(p), mounts);
    } catch {
      const up = p.slice(0, p.lastIndexOf("/"));
      p = up === "" && p !== "/" ? "/" : up === p ? "" : up;
    }
  }
  return null;
}

const GO_ARCH: Readonly<Record<string, string>> = { "x86_64": "amd64", "aarch64": "arm64" };

/**
 * Probes the host (see the module doc) and lists the problems, each as one
 * line that says what the missing piece costs and how to fix it.
 */
export async function probeHost(opts: ProbeOptions = {}): Promise<HostReport> {
  const root = opts.root ?? "";
  const uid = opts.uid ?? Deno.uid() ?? 0;
  const gid = opts.gid ?? Deno.gid() ?? 0;
  const groups = opts.groups ?? [gid, ...groupsFromStatus(readText(`${root}/proc/self/status`))];
  const who = { uid, groups };
  const name = opts.userName ??
    currentUserName(uid, {
      passwdPath: `${root}/etc/passwd`,
      env: root === "" ? { USER: Deno.env.get("USER"), LOGNAME: Deno.env.get("LOGNAME") } : {},
    });
  const pathEnv = opts.pathEnv ?? Deno.env.get("PATH") ?? "";
  const find = (bin: string) => findExecutable(bin, pathEnv, root);
  const problems: string[] = [];
  const rootless = uid !== 0;

  // Host.
  const kernel = readText(`${root}/proc/sys/kernel/osrelease`)?.trim() || null;
  const osRelease = readText(`${root}/etc/os-release`) ?? "";
  const pretty = osRelease.match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1] ?? null;

  // User namespaces and id mapping.
  const maxUserNs = readInt(`${root}/proc/sys/user/max_user_namespaces`);
  const clone = readInt(`${root}/proc/sys/kernel/unprivileged_userns_clone`);
  const apparmor = readInt(`${root}/proc/sys/kernel/apparmor_restrict_unprivileged_userns`);
  let allowed = true;
  if (rootless) {
    if (maxUserNs === null) {
      allowed = false;
      problems.push(
        "user namespaces are not available (no /proc/sys/user/max_user_namespaces): trun cannot " +
          "start containers without root; use a kernel built with CONFIG_USER_NS",
      );
    } else if (maxUserNs <= 0) {
      allowed = false;
      problems.push(
        `user namespaces are disabled (user.max_user_namespaces = ${maxUserNs}): trun cannot ` +
          "start containers; sysctl -w user.max_user_namespaces=28633 and add it to " +
          "/etc/sysctl.d/ to keep it",
      );
    }
    if (clone === 0) {
      allowed = false;
      problems.push(
        "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0): " +
          "trun cannot start containers; sysctl -w kernel.unprivileged_userns_clone=1 and add " +
          "it to /etc/sysctl.d/ to keep it",
      );
    }
    if (apparmor !== null && apparmor > 0) {
      allowed = false;
      problems.push(
        "AppArmor restricts unprivileged user namespaces " +
          "(kernel.apparmor_restrict_unprivileged_userns = 1): trun cannot mount in its " +
          "containers; add an AppArmor profile for trun with the `userns,` rule, or sysctl -w " +
          "kernel.apparmor_restrict_unprivileged_userns=0",
      );
    }
  }

  const readCaps = opts.readFileCaps ?? await defaultReadFileCaps();
  const newuidmap = helperReport(root, find("newuidmap"), "cap_setuid", readCaps);
  const newgidmap = helperReport(root, find("newgidmap"), "cap_setgid", readCaps);
  const subuidText = readText(`${root}/etc/subuid`);
  const subgidText = readText(`${root}/etc/subgid`);
  const uidEntries = parseSubordinateIds(subuidText ?? "");
  const gidEntries = parseSubordinateIds(subgidText ?? "");
  const user = { name, uid };
  const span = (e: { start: number; count: number }) => ({ start: e.start, count: e.count });
  const subuidRanges = rangesFor(uidEntries, user).map(span);
  const subgidRanges = rangesFor(gidEntries, user).map(span);
  const plan = planIdMapping({
    uid,
    gid,
    userName: name,
    subuidText,
    subgidText,
    newuidmap: newuidmap.path,
    newgidmap: newgidmap.path,
  });
  if (rootless) {
    const single = "containers get a single-id mapping (only root inside; image files of other " +
      "users become root's)";
    const absent = [newuidmap.path ? "" : "newuidmap", newgidmap.path ? "" : "newgidmap"]
      .filter((s) => s !== "");
    if (absent.length > 0) {
      const names = absent.join(" and ");
      problems.push(
        `${names} not found: ${single}; install the uidmap package (apt-get install uidmap)`,
      );
    }
    for (const [h, kind] of [[newuidmap, "uid"], [newgidmap, "gid"]] as const) {
      if (h.path === null || h.usable) continue;
      problems.push(
        `${h.path} has neither the setuid bit (mode ${h.mode}) nor the cap_set${kind} file ` +
          `capability: containers fail to start when it writes their ${kind} map; chmod u+s ` +
          `${h.path} (or setcap cap_set${kind}+ep ${h.path})`,
      );
    }
    const s = suggestSubordinateRange([...uidEntries, ...gidEntries]);
    const range = `${s.start}-${s.start + s.count - 1}`;
    if (subuidRanges.length === 0) {
      problems.push(
        `no subordinate uid range for "${name}" in /etc/subuid: ${single}; add one ` +
          `(usermod --add-subuids ${range} ${name})`,
      );
    }
    if (subgidRanges.length === 0) {
      problems.push(
        `no subordinate gid range for "${name}" in /etc/subgid: ${single}; add one ` +
          `(usermod --add-subgids ${range} ${name})`,
      );
    }
  }

  // Storage.
  const mounts = parseMountInfo(readText(`${root}/proc/self/mountinfo`) ?? "");
  const paths = opts.paths ?? { uid, env: Deno.env.toObject() };
  const store = storagePath(() => storeRoot(paths));
  const runtime = storagePath(() => runtimeRoot(paths));
  if (store.error) problems.push(`${store.error}: trun has nowhere to keep images`);
  const storeFilesystem = filesystemOfPath(store.path, mounts);
  if (storeFilesystem && /^(nfs4?|cifs|smb3)$/.test(storeFilesystem)) {
    problems.push(
      `the store ${store.path} is on ${storeFilesystem}: network file systems lose file owners ` +
        `and xattrs, so images unpack wrongly; set TRUN_ROOT to a local directory`,
    );
  }
  const version = kernelVersion(kernel);
  const kernelSupportsUserns = !rootless ||
    (version !== null && (version[0] > 5 || (version[0] === 5 && version[1] >= 11)));
  const filesystem = overlayFilesystem(root, kernel);
  const kernelOverlay: HostReport["storage"]["kernelOverlay"] = {
    filesystem,
    kernelSupportsUserns,
    status: kernelSupportsUserns && filesystem !== "missing" ? "expected" : "unavailable",
    tested: false,
  };
  const fuseOverlayfs = find("fuse-overlayfs");
  const devFuse = deviceAccess(root, "/dev/fuse", who);

  // Active checks: only when asked (they spawn processes and mount in a throwaway namespace).
  let tested: HostReport["userNamespaces"]["tested"] = "not tested";
  if (opts.active && rootless) {
    const unshare = find("unshare");
    if (unshare === null) {
      problems.push("unshare not found: the --probe checks were skipped; install util-linux");
    } else {
      const result = await activeProbe(`${root}${unshare}`, existingDir(store.path));
      tested = result.userns.ok ? "works" : "fails";
      if (!result.userns.ok) {
        allowed = false;
        problems.push(
          `creating a user namespace failed (${result.userns.stderr || "no message"}): trun ` +
            "cannot start containers; check the sysctls above and any LSM (AppArmor, SELinux) policy",
        );
      }
      if (result.overlay) {
        kernelOverlay.tested = true;
        kernelOverlay.status = result.overlay.ok ? "works" : "fails";
        if (!result.overlay.ok) {
          problems.push(
            `mounting overlay in a user namespace failed (${
              result.overlay.stderr || "no message"
            }): ` +
              `images are mounted with fuse-overlayfs, or copied without it`,
          );
        }
      }
    }
  }
  const kernelOverlayUsable = kernelOverlay.status === "works" ||
    kernelOverlay.status === "expected";
  if (kernelOverlay.status === "unavailable") {
    problems.push(
      kernel === null || version === null
        ? "the kernel version is unknown (no /proc/sys/kernel/osrelease): overlay in a user " +
          "namespace is assumed unavailable, so images are mounted with fuse-overlayfs, or " +
          "copied without it"
        : !kernelSupportsUserns
        ? `kernel ${kernel} cannot mount overlay in a user namespace (needs 5.11): ` +
          `images are mounted with fuse-overlayfs, or copied without it`
        : "the overlay file system is not in this kernel (not in /proc/filesystems, no module): " +
          "images are mounted with fuse-overlayfs, or copied without it; modprobe overlay",
    );
  }
  if (rootless && !kernelOverlayUsable && fuseOverlayfs === null) {
    problems.push(
      "fuse-overlayfs not found: without kernel overlay in a user namespace each container " +
        "gets a full copy of its image (slow, uses disk); install fuse-overlayfs",
    );
  }
  if (rootless && fuseOverlayfs !== null && !devFuse.accessible) {
    problems.push(
      devFuse.exists
        ? `/dev/fuse is mode ${devFuse.mode} and not open to ${name}: fuse-overlayfs cannot ` +
          `mount (kernel overlay is used where it works); chmod 0666 /dev/fuse, its usual mode`
        : "/dev/fuse does not exist: fuse-overlayfs cannot mount (kernel overlay is used where " +
          "it works); modprobe fuse",
    );
  }

  // Cgroups.
  const cgroups = probeCgroups(root, who, mounts);
  if (cgroups.version === "none") {
    problems.push(
      "no cgroup file system is mounted: containers cannot be limited, counted or killed as " +
        "a group; mount cgroup2 on /sys/fs/cgroup",
    );
  } else if (cgroups.version === "v1") {
    problems.push(
      "only cgroup v1 is mounted: rootless containers get no cgroup (no --memory, --cpus, " +
        "--pids-limit, stats or group kill); boot with systemd.unified_cgroup_hierarchy=1",
    );
  } else {
    const wanted = ["cpu", "memory", "pids"];
    const lacking = wanted.filter((c) => !cgroups.controllers.includes(c));
    if (lacking.length > 0) {
      const where = cgroups.version === "hybrid"
        ? ` (hybrid layout: ${cgroups.v2Mount} has ${cgroups.controllers.join(", ") || "none"}; ` +
          `they are on cgroup v1)`
        : "";
      problems.push(
        `cgroup v2 controller${lacking.length > 1 ? "s" : ""} ${lacking.join(", ")} not ` +
          `available${where}: --memory, --cpus and --pids-limit cannot be applied; ` +
          (cgroups.version === "hybrid"
            ? "boot with systemd.unified_cgroup_hierarchy=1 for pure cgroup v2"
            : "enable them in the parent cgroups' cgroup.subtree_control (systemd: Delegate=yes)"),
      );
    }
    if (rootless && !cgroups.writable && cgroups.userServiceCgroup === null) {
      problems.push(
        `cgroup ${cgroups.ownCgroup ?? "(unknown)"} in ${cgroups.v2Mount} is not writable by ` +
          `${name} and no user@${uid}.service cgroup is delegated: containers stay in trun's ` +
          `cgroup (no per-container limits, stats or group kill); log in through ` +
          `systemd-logind or run loginctl enable-linger ${name}`,
      );
    }
  }

  // Network.
  const pasta = find("pasta");
  const slirp4netns = find("slirp4netns");
  const devNetTun = deviceAccess(root, "/dev/net/tun", who);
  if (rootless && pasta === null && slirp4netns === null) {
    problems.push(
      "neither pasta nor slirp4netns found: containers get only loopback (--network none or " +
        "host); install passt (for pasta) or slirp4netns",
    );
  } else if (rootless && !devNetTun.accessible) {
    problems.push(
      devNetTun.exists
        ? `/dev/net/tun is mode ${devNetTun.mode} and not open to ${name}: pasta and slirp4netns ` +
          `cannot give containers a network; chmod 0666 /dev/net/tun, its usual mode`
        : "/dev/net/tun does not exist: pasta and slirp4netns cannot give containers a network; " +
          "modprobe tun",
    );
  }

  return {
    host: {
      os: Deno.build.os,
      arch: GO_ARCH[Deno.build.arch] ?? Deno.build.arch,
      kernel,
      distribution: pretty,
      user: { name, uid, gid },
    },
    userNamespaces: {
      allowed,
      maxUserNamespaces: maxUserNs,
      unprivilegedUsernsClone: clone,
      apparmorRestrictUnprivilegedUserns: apparmor,
      tested,
      newuidmap,
      newgidmap,
      subuidRanges,
      subgidRanges,
      idMapping: plan.mode,
    },
    storage: {
      storeRoot: store.path,
      storeFilesystem,
      runtimeRoot: runtime.path,
      runtimeFilesystem: filesystemOfPath(runtime.path, mounts),
      kernelOverlay,
      fuseOverlayfs,
      devFuse,
    },
    cgroups,
    network: { pasta, slirp4netns, devNetTun },
    problems,
  };
}

function groupsFromStatus(status: string | null): number[] {
  const line = status?.split("\n").find((l) => l.startsWith("Groups:"));
  return line ? line.slice(7).trim().split(/\s+/).filter((s) => s).map(Number) : [];
}

function existingDir(path: string | null): string | null {
  return path !== null && statOrNull(path)?.isDirectory ? path : null;
}
