/**
 * Docker's resource flags (`--memory`, `--cpus`, `--pids-limit`, …) as OCI
 * `linux.resources`, with Docker's units, checks and messages; shared by
 * `run`/`create` and `update`. Pure: the host's CPU count is a parameter.
 */
import type { Resources } from "./types.ts";

/** The resource flags as given on the command line (each absent when not given). */
export interface ResourceFlags {
  /** `-m/--memory`. */
  memory?: string;
  /** `--memory-swap` (memory plus swap; -1 unlimited). */
  memorySwap?: string;
  /** `--memory-reservation`. */
  memoryReservation?: string;
  /** `--cpus`. */
  cpus?: string;
  /** `-c/--cpu-shares`. */
  cpuShares?: string;
  /** `--cpu-period`. */
  cpuPeriod?: string;
  /** `--cpu-quota`. */
  cpuQuota?: string;
  /** `--cpuset-cpus`. */
  cpusetCpus?: string;
  /** `--cpuset-mems`. */
  cpusetMems?: string;
  /** `--pids-limit` (-1 or 0 unlimited). */
  pidsLimit?: string;
  /** `--blkio-weight`. */
  blkioWeight?: string;
}

/** A value Docker refuses, with Docker's message (exit 125 for run, 1 for update). */
export class ResourceError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ResourceError";
  }
}

/** Docker's smallest memory limit and reservation (linuxMinMemory): 6 MiB. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** The CFS period `--cpus` uses (100 ms, in µs). */
export const CPU_PERIOD_DEFAULT = 100_000;

const UNIT_POWERS: Record<string, number> = { "": 0, k: 1, m: 2, g: 3, t: 4, p: 5 };

/**
 * A memory size as go-units' `RAMInBytes` reads it: a number (fractions
 * allowed) and an optional binary unit, `b`, `k`, `m`, `g`, `t`, `p`, with
 * or without `b`/`ib` ("512m", "1.5GiB", "1024"). `flag` names the flag in
 * Docker's error.
 */
export function parseMemoryBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text.trim());
  if (!m || (m[1]!.match(/\./g) ?? []).length > 1) {
    throw new ResourceError(
      `invalid argument "${text}" for "${flag}" flag: invalid size: '${text}'`,
    );
  }
  return Math.floor(Number(m[1]) * 1024 ** UNIT_POWERS[(m[2] ?? "").toLowerCase()]!);
}

/** Like {@link parseMemoryBytes}, with `-1` for unlimited (`--memory-swap`). */
export function parseMemorySwap(text: string): number {
  if (text.trim() === "-1") return -1;
  return parseMemoryBytes(text, "--memory-swap");
}

/**
 * `--cpus` as nano-CPUs, Docker's `NanoCPUs`: a decimal such as "1.5";
 * `hostCpus` bounds it ("Range of CPUs is from 0.01 to 2.00, as there are
 * only 2 CPUs available").
 */
export function parseNanoCpus(text: string, hostCpus: number): number {
  if (!/^\d*\.?\d+$|^\d+\.$/.test(text.trim())) {
    throw new ResourceError(
      `invalid argument "${text}" for "--cpus" flag: failed to parse ${text} as a rational number`,
    );
  }
  const nano = Math.round(Number(text) * 1e9);
  if (nano !== 0 && (nano < 1e7 || nano > hostCpus * 1e9)) {
    throw new ResourceError(
      `Range of CPUs is from 0.01 to ${
        hostCpus.toFixed(2)
      }, as there are only ${hostCpus} CPUs available`,
    );
  }
  return nano;
}

/** An integer flag value, or Docker's (pflag's) message. */
function parseInteger(text: string, flag: string): number {
  if (!/^[+-]?\d+$/.test(text.trim())) {
    throw new ResourceError(
      `invalid argument "${text}" for "${flag}" flag: strconv.ParseInt: parsing "${text}": invalid syntax`,
    );
  }
  return Number(text);
}

/** A cpuset list ("0-2,4"), checked as Docker's `parsers.ParseUintList`. */
function checkCpuset(text: string, what: "cpus" | "mems"): string {
  const ok = text.split(",").every((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    return m !== null && (m[2] === undefined || Number(m[1]) <= Number(m[2]));
  });
  if (!ok) throw new ResourceError(`Invalid value ${text} for cpuset ${what}`);
  return text;
}

