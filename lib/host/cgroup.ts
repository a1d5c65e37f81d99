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
