/**
 * A container's resource usage for `stats`: read from its cgroup v2 files
 * (`cpu.stat`, `memory.current`/`memory.stat`/`memory.max`, `io.stat`,
 * `cgroup.threads`) where they exist, else from /proc for its processes
 * (CPU times from `stat`, memory as PSS or RSS, I/O from `io`), each such
 * fallback named in `notes`; network bytes from `/proc/PID/net/dev` of its
 * network namespace. Never a made-up number: what cannot be read is
 * absent. Parsers and the arithmetic are pure; `sampleUsage` does the I/O.
 */

/** `key value` lines (`cpu.stat`, `memory.stat`) as numbers. Pure. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

/** Bytes read and written, summed over the devices of an `io.stat`. Pure. */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0, write = 0;
  for (const m of text.matchAll(/\brbytes=(\d+)/g)) read += Number(m[1]);
  for (const m of text.matchAll(/\bwbytes=(\d+)/g)) write += Number(m[1]);
  return { read, write };
}

/** Bytes received and sent by the interfaces of a `/proc/PID/net/dev`, loopback left out. Pure. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0, tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    if (line.slice(0, colon).trim() === "lo") continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

/**
 * CPU time in clock ticks (utime + stime + cutime + cstime: children it
 * reaped count, so work of exited processes is kept) and the thread count,
 * from `/proc/PID/stat`. Pure.
 */
export function parseProcStat(text: string): { ticks: number; threads: number } | null {
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // Fields 14-17 and 20 of proc(5), here shifted by the two before ")".
  const n = (i: number) => Number(rest[i - 3]);
  const ticks = n(14) + n(15) + n(16) + n(17);
  return Number.isFinite(ticks) ? { ticks, threads: n(20) } : null;
}

/** USER_HZ: the unit of /proc's CPU times (100 on every Linux architecture trun runs on). */
export const CLOCK_TICKS_PER_SECOND = 100;

/** What one look at a container's usage found; absent fields could not be read. */
export interface UsageSample {
  /** When it was taken (ms, monotonic enough: `performance.timeOrigin + now()`). */
  at: number;
  /** CPU time used so far, ns. */
  cpuNs?: number;
  /** Memory in use, bytes (Docker's: without the inactive page cache). */
  memory?: number;
  /** The memory limit, bytes (the host's memory when unlimited). */
  memoryLimit?: number;
  /** Bytes received and sent, network. */
  net?: { rx: number; tx: number };
  /** Bytes read and written, block devices. */
  block?: { read: number; write: number };
  /** Threads (`pids.current` counts threads too). */
  pids?: number;
  /** Where a value came from other than its cgroup file, one line each. */
  notes: string[];
}

/**
 * CPU % between two samples as Docker computes it (CPU time over wall
 * time, 100% per fully used CPU); with one sample, over the time since
 * the container started (Podman's first figure). Pure.
 */
export function cpuPercent(
  cur: Pick<UsageSample, "at" | "cpuNs">,
  prev: Pick<UsageSample, "at" | "cpuNs"> | undefined,
  startedAt: number | undefined,
): number | undefined {
  if (cur.cpuNs === undefined) return undefined;
  if (prev?.cpuNs !== undefined && cur.at > prev.at) {
    return Math.max(0, cur.cpuNs - prev.cpuNs) / ((cur.at - prev.at) * 1e6) * 100;
  }
  if (startedAt === undefined || cur.at <= startedAt) return undefined;
  return cur.cpuNs / ((cur.at - startedAt) * 1e6) * 100;
}

/**
 * Docker's memory usage on cgroup v2: `memory.current` less the inactive
 * file cache (`inactive_file` of memory.stat), never below zero. Pure.
 */
export function memoryUsage(current: number, stat: Map<string, number>): number {
  return Math.max(0, current - (stat.get("inactive_file") ?? 0));
}

/** The memory limit of `memory.max` ("max": the host's `total`), or undefined. Pure. */
export function memoryLimit(max: string | null, total: number | undefined): number | undefined {
  if (max === null) return total;
  const v = max.trim();
  return v === "max" ? total : /^\d+$/.test(v) ? Number(v) : total;
}

