/**
 * Which cgroup hierarchy this host has and whether trun may create cgroups
 * in it: cgroups(7) v1/v2 from proc(5) `/proc/self/cgroup` and the mount
 * table, with the delegation model of Documentation/admin-guide/
 * cgroup-v2.rst (a writable own cgroup, or systemd's `user@UID.service`).
 */
import { canReadWrite, canWriteDir, type Who } from "./access.ts";
import { readText, statOrNull } from "./_files.ts";
import type { MountEntry } from "./mountinfo.ts";

/** Which cgroup hierarchy this host has and whether trun may create cgroups in it. */
export interface CgroupReport {
  /** `v2` (only cgroup2), `hybrid` (cgroup2 beside v1 hierarchies), `v1` or `none`. */
  version: "v2" | "hybrid" | "v1" | "none";
  /** Where cgroup2 is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`). */
  v2Mount: string | null;
  /** The cgroup2 mount's root in the hierarchy (not `/` under a cgroup namespace). */
  v2MountRoot: string | null;
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
  /** The delegated root trun uses (see `cgroupPlacement`), or null. */
  delegated: string | null;
  /** Where containers go (`<delegated>/trun`), or null when they stay in trun's cgroup. */
  containerParent: string | null;
  /** Controllers the delegated root offers (`cgroup.controllers`): what limits can use. */
  delegatedControllers: string[];
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

/** The main cgroup2 mount: the unified `/sys/fs/cgroup` when it is one, else the first. */
export function cgroup2Mount(mounts: readonly MountEntry[]): MountEntry | null {
  const v2 = mounts.filter((m) => m.fsType === "cgroup2");
  return v2.find((m) => m.mountPoint === "/sys/fs/cgroup") ?? v2[0] ?? null;
}

/** The cgroup part of the report, from mountinfo, /proc/self/cgroup and the cgroup files. */
export function probeCgroups(root: string, who: Who, mounts: readonly MountEntry[]): CgroupReport {
  const v1 = mounts.filter((m) => m.fsType === "cgroup");
  const v1Controllers = [
    ...new Set(v1.flatMap((m) => m.superOptions.filter((o) => V1_CONTROLLERS.has(o)))),
  ].sort();
  const main = cgroup2Mount(mounts);
  const version = main ? (v1.length > 0 ? "hybrid" : "v2") : v1.length > 0 ? "v1" : "none";
  const report: CgroupReport = {
    version,
    v2Mount: main?.mountPoint ?? null,
    v2MountRoot: main?.root ?? null,
    v1Controllers,
    ownCgroup: null,
    controllers: [],
    subtreeControl: [],
    writable: false,
    userServiceCgroup: null,
    delegated: null,
    containerParent: null,
    delegatedControllers: [],
  };
  if (!main) return report;
  const own = parseOwnCgroup(readText(`${root}/proc/self/cgroup`) ?? "");
  if (own === null) return report;
  report.ownCgroup = own;
  const dir = `${root}${hierarchyDir(main, own)}`;
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
  const placement = cgroupPlacement(root, who, main, own);
  if (placement) {
    report.delegated = placement.delegated;
    report.containerParent = placement.parent;
    report.delegatedControllers = placement.controllers;
  }
  return report;
}

/** The caller's cgroup v2 path from proc(5) `/proc/PID/cgroup` text (its `0::` line), or null. */
export function parseOwnCgroup(procCgroup: string): string | null {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"));
  return line === undefined ? null : line.slice(3).trim() || "/";
}

/**
 * The directory of hierarchy path `path` on the cgroup2 mount `mount`:
 * under a cgroup namespace the mount's root is a prefix of the paths the
 * kernel shows, and is cut off.
 */
export function hierarchyDir(mount: Pick<MountEntry, "root" | "mountPoint">, path: string): string {
  const root = mount.root.replace(/\/+$/, "");
  const rel = root !== "" && (path === root || path.startsWith(`${root}/`))
    ? path.slice(root.length)
    : path;
  return `${mount.mountPoint}${rel === "/" ? "" : rel}`.replace(/\/+/g, "/");
}

/** The name of the sub-tree of the delegated root that holds trun's containers. */
export const CONTAINERS_SUBTREE = "trun";

/**
 * The leaf trun moves the delegated root's processes to when it must
 * enable controllers there (cgroup v2's no-internal-processes rule), as
 * Podman moves itself; a later trun started from that leaf knows it.
 */
export const PROCESS_LEAF = "trun-init";

/** The controllers a container's limits may use, in the order they are enabled. */
export const LIMIT_CONTROLLERS = ["cpu", "cpuset", "io", "memory", "pids", "hugetlb"] as const;

/** Where trun's containers go in the cgroup v2 hierarchy, as discovered. */
export interface CgroupPlacement {
  /** The cgroup2 mount point (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`). */
  mountPoint: string;
  /** The mount's root in the hierarchy (not `/` under a cgroup namespace). */
  mountRoot: string;
  /** The caller's own cgroup (hierarchy path). */
  own: string;
  /**
   * The delegated root: as root the hierarchy's (visible) root; otherwise
   * the nearest ancestor of the own cgroup (itself included) that the user
   * may create cgroups in and move processes into.
   */
  delegated: string;
  /** `<delegated>/trun`: the parent of every container's cgroup. */
  parent: string;
  /** The delegated root's `cgroup.controllers`: what containers can be limited by. */
  controllers: string[];
  /** The delegated root's `cgroup.subtree_control`. */
  enabled: string[];
  /** Whether processes sit in the delegated root itself (they move to a leaf before enabling). */
  holdsProcesses: boolean;
}

/** The parent of hierarchy path `p` (`/` stays `/`). */
function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** Joins hierarchy paths. */
export function joinCgroupPath(a: string, ...rest: string[]): string {
  return [a, ...rest].join("/").replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
}

/**
 * Where trun's containers go (pure over the files under `root`, so tests
 * use fake cgroupfs trees): null without cgroup v2 or without a cgroup the
 * user may write. Podman's cgroupfs layout, `<delegated>/trun/<id>`, not
 * a systemd scope per container: trun has no D-Bus client and no daemon,
 * and the same layout serves root (the hierarchy's root, as Docker's
 * `/docker/<id>`), a systemd-delegated scope (`systemd-run --user --scope
 * -p Delegate=yes`) and CI's hand-made delegation alike.
 */
export function cgroupPlacement(
  root: string,
  who: Who,
  mount: Pick<MountEntry, "root" | "mountPoint">,
  own: string,
): CgroupPlacement | null {
  const top = mount.root.replace(/\/+$/, "") || "/";
  const writable = (p: string) => {
    const dir = `${root}${hierarchyDir(mount, p)}`;
    const st = statOrNull(dir), procs = statOrNull(`${dir}/cgroup.procs`);
    return st !== null && procs !== null && canWriteDir(st, who) && canReadWrite(procs, who);
  };
  let delegated: string | null = null;
  if (who.uid === 0) delegated = writable(top) ? top : null;
  else {
    // trun's own leaf is not a delegation of its own: its parent is.
    let p = own.endsWith(`/${PROCESS_LEAF}`) ? parentOf(own) : own;
    for (;;) {
      if (writable(p)) {
        delegated = p;
        break;
      }
      if (p === top || p === "/") break;
      p = parentOf(p);
    }
  }
  if (delegated === null) return null;
  const dir = `${root}${hierarchyDir(mount, delegated)}`;
  const words = (f: string) => (readText(`${dir}/${f}`) ?? "").split(/\s+/).filter((w) => w);
  return {
    mountPoint: mount.mountPoint,
    mountRoot: mount.root,
    own,
    delegated,
    parent: joinCgroupPath(delegated, CONTAINERS_SUBTREE),
    controllers: words("cgroup.controllers"),
    enabled: words("cgroup.subtree_control"),
    holdsProcesses: words("cgroup.procs").length > 0,
  };
}

/** The cgroup controller each cgroup v2 file belongs to (`memory.max` → `memory`). */
export function controllerOf(file: string): string {
  return file.slice(0, file.indexOf("."));
}

/** One problem line per thing the cgroup layout costs `name` (uid `uid`). */
export function cgroupProblems(cgroups: CgroupReport, name: string, uid: number): string[] {
  const problems: string[] = [];
  const rootless = uid !== 0;
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
  return problems;
}

/** What `run`/`create` do about cgroups: where the container goes, and what to tell the user. */
export interface CgroupDecision {
  /** The parent of the container's cgroup (hierarchy path), when it gets one of its own. */
  parent?: string;
  /** Its directory (under the mount point). */
  parentDir?: string;
  /** One warning: the limits asked for that cannot be enforced, why, and how to enable them. */
  warning?: string;
  /** With `--cgroups=required`: why trun refuses to run (exit 125). */
  error?: string;
}

/** The systemd drop-in that delegates every controller to users' managers. */
const DELEGATE_HINT =
  "delegate them with a systemd drop-in /etc/systemd/system/user@.service.d/delegate.conf " +
  "holding [Service] Delegate=cpu cpuset io memory pids, then systemctl daemon-reload and log in again";

/**
 * Decides, for `--cgroups` `mode`, where a container goes and whether its
 * limits (cgroup v2 files `files`, each with the flag that asked, from
 * `flagOf`) can be enforced: one warning naming what is missing and how to
 * enable it, or with `required` an error instead. `report` is the probe's,
 * `name` the user's name. Pure.
 */
export function decideCgroup(
  report: CgroupReport,
  mode: "enabled" | "disabled" | "required",
  files: readonly string[],
  flagOf: (file: string) => string,
  name: string,
  uid: number,
): CgroupDecision {
  const flags = [...new Set(files.map(flagOf))];
  if (mode === "disabled") {
    return flags.length > 0
      ? { error: `--cgroups=disabled cannot be combined with ${flags.join(", ")}` }
      : {};
  }
  const parent = report.containerParent;
  let missing = "";
  let hint = "";
  if (report.v2Mount === null) {
    missing = report.version === "v1"
      ? "this host has only cgroup v1 hierarchies, and trun uses cgroup v2"
      : "no cgroup file system is mounted";
    hint = "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2";
  } else if (parent === null) {
    missing = `no cgroup v2 subtree is delegated to ${name} (its cgroup ${
      report.ownCgroup ?? "(unknown)"
    } in ${report.v2Mount} and the ones above are not writable)`;
    hint = uid === 0 ? "check that the cgroup2 mount is writable" : "run trun in a delegated " +
      "systemd scope: systemd-run --user --scope -p Delegate=yes trun …, with a user manager " +
      `running (log in through systemd-logind, or loginctl enable-linger ${name})`;
  }
  if (missing === "") {
    const offered = report.delegatedControllers;
    const lacking = [...new Set(files.map(controllerOf))].filter((c) => !offered.includes(c));
    if (lacking.length === 0) return { parent: parent!, parentDir: parentDirOf(report, parent!) };
    const lackingFlags = [
      ...new Set(files.filter((f) => lacking.includes(controllerOf(f))).map(flagOf)),
    ];
    missing = `the cgroup ${report.delegated} offers no ${lacking.join(", ")} controller` +
      `${lacking.length > 1 ? "s" : ""} (it offers: ${offered.join(", ") || "none"})`;
    hint = report.version === "hybrid"
      ? "this host's cgroup v2 is hybrid, with them on cgroup v1: boot with " +
        "systemd.unified_cgroup_hierarchy=1 for pure cgroup v2" +
        (uid === 0 ? "" : `, and ${DELEGATE_HINT}`)
      : uid === 0
      ? `enable them in the cgroup.subtree_control of the cgroups above ${report.delegated}`
      : DELEGATE_HINT;
    const text = `${lackingFlags.join(", ")} cannot be enforced: ${missing}; ${hint}`;
    if (mode === "required") return { error: `--cgroups=required: ${text}` };
    return {
      parent: parent!,
      parentDir: parentDirOf(report, parent!),
      warning: `${text}; the container runs without ${lackingFlags.length > 1 ? "them" : "it"}`,
    };
  }
  if (mode === "required") {
    return { error: `--cgroups=required: the container cannot get a cgroup: ${missing}; ${hint}` };
  }
  if (flags.length === 0) return {};
  return {
    warning: `${flags.join(", ")} cannot be enforced: ${missing}; ${hint}; ` +
      `the container runs without ${flags.length > 1 ? "them" : "it"}`,
  };
}

/** The directory of `parent` on the report's cgroup2 mount. */
function parentDirOf(report: CgroupReport, parent: string): string {
  return hierarchyDir({ root: report.v2MountRoot ?? "/", mountPoint: report.v2Mount! }, parent);
}
