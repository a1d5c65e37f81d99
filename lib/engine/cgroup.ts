/**
 * Placing a container in a cgroup v2 directory and writing its limits
 * (linux.cgroupsPath and linux.resources; cgroups(7), the kernel's
 * Documentation/admin-guide/cgroup-v2.rst). The conversions from the
 * spec's v1-flavoured numbers to v2 files follow runc's and crun's.
 *
 * This is the engine's part: where the caller can create the directory
 * (root; a delegated subtree, found by lib/host/cgroup.ts) the container
 * goes there with the controllers its limits need enabled on the way down,
 * and every limit whose controller file exists is written; anything else
 * is one warning naming what was left out. Also the group kill
 * (`cgroup.kill`) and the removal of a container's cgroup.
 */
import type { Resources } from "../spec/types.ts";
import {
  cgroup2Mount,
  cgroupPlacement,
  controllerOf,
  hierarchyDir,
  joinCgroupPath,
  parseOwnCgroup,
  PROCESS_LEAF,
} from "../host/cgroup.ts";
import { parseMountInfo } from "../host/mountinfo.ts";
import { supplementaryGroups } from "../host/access.ts";

/** The cgroup v2 hierarchy as this process sees it: what placement decides from. */
export interface CgroupView {
  /** Prefix of every path read or written (tests: a fake tree; else ""). */
  root: string;
  /** The cgroup2 mount (point and root). */
  mount: { mountPoint: string; root: string };
  /** This process's cgroup (hierarchy path). */
  own: string;
  /** The delegated root (lib/host/cgroup.ts `cgroupPlacement`), or null. */
  delegated: string | null;
}

/** This process's view of the cgroup v2 hierarchy, or null without one. */
export function currentCgroupView(root = ""): CgroupView | null {
  const mount = cgroup2Mount(parseMountInfo(readOr(`${root}/proc/self/mountinfo`)));
  const own = parseOwnCgroup(readOr(`${root}/proc/self/cgroup`));
  if (!mount || own === null) return null;
  const uid = Deno.uid() ?? 0;
  const groups = [Deno.gid() ?? 0, ...supplementaryGroups(root)];
  const placement = cgroupPlacement(root, { uid, groups }, mount, own);
  return { root, mount, own, delegated: placement?.delegated ?? null };
}

/**
 * The hierarchy path for `cgroupsPath`: absolute paths are from the
 * hierarchy's root, relative ones from the caller's own cgroup (runc's
 * cgroupfs rules). `..` is refused, so the path cannot climb out.
 */
export function cgroupPath(own: string, cgroupsPath: string): string {
  const parts = cgroupsPath.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) {
    throw new Error(`linux.cgroupsPath "${cgroupsPath}" may not contain ".."`);
  }
  const base = cgroupsPath.startsWith("/") ? "/" : own;
  return joinCgroupPath(base, ...parts);
}

/** The directory for `cgroupsPath` on the cgroup2 mount point `mount` (see cgroupPath). */
export function cgroupDir(mount: string, own: string, cgroupsPath: string): string {
  return hierarchyDir({ root: "/", mountPoint: mount }, cgroupPath(own, cgroupsPath));
}

/** cpu.weight from cpu.shares (runc's linear map of [2, 262144] onto [1, 10000]). */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** io.weight from blkio weight (runc's map of [10, 1000] onto [1, 10000]). */
export function blkioToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return Math.floor(1 + ((weight - 10) * 9999) / 990);
}

/**
 * The cgroup v2 files and values `resources` asks for, in writing order,
 * plus the fields that have no v2 equivalent (to warn about).
 */
export function resourceFiles(r: Resources): { files: [string, string][]; unsupported: string[] } {
  const files: [string, string][] = [];
  const unsupported: string[] = [];
  const max = (n: number | undefined) => n === undefined || n < 0 ? "max" : String(n);
  const m = r.memory;
  if (m) {
    if (m.reservation !== undefined) files.push(["memory.low", max(m.reservation)]);
    if (m.limit !== undefined) files.push(["memory.max", max(m.limit)]);
    if (m.swap !== undefined) {
      // The spec's swap is memory+swap (v1's memsw); v2 limits swap alone.
      const swap = m.swap < 0 || m.limit === undefined || m.limit < 0
        ? "max"
        : String(Math.max(0, m.swap - m.limit));
      files.push(["memory.swap.max", swap]);
    }
    for (const k of ["kernel", "kernelTCP", "swappiness", "disableOOMKiller"] as const) {
      if (m[k] !== undefined) unsupported.push(`memory.${k}`);
    }
  }
  const c = r.cpu;
  if (c) {
    if (c.shares !== undefined && c.shares > 0) {
      files.push(["cpu.weight", String(sharesToWeight(c.shares))]);
    }
    if (c.quota !== undefined || c.period !== undefined) {
      const q = c.quota === undefined || c.quota <= 0 ? "max" : String(c.quota);
      files.push(["cpu.max", `${q} ${c.period && c.period > 0 ? c.period : 100000}`]);
    }
    if (c.idle !== undefined) files.push(["cpu.idle", String(c.idle)]);
    if (c.cpus) files.push(["cpuset.cpus", c.cpus]);
    if (c.mems) files.push(["cpuset.mems", c.mems]);
    if (c.realtimeRuntime !== undefined || c.realtimePeriod !== undefined) {
      unsupported.push("cpu.realtimeRuntime");
    }
  }
  if (r.pids) files.push(["pids.max", r.pids.limit > 0 ? String(r.pids.limit) : "max"]);
  const weight = (r.blockIO as { weight?: number } | undefined)?.weight;
  if (weight !== undefined && weight > 0) {
    files.push(["io.weight", `default ${blkioToIoWeight(weight)}`]);
  }
  for (const h of r.hugepageLimits ?? []) {
    files.push([`hugetlb.${h.pageSize}.max`, String(h.limit)]);
  }
  for (const [k, v] of Object.entries(r.unified ?? {})) {
    if (k.includes("/") || k.startsWith(".")) unsupported.push(`unified.${k}`);
    else files.push([k, v]);
  }
  if (r.network) unsupported.push("network");
  if (r.rdma) unsupported.push("rdma");
  return { files, unsupported };
}