function read(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** MemTotal of /proc/meminfo in bytes. */
export function hostMemory(): number | undefined {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(read("/proc/meminfo") ?? "");
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Bytes a process's memory counts: PSS from smaps_rollup, else RSS from statm. */
function processMemory(pid: number): { bytes: number; kind: "PSS" | "RSS" } | null {
  const pss = /^Pss:\s+(\d+) kB/m.exec(read(`/proc/${pid}/smaps_rollup`) ?? "");
  if (pss) return { bytes: Number(pss[1]) * 1024, kind: "PSS" };
  const statm = (read(`/proc/${pid}/statm`) ?? "").split(" ");
  return statm.length > 1 ? { bytes: Number(statm[1]) * 4096, kind: "RSS" } : null;
}

/** What `sampleUsage` needs to know about a running container. */
export interface UsageTarget {
  /** Its first process (host pid). */
  pid: number;
  /** Its own cgroup v2 directory, if it has one. */
  cgroup?: string;
  /** Every process of it (host pids), used where the cgroup files are missing. */
  processes: () => number[];
}

/** One look at the usage of a running container. */
export function sampleUsage(t: UsageTarget, hostTotal = hostMemory()): UsageSample {
  const s: UsageSample = { at: performance.timeOrigin + performance.now(), notes: [] };
  const cg = t.cgroup;
  const file = (name: string) => cg === undefined ? null : read(`${cg}/${name}`);
  const where = cg === undefined
    ? "it has no cgroup of its own"
    : `its cgroup lacks the controller`;
  let procs: number[] | undefined;
  const processes = () => procs ??= t.processes();
  let stats: { ticks: number; threads: number }[] | undefined;
  const procStats = () =>
    stats ??= processes().map((p) => parseProcStat(read(`/proc/${p}/stat`) ?? ""))
      .filter((x) => x !== null);
  const cpuStat = file("cpu.stat");
  const usage = cpuStat === null ? undefined : parseFlatKeyed(cpuStat).get("usage_usec");
  if (usage !== undefined) s.cpuNs = usage * 1000;
  else {
    s.cpuNs = procStats().reduce((a, x) => a + x.ticks, 0) * (1e9 / CLOCK_TICKS_PER_SECOND);
    s.notes.push(`CPU: the processes' times in /proc (${where})`);
  }
  const current = file("memory.current");
  if (current !== null && /^\d+/.test(current)) {
    s.memory = memoryUsage(Number(current.trim()), parseFlatKeyed(file("memory.stat") ?? ""));
    const limit = memoryLimit(file("memory.max"), hostTotal);
    if (limit !== undefined) s.memoryLimit = limit;
  } else {
    const each = processes().map(processMemory).filter((x) => x !== null);
    if (each.length > 0) {
      s.memory = each.reduce((a, x) => a + x.bytes, 0);
      const kinds = [...new Set(each.map((x) => x.kind))].join("/");
      s.notes.push(
        `MEM: the sum of the processes' ${kinds} from /proc, limit the host's memory (${
          where.replace("the controller", "the memory controller")
        }: no limit is enforced)`,
      );
    }
    if (hostTotal !== undefined) s.memoryLimit = hostTotal;
  }
  const pidsCurrent = file("pids.current");
  if (pidsCurrent !== null && /^\d+/.test(pidsCurrent)) s.pids = Number(pidsCurrent.trim());
  else if (cg !== undefined && file("cgroup.threads") !== null) {
    s.pids = file("cgroup.threads")!.split("\n").filter((l) => l !== "").length;
  } else {
    s.pids = procStats().reduce((a, x) => a + x.threads, 0);
    s.notes.push(`PIDS: threads counted in /proc (${where})`);
  }
  const io = file("io.stat");
  if (io !== null) s.block = parseIoStat(io);
  else {
    let readB = 0, writeB = 0, seen = 0;
    for (const p of processes()) {
      const kv = parseKeyColon(read(`/proc/${p}/io`) ?? "");
      if (kv.has("read_bytes")) {
        readB += kv.get("read_bytes")!;
        writeB += kv.get("write_bytes") ?? 0;
        seen++;
      }
    }
    if (seen > 0) {
      s.block = { read: readB, write: writeB };
      s.notes.push(
        `BLOCK I/O: the live processes' /proc/PID/io (${
          where.replace("the controller", "the io controller")
        })`,
      );
    }
  }
  const net = containerNet(t.pid);
  if (net) s.net = net;
  return s;
}

/** `key: value` lines (`/proc/PID/io`) as numbers. */
function parseKeyColon(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(\w+):\s+(\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/**
 * The network bytes of the container's own network namespace; zero for a
 * container on the host's network (Docker shows none for `--network host`).
 */
function containerNet(pid: number): { rx: number; tx: number } | undefined {
  let own: string, mine: string;
  try {
    own = Deno.readLinkSync(`/proc/${pid}/ns/net`);
    mine = Deno.readLinkSync("/proc/self/ns/net");
  } catch {
    return undefined;
  }
  if (own === mine) return { rx: 0, tx: 0 };
  const dev = read(`/proc/${pid}/net/dev`);
  return dev === null ? undefined : parseNetDev(dev);
}
