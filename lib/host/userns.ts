/**
 * Whether containers can get a user namespace and a full id mapping:
 * user_namespaces(7) and its sysctls (`user.max_user_namespaces`, Debian's
 * `kernel.unprivileged_userns_clone`, Ubuntu's
 * `kernel.apparmor_restrict_unprivileged_userns`); newuidmap(1)/newgidmap(1)
 * with their setuid bit or capabilities(7) file capabilities
 * (`security.capability`, VFS_CAP_REVISION_2/3); subuid(5)/subgid(5).
 * With an `unshare` binary, {@link tryUserNamespace} creates one for real.
 */
import {
  findExecutable,
  type IdMapping,
  parseSubordinateIds,
  planIdMapping,
  rangesFor,
  suggestSubordinateRange,
} from "../runtime/idmap.ts";
import { octal, readInt, readText, run, statOrNull } from "./_files.ts";

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

/** Whether containers can get a user namespace and a full id mapping. */
export interface UserNamespacesReport {
  /** False when a sysctl forbids them or the kernel lacks them (for root: always true). */
  allowed: boolean;
  /** `user.max_user_namespaces`, null when the kernel has no such sysctl. */
  maxUserNamespaces: number | null;
  /** Debian's `kernel.unprivileged_userns_clone`, null when the kernel has no such sysctl. */
  unprivilegedUsernsClone: number | null;
  /** Ubuntu's `kernel.apparmor_restrict_unprivileged_userns`, null when absent. */
  apparmorRestrictUnprivilegedUserns: number | null;
  /** Active probe result: `unshare -Ur true`; "not tested" without `active`. */
  tested: "works" | "fails" | "not tested";
  /** The uid map helper. */
  newuidmap: HelperReport;
  /** The gid map helper. */
  newgidmap: HelperReport;
  /** The user's ranges in /etc/subuid. */
  subuidRanges: IdSpan[];
  /** The user's ranges in /etc/subgid. */
  subgidRanges: IdSpan[];
  /** The mode `trun run` would use (see lib/runtime/idmap.ts). */
  idMapping: IdMapping["mode"];
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

/** Reads `security.capability` of a file: lgetxattr through ffi/fs.ts when FFI is allowed. */
export async function defaultReadFileCaps(): Promise<(path: string) => Uint8Array | null> {
  try {
    const { lgetxattr } = await import("../../ffi/fs.ts");
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

/** Where {@link idMapHelpers} looks. */
export interface IdMapHelperOptions {
  /** Prefix for the PATH directories (default: the real root). */
  root?: string;
  /** The PATH searched (default `$PATH`). */
  pathEnv?: string;
  /** Reads `security.capability` of a file (default {@link defaultReadFileCaps}). */
  readFileCaps?: (path: string) => Uint8Array | null;
}

/**
 * newuidmap and newgidmap: where they are, and whether each can do its job
 * (setuid root, or the `cap_setuid`/`cap_setgid` file capability).
 */
export async function idMapHelpers(
  opts: IdMapHelperOptions = {},
): Promise<{ newuidmap: HelperReport; newgidmap: HelperReport }> {
  const root = opts.root ?? "";
  const pathEnv = opts.pathEnv ?? Deno.env.get("PATH") ?? "";
  const readCaps = opts.readFileCaps ?? await defaultReadFileCaps();
  const find = (bin: string) => findExecutable(bin, pathEnv, root);
  return {
    newuidmap: helperReport(root, find("newuidmap"), "cap_setuid", readCaps),
    newgidmap: helperReport(root, find("newgidmap"), "cap_setgid", readCaps),
  };
}

/** Who and where {@link probeUserNamespaces} probes. */
export interface UserNamespacesInput extends IdMapHelperOptions {
  /** Prefix for /proc and /etc. */
  root: string;
  /** The probed user's uid. */
  uid: number;
  /** The probed user's primary gid. */
  gid: number;
  /** The probed user's login name. */
  name: string;
}

/**
 * The static user-namespace checks (sysctls, helpers, subordinate ranges)
 * and one problem line for each missing piece, in that order. `tested` is
 * "not tested": {@link tryUserNamespace} is the active check.
 */
export async function probeUserNamespaces(
  input: UserNamespacesInput,
): Promise<{ report: UserNamespacesReport; problems: string[] }> {
  const { root, uid, gid, name } = input;
  const problems: string[] = [];
  const rootless = uid !== 0;
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

  const { newuidmap, newgidmap } = await idMapHelpers(input);
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
  return {
    report: {
      allowed,
      maxUserNamespaces: maxUserNs,
      unprivilegedUsernsClone: clone,
      apparmorRestrictUnprivilegedUserns: apparmor,
      tested: "not tested",
      newuidmap,
      newgidmap,
      subuidRanges,
      subgidRanges,
      idMapping: plan.mode,
    },
    problems,
  };
}

/** Creates a user namespace for real with `unshare -Ur true` (spawns a process). */
export function tryUserNamespace(unshare: string): Promise<{ ok: boolean; stderr: string }> {
  return run(unshare, ["-Ur", "true"]);
}

/** The problem line for a failed {@link tryUserNamespace}. */
export function usernsFailure(stderr: string): string {
  return `creating a user namespace failed (${stderr || "no message"}): trun ` +
    "cannot start containers; check the sysctls above and any LSM (AppArmor, SELinux) policy";
}