/** Where a container was placed, and what was left out. */
export interface Placement {
  /** The cgroup directory, when the container went into one. */
  dir?: string;
  /** One line each for what could not be done. */
  warnings: string[];
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/**
 * Controllers enabled for every container whose parent offers them, so that
 * `stats` can read usage without limits; cpuset and hugetlb only when a
 * limit asks (enabling cpuset copies the parent's CPUs into each level).
 */
const ACCOUNTING_CONTROLLERS = ["cpu", "io", "memory", "pids"];

/** One step of a placement, in order (the plan `planPlacement` makes). */
export type PlacementStep =
  | { op: "mkdir"; path: string }
  | { op: "move"; from: string; to: string; pids: number[] }
  | { op: "enable"; path: string; controllers: string[] }
  | { op: "join"; path: string; pid: number };

/** What a cgroup holds, as placement needs it. */
interface LevelFacts {
  exists: boolean;
  controllers: string[];
  enabled: string[];
  pids: number[];
}

/**
 * The steps that put `pid` into hierarchy path `path`: each missing level
 * made; on the way down, the controllers the limits (`files`) and the
 * accounting need enabled in each level's `cgroup.subtree_control` where the
 * level offers them, starting at the delegated root (or, outside it, the
 * deepest existing ancestor); and, since a cgroup that distributes
 * controllers may hold no processes (cgroup v2's no-internal-processes
 * rule), the delegated root's processes moved to its leaf `trun-init`
 * first, as Podman moves itself. The hierarchy's real root is exempt.
 * Pure over the files under `view.root`.
 */
export function planPlacement(
  view: CgroupView,
  path: string,
  pid: number,
  files: readonly string[],
): PlacementStep[] {
  const wanted = [...new Set([...ACCOUNTING_CONTROLLERS, ...files.map(controllerOf)])];
  const levels = ["/", ...path.split("/").filter((c) => c !== "")]
    .map((_, i, parts) => joinCgroupPath("/", ...parts.slice(1, i + 1)));
  const facts = new Map<string, LevelFacts>();
  const factsOf = (p: string): LevelFacts => {
    const known = facts.get(p);
    if (known) return known;
    const dir = `${view.root}${hierarchyDir(view.mount, p)}`;
    const words = (f: string) => readOr(`${dir}/${f}`).split(/\s+/).filter((w) => w);
    let exists = true;
    try {
      Deno.statSync(dir);
    } catch {
      exists = false;
    }
    const f = {
      exists,
      controllers: words("cgroup.controllers"),
      enabled: words("cgroup.subtree_control"),
      pids: words("cgroup.procs").map(Number),
    };
    facts.set(p, f);
    return f;
  };
  const delegated = view.delegated;
  const inDelegated = delegated !== null &&
    (delegated === "/" || path === delegated || path.startsWith(`${delegated}/`));
  // Where enabling starts: the delegated root, else the deepest existing ancestor.
  let start = levels.length - 2;
  if (inDelegated) start = levels.indexOf(delegated);
  else while (start > 0 && !factsOf(levels[start]!).exists) start--;
  const steps: PlacementStep[] = [];
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    const f = factsOf(level);
    if (!f.exists) {
      steps.push({ op: "mkdir", path: level });
      const parent = factsOf(levels[i - 1]!);
      facts.set(level, { exists: true, controllers: parent.enabled, enabled: [], pids: [] });
    }
    if (i < start || i === levels.length - 1) continue;
    const now = facts.get(level)!;
    const enable = wanted.filter((c) => now.controllers.includes(c) && !now.enabled.includes(c));
    if (enable.length === 0) continue;
    if (now.pids.length > 0 && level !== "/") {
      // Only the delegated root's processes are trun's to move.
      if (level !== delegated) continue;
      const leaf = joinCgroupPath(level, PROCESS_LEAF);
      if (!factsOf(leaf).exists) steps.push({ op: "mkdir", path: leaf });
      steps.push({ op: "move", from: level, to: leaf, pids: now.pids });
    }
    steps.push({ op: "enable", path: level, controllers: enable });
    facts.set(level, { ...now, enabled: [...now.enabled, ...enable], pids: [] });
  }
  steps.push({ op: "join", path, pid });
  return steps;
}