/**
 * The flags' values as `linux.resources` (only what was given), checked
 * as dockerd checks a new container: minimum memory, swap not below
 * memory, reservation not above it, `--cpus` not with `--cpu-period` or
 * `--cpu-quota`, the CFS and blkio ranges.
 */
export function resourcesFromFlags(f: ResourceFlags, hostCpus: number): Resources {
  const r = parseResourceFlags(f, hostCpus);
  checkResources(r);
  return r;
}

/**
 * The flags' values as `linux.resources`, each value parsed but the whole
 * not checked (`update` checks it merged with the container's current
 * limits, {@link updateResources}).
 */
export function parseResourceFlags(f: ResourceFlags, hostCpus: number): Resources {
  const r: Resources = {};
  const memory: NonNullable<Resources["memory"]> = {};
  if (f.memory !== undefined) memory.limit = parseMemoryBytes(f.memory, "-m, --memory");
  if (f.memoryReservation !== undefined) {
    memory.reservation = parseMemoryBytes(f.memoryReservation, "--memory-reservation");
  }
  if (f.memorySwap !== undefined) memory.swap = parseMemorySwap(f.memorySwap);
  if (Object.keys(memory).length > 0) r.memory = memory;
  const cpu: NonNullable<Resources["cpu"]> = {};
  if (f.cpuShares !== undefined) cpu.shares = parseInteger(f.cpuShares, "-c, --cpu-shares");
  if (f.cpus !== undefined) {
    if (f.cpuPeriod !== undefined) {
      throw new ResourceError("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    }
    if (f.cpuQuota !== undefined) {
      throw new ResourceError("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    }
    const nano = parseNanoCpus(f.cpus, hostCpus);
    if (nano > 0) {
      cpu.period = CPU_PERIOD_DEFAULT;
      cpu.quota = Math.round(nano * CPU_PERIOD_DEFAULT / 1e9);
    }
  }
  if (f.cpuPeriod !== undefined) cpu.period = parseInteger(f.cpuPeriod, "--cpu-period");
  if (f.cpuQuota !== undefined) cpu.quota = parseInteger(f.cpuQuota, "--cpu-quota");
  if (f.cpusetCpus !== undefined) cpu.cpus = checkCpuset(f.cpusetCpus, "cpus");
  if (f.cpusetMems !== undefined) cpu.mems = checkCpuset(f.cpusetMems, "mems");
  if (Object.keys(cpu).length > 0) r.cpu = cpu;
  if (f.pidsLimit !== undefined) {
    const n = parseInteger(f.pidsLimit, "--pids-limit");
    // Docker: zero or less is unlimited.
    r.pids = { limit: n > 0 ? n : -1 };
  }
  if (f.blkioWeight !== undefined) {
    r.blockIO = { weight: parseInteger(f.blkioWeight, "--blkio-weight") };
  }
  return r;
}

/** dockerd's checks of a container's resources (`verifyPlatformContainerResources`). */
export function checkResources(r: Resources): void {
  const m = r.memory ?? {};
  if (m.limit !== undefined && m.limit > 0 && m.limit < MIN_MEMORY) {
    throw new ResourceError("Minimum memory limit allowed is 6MB");
  }
  if (m.swap !== undefined && m.swap > 0) {
    if (m.limit === undefined || m.limit <= 0) {
      throw new ResourceError(
        "You should always set the Memory limit when using Memoryswap limit, see usage",
      );
    }
    if (m.swap < m.limit) {
      throw new ResourceError(
        "Minimum memoryswap limit should be larger than memory limit, see usage",
      );
    }
  }
  if (m.reservation !== undefined && m.reservation > 0) {
    if (m.reservation < MIN_MEMORY) {
      throw new ResourceError("Minimum memory reservation allowed is 6MB");
    }
    if (m.limit !== undefined && m.limit > 0 && m.limit < m.reservation) {
      throw new ResourceError(
        "Minimum memory limit can not be less than memory reservation limit, see usage",
      );
    }
  }
  const c = r.cpu ?? {};
  if (c.period !== undefined && c.period !== 0 && (c.period < 1000 || c.period > 1_000_000)) {
    throw new ResourceError(
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    );
  }
  if (c.quota !== undefined && c.quota > 0 && c.quota < 1000) {
    throw new ResourceError("CPU cfs quota can not be less than 1ms (i.e. 1000)");
  }
  if (c.shares !== undefined && c.shares < 0) {
    throw new ResourceError("invalid CPU shares: must be 0 or more");
  }
  const weight = (r.blockIO as { weight?: number } | undefined)?.weight;
  if (weight !== undefined && weight !== 0 && (weight < 10 || weight > 1000)) {
    throw new ResourceError("Range of blkio weight is from 10 to 1000");
  }
}

/**
 * The resources after `docker update`: `current` with what `change` sets
 * replaced, checked as dockerd checks an update (a new memory limit above
 * the swap limit already set needs a new swap limit too), then as a whole.
 */
export function updateResources(current: Resources, change: Resources): Resources {
  const cur = current.memory ?? {};
  const next: Resources = structuredClone(current);
  const m = change.memory;
  if (m?.limit !== undefined && m.swap === undefined && cur.swap !== undefined && cur.swap > 0) {
    if (m.limit > cur.swap) {
      throw new ResourceError(
        "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
      );
    }
  }
  if (m) next.memory = { ...next.memory, ...m };
  if (change.cpu) next.cpu = { ...next.cpu, ...change.cpu };
  if (change.pids) next.pids = change.pids;
  if (change.blockIO) next.blockIO = { ...next.blockIO, ...change.blockIO };
  checkResources(next);
  return next;
}

/** Whether `r` asks for any limit (an empty update is refused, as Docker does). */
export function hasResources(r: Resources): boolean {
  return Object.keys(r).length > 0;
}

/**
 * Docker's HostConfig resource fields from `linux.resources`, zero (or
 * "" / null) when not set. `NanoCpus` is derived from quota and period,
 * as Podman's inspect does: the spec does not say whether `--cpus` or
 * `--cpu-quota` set them, so both are shown.
 */
export function hostConfigResources(r: Resources | undefined): Record<string, unknown> {
  const m = r?.memory ?? {}, c = r?.cpu ?? {};
  const quota = c.quota ?? 0, period = c.period ?? 0;
  return {
    BlkioWeight: (r?.blockIO as { weight?: number } | undefined)?.weight ?? 0,
    CpuShares: c.shares ?? 0,
    Memory: m.limit !== undefined && m.limit > 0 ? m.limit : 0,
    NanoCpus: quota > 0 && period > 0 ? Math.round(quota / period * 1e9) : 0,
    CpuPeriod: period,
    CpuQuota: quota,
    CpusetCpus: c.cpus ?? "",
    CpusetMems: c.mems ?? "",
    MemoryReservation: m.reservation !== undefined && m.reservation > 0 ? m.reservation : 0,
    MemorySwap: m.swap ?? 0,
    PidsLimit: r?.pids === undefined ? null : r.pids.limit > 0 ? r.pids.limit : -1,
  };
}

/**
 * Docker's default swap for a new container: a memory limit without
 * `--memory-swap` allows as much swap again (dockerd sets MemorySwap to
 * twice Memory), so `memory.swap.max` equals the limit.
 */
export function withDefaultSwap(r: Resources): Resources {
  const m = r.memory;
  if (m?.limit === undefined || m.limit <= 0 || m.swap !== undefined) return r;
  return { ...r, memory: { ...m, swap: m.limit * 2 } };
}

/** The flags that ask for each cgroup v2 file, for messages (`memory.max` → `--memory`). */
export const FLAGS_OF_FILE: Readonly<Record<string, string>> = {
  "memory.max": "--memory",
  "memory.swap.max": "--memory-swap",
  "memory.low": "--memory-reservation",
  "cpu.max": "--cpus",
  "cpu.weight": "--cpu-shares",
  "cpuset.cpus": "--cpuset-cpus",
  "cpuset.mems": "--cpuset-mems",
  "pids.max": "--pids-limit",
  "io.weight": "--blkio-weight",
};

/**
 * The flag the user gave that asks for cgroup v2 file `file`: swap and
 * the CFS quota come from `--memory` and `--cpu-quota`/`--cpu-period`
 * when `--memory-swap` and `--cpus` were not given.
 */
export function flagOfFile(file: string, given: ResourceFlags): string {
  if (file === "memory.swap.max" && given.memorySwap === undefined) return "--memory";
  if (file === "cpu.max" && given.cpus === undefined) {
    return given.cpuQuota !== undefined ? "--cpu-quota" : "--cpu-period";
  }
  return FLAGS_OF_FILE[file] ?? file;
}
