/**
 * Placing a container in a cgroup v2 directory and writing its limits
 * (linux.cgroupsPath and linux.resources; cgroups(7), the kernel's
 * Documentation/admin-guide/cgroup-v2.rst). The conversions from the
 * spec's v1-flavoured numbers to v2 files follow runc's and crun's.
 *
 * This is the engine's part only: where the caller can create the
 * directory (root; a delegated subtree) the container goes there and every
 * limit whose controller file exists is written; anything else is one
 * warning naming what was left out. Discovery of systemd-delegated user
 * subtrees, stats, freeze and update are the cgroups work's.
 */
import type { Resources } from "../spec/types.ts";

/** The cgroup2 mount point in /proc/self/mountinfo text (pure v2 or hybrid), or null. */
export function cgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    if (post.split(" ")[0] === "cgroup2") return pre.split(" ")[4] ?? null;
  }
  return null;
}

/** The caller's cgroup v2 path from /proc/self/cgroup text (the `0::` line), or null. */
export function ownCgroup(procCgroup: string): string | null {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"));
  return line === undefined ? null : line.slice(3);
}

/**
 * The directory for `cgroupsPath`: absolute paths are from the hierarchy's
 * root, relative ones from the caller's own cgroup (runc's cgroupfs
 * rules). `..` is refused, so the path cannot climb out.
 */
export function cgroupDir(mount: string, own: string, cgroupsPath: string): string {
  const parts = cgroupsPath.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) {
    throw new Error(`linux.cgroupsPath "${cgroupsPath}" may not contain ".."`);
  }
  const base = cgroupsPath.startsWith("/") ? "" : own.replace(/\/+$/, "");
  return `${mount}${base}/${parts.join("/")}`.replace(/\/+/g, "/");
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
 * Moves `pid` (waiting before it runs any of its own code) into the cgroup
 * for `cgroupsPath` and writes the limits. Never throws for a host that
 * cannot do it: it returns the warnings instead.
 */
export function placeInCgroup(
  pid: number,
  cgroupsPath: string | undefined,
  resources: Resources | undefined,
  id: string,
): Placement {
  const { files, unsupported } = resourceFiles(resources ?? {});
  const wanted = cgroupsPath !== undefined || files.length > 0;
  if (!wanted) return { warnings: [] };
  const mount = cgroup2Mount(readOr("/proc/self/mountinfo"));
  const own = ownCgroup(readOr("/proc/self/cgroup"));
  const leftOut = files.length > 0
    ? `; limits not applied: ${files.map(([f]) => f).join(", ")}`
    : "";
  if (!mount || own === null) {
    return {
      warnings: [`no cgroup v2 hierarchy here: the container stays in trun's cgroup${leftOut}`],
    };
  }
  const dir = cgroupDir(mount, own, cgroupsPath ?? `trun-${id}`);
  try {
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(`${dir}/cgroup.procs`, String(pid));
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
      Deno.writeTextFileSync(`${dir}/${file}`, value, { create: false });
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

/** Removes a container's cgroup directory once its processes are gone (rmdir). */
export function removeCgroup(dir: string): void {
  try {
    Deno.removeSync(dir);
  } catch {
    // Still busy or already gone: a later delete or the admin tidies it.
  }
}