/** Writes `value` to cgroup file `file` (the kernel reads one write). */
function writeCgroupFile(file: string, value: string): void {
  Deno.writeTextFileSync(file, value, { create: false });
}

/**
 * Runs the placement steps. A failed mkdir or join throws; a move or an
 * enable that fails leaves the controllers out, which the limits' writes
 * then report.
 */
function runPlacement(view: CgroupView, steps: readonly PlacementStep[]): void {
  const dir = (p: string) => `${view.root}${hierarchyDir(view.mount, p)}`;
  for (const s of steps) {
    if (s.op === "mkdir") {
      try {
        Deno.mkdirSync(dir(s.path));
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    } else if (s.op === "join") writeCgroupFile(`${dir(s.path)}/cgroup.procs`, String(s.pid));
    else if (s.op === "move") {
      // One pid per write; a process gone meanwhile (ESRCH) is skipped.
      for (const pid of s.pids) {
        try {
          writeCgroupFile(`${dir(s.to)}/cgroup.procs`, String(pid));
        } catch {
          // Gone, or not ours to move: the enable below then fails.
        }
      }
    } else {
      try {
        writeCgroupFile(
          `${dir(s.path)}/cgroup.subtree_control`,
          s.controllers.map((c) => `+${c}`).join(" "),
        );
      } catch {
        // Busy (a process we could not move) or refused: reported with the limits.
      }
    }
  }
}

/**
 * Moves `pid` (waiting before it runs any of its own code) into the cgroup
 * for `cgroupsPath` (default `trun-<id>` beside the caller's own) and writes
 * the limits. Never throws for a host that cannot do it: it returns the
 * warnings instead.
 */
export function placeInCgroup(
  pid: number,
  cgroupsPath: string | undefined,
  resources: Resources | undefined,
  id: string,
  view: CgroupView | null = currentCgroupView(),
): Placement {
  const { files, unsupported } = resourceFiles(resources ?? {});
  const wanted = cgroupsPath !== undefined || files.length > 0;
  if (!wanted) return { warnings: [] };
  const leftOut = files.length > 0
    ? `; limits not applied: ${files.map(([f]) => f).join(", ")}`
    : "";
  if (!view) {
    return {
      warnings: [`no cgroup v2 hierarchy here: the container stays in trun's cgroup${leftOut}`],
    };
  }
  let path: string;
  try {
    path = cgroupPath(view.own, cgroupsPath ?? `trun-${id}`);
  } catch (e) {
    return { warnings: [(e as Error).message] };
  }
  const dir = `${view.root}${hierarchyDir(view.mount, path)}`;
  try {
    runPlacement(view, planPlacement(view, path, pid, files.map(([f]) => f)));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return {
      warnings: [
        `cannot use the cgroup "${dir}" (${why}): no writable cgroup v2 subtree for you here; the container stays in trun's cgroup${leftOut}`,
      ],
    };
  }
  const warnings: string[] = [];
  const missing: string[] = [];
  for (const [file, value] of files) {
    try {
      writeCgroupFile(`${dir}/${file}`, value);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) missing.push(file);
      else {warnings.push(
          `writing ${value} to "${dir}/${file}": ${e instanceof Error ? e.message : e}`,
        );}
    }
  }
  if (missing.length > 0) {
    const offered = readOr(`${dir}/cgroup.controllers`).trim() || "none";
    warnings.push(
      `the cgroup "${dir}" lacks the controllers for ${
        missing.join(", ")
      } (it offers: ${offered}): not applied`,
    );
  }
  if (unsupported.length > 0) {
    warnings.push(
      `linux.resources: ${unsupported.join(", ")} have no cgroup v2 equivalent: not applied`,
    );
  }
  return { dir, warnings };
}

/**
 * Kills every process in cgroup directory `dir` at once (`cgroup.kill`,
 * Linux 5.14); false when the file is not there or cannot be written, so
 * the caller signals the processes one by one instead.
 */
export function killCgroup(dir: string): boolean {
  try {
    writeCgroupFile(`${dir}/cgroup.kill`, "1");
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes a container's cgroup directory once its processes are gone
 * (rmdir), waiting up to `waitMs` for the last ones to be reaped; true when
 * it is gone.
 */
export async function removeCgroup(dir: string, waitMs = 1000): Promise<boolean> {
  const end = Date.now() + waitMs;
  for (;;) {
    try {
      Deno.removeSync(dir);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return true;
      // Busy: processes still exit (a PID namespace's last ones go after its
      // init); anything else is not ours to remove.
      if (!(e instanceof Deno.errors.Busy) || Date.now() >= end) return false;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
