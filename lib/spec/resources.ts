/**
 * Docker's resource flags (`--memory`, `--cpus`, `--pids-limit`…): their
 * values as Docker's CLI parses them, Docker's checks with its messages,
 * and the spec's `linux.resources` they become (the runtime-spec's
 * v1-flavoured numbers; lib/engine/cgroup.ts writes them to cgroup v2
 * files). Pure: the host's CPU count and online CPUs are arguments.
 */
import { parseByteSize } from "./mounts.ts";
import type { Resources } from "./types.ts";

/** The limits a user asked for, in Docker's HostConfig terms (absent: not asked). */
export interface ResourceRequest {
  /** `-m/--memory`, bytes (0: unlimited). */
  memory?: number;
  /** `--memory-swap`, bytes of memory plus swap (-1: unlimited swap). */
  memorySwap?: number;
  /** `--memory-reservation`, bytes. */
  memoryReservation?: number;
  /** `--cpus`, in billionths of a CPU. */
  nanoCpus?: number;
  /** `--cpu-period`, microseconds. */
  cpuPeriod?: number;
  /** `--cpu-quota`, microseconds per period. */
  cpuQuota?: number;
  /** `-c/--cpu-shares`, relative weight. */
  cpuShares?: number;
  /** `--cpuset-cpus` (`0-3`, `0,1`). */
  cpusetCpus?: string;
  /** `--cpuset-mems`. */
  cpusetMems?: string;
  /** `--pids-limit` (-1 or 0: unlimited). */
  pidsLimit?: number;
  /** `--blkio-weight` (10 to 1000; 0: unset). */
  blkioWeight?: number;
}

/** The flags' values as given (strings), by flag name; undefined: not given. */
export type ResourceFlagValues = Partial<
  Record<
    | "memory"
    | "memory-swap"
    | "memory-reservation"
    | "cpus"
    | "cpu-period"
    | "cpu-quota"
    | "cpu-shares"
    | "cpuset-cpus"
    | "cpuset-mems"
    | "pids-limit"
    | "blkio-weight",
    string | undefined
  >
>;

/** How each flag is named in Docker's "invalid argument" message (with its short form). */
const FLAG_NAMES: Record<keyof ResourceFlagValues, string> = {
  memory: "-m, --memory",
  "memory-swap": "--memory-swap",
  "memory-reservation": "--memory-reservation",
  cpus: "--cpus",
  "cpu-period": "--cpu-period",
  "cpu-quota": "--cpu-quota",
  "cpu-shares": "-c, --cpu-shares",
  "cpuset-cpus": "--cpuset-cpus",
  "cpuset-mems": "--cpuset-mems",
  "pids-limit": "--pids-limit",
  "blkio-weight": "--blkio-weight",
};

/** A flag value Docker's CLI would refuse (its wording; exit 125). */
function invalid(flag: keyof ResourceFlagValues, value: string, why: string): Error {
  return Object.assign(
    new Error(`invalid argument "${value}" for "${FLAG_NAMES[flag]}" flag: ${why}`),
    { exitCode: 125 },
  );
}

/** A request Docker's daemon would refuse (its wording; exit 125). */
function refused(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 125 });
}

/** Docker's memory flag values: RAMInBytes units (`512m`, `1g`), `-1` only for swap. */
function bytes(flag: keyof ResourceFlagValues, v: string, allowUnlimited: boolean): number {
  if (allowUnlimited && v === "-1") return -1;
  const n = parseByteSize(v);
  if (n === undefined) throw invalid(flag, v, `invalid size: '${v}'`);
  return n;
}

/** An integer flag (Go's strconv: optional sign, decimal digits). */
function integer(flag: keyof ResourceFlagValues, v: string): number {
  if (!/^[+-]?\d+$/.test(v)) {
    throw invalid(flag, v, `strconv.ParseInt: parsing "${v}": invalid syntax`);
  }
  return Number(v);
}

/** `--cpus` as Docker parses it: a decimal number, at most 9 fractional digits. */
function nanoCpus(v: string): number {
  const m = /^(\d*)(?:\.(\d*))?$/.exec(v);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) {
    throw invalid("cpus", v, `failed to parse ${v} as a rational number`);
  }
  const frac = m[2] ?? "";
  if (frac.replace(/0+$/, "").length > 9) throw invalid("cpus", v, "value is too precise");
  return Number(m[1] || "0") * 1e9 + Number(frac.padEnd(9, "0").slice(0, 9));
}

/** Parses the flags' strings into a request (a malformed value: Docker's CLI message). */
export function parseResourceFlags(f: ResourceFlagValues): ResourceRequest {
  const r: ResourceRequest = {};
  if (f.memory !== undefined) r.memory = bytes("memory", f.memory, false);
  if (f["memory-swap"] !== undefined) {
    r.memorySwap = bytes("memory-swap", f["memory-swap"], true);
  }
  if (f["memory-reservation"] !== undefined) {
    r.memoryReservation = bytes("memory-reservation", f["memory-reservation"], false);
  }
  if (f.cpus !== undefined) r.nanoCpus = nanoCpus(f.cpus);
  if (f["cpu-period"] !== undefined) r.cpuPeriod = integer("cpu-period", f["cpu-period"]);
  if (f["cpu-quota"] !== undefined) r.cpuQuota = integer("cpu-quota", f["cpu-quota"]);
  if (f["cpu-shares"] !== undefined) r.cpuShares = integer("cpu-shares", f["cpu-shares"]);
  if (f["cpuset-cpus"] !== undefined) r.cpusetCpus = f["cpuset-cpus"];
  if (f["cpuset-mems"] !== undefined) r.cpusetMems = f["cpuset-mems"];
  if (f["pids-limit"] !== undefined) r.pidsLimit = integer("pids-limit", f["pids-limit"]);
  if (f["blkio-weight"] !== undefined) {
    const w = integer("blkio-weight", f["blkio-weight"]);
    if (w < 0 || w > 65535) {
      throw invalid("blkio-weight", f["blkio-weight"], "value out of range");
    }
    r.blkioWeight = w;
  }
  return r;
}

/** Whether a request asks for anything at all. */
export function hasResources(r: ResourceRequest): boolean {
  return Object.values(r).some((v) => v !== undefined);
}

/** Docker's smallest memory limit and reservation: 6 MiB. */
const MIN_MEMORY = 6 * 1024 * 1024;

/** Parses a cpuset list (`0-3,5`) into its members; null when malformed. */
export function parseCpuset(list: string): number[] | null {
  const out = new Set<number>();
  for (const part of list.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return null;
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out];
}

/** What the checks need to know about the host. */
export interface ResourceHost {
  /** Number of CPUs (Docker's `runtime.NumCPU`). */
  cpus: number;
  /** Online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-1`), when known. */
  onlineCpus?: string;
  /** Online memory nodes (`/sys/devices/system/node/online`), when known. */
  onlineMems?: string;
}

/** A cpuset flag checked against what the host has online (Docker's messages). */
function checkCpuset(value: string, online: string | undefined, what: "cpus" | "mems"): void {
  const wanted = parseCpuset(value);
  if (wanted === null) throw refused(`Invalid value ${value} for cpuset ${what}`);
  const have = online === undefined ? null : parseCpuset(online.trim());
  if (have && wanted.some((c) => !have.includes(c))) {
    throw refused(
      what === "cpus"
        ? `Requested CPUs are not available - requested ${value}, available: ${online!.trim()}`
        : `Requested memory nodes are not available - requested ${value}, available: ${
          online!.trim()
        }`,
    );
  }
}

/**
 * Docker's daemon checks (verifyPlatformContainerResources), with its
 * messages. `update` (for `trun update`) allows a swap limit without a
 * memory limit, as Docker's update does.
 */
export function checkResources(r: ResourceRequest, host: ResourceHost, update = false): void {
  const memory = r.memory ?? 0, swap = r.memorySwap ?? 0, reservation = r.memoryReservation ?? 0;
  if (memory !== 0 && memory < MIN_MEMORY) throw refused("Minimum memory limit allowed is 6MB");
  if (memory > 0 && swap > 0 && swap < memory) {
    throw refused("Minimum memoryswap limit should be larger than memory limit, see usage");
  }
  if (memory === 0 && swap > 0 && !update) {
    throw refused(
      "You should always set the Memory limit when using Memoryswap limit, see usage",
    );
  }
  if (reservation > 0 && reservation < MIN_MEMORY) {
    throw refused("Minimum memory reservation allowed is 6MB");
  }
  if (memory > 0 && reservation > 0 && memory < reservation) {
    throw refused(
      "Minimum memory limit can not be less than memory reservation limit, see usage",
    );
  }
  const nano = r.nanoCpus ?? 0;
  if (nano > 0 && (r.cpuPeriod ?? 0) > 0) {
    throw refused("Conflicting options: Nano CPUs and CPU Period cannot both be set");
  }
  if (nano > 0 && (r.cpuQuota ?? 0) > 0) {
    throw refused("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
  }
  if (nano < 0 || nano > host.cpus * 1e9) {
    throw refused(
      `Range of CPUs is from 0.01 to ${host.cpus}.00, as there are only ${host.cpus} CPUs available`,
    );
  }
  const period = r.cpuPeriod ?? 0;
  if (period !== 0 && (period < 1000 || period > 1000000)) {
    throw refused(
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    );
  }
  const quota = r.cpuQuota ?? 0;
  if (quota > 0 && quota < 1000) {
    throw refused("CPU cfs quota can not be less than 1ms (i.e. 1000)");
  }
  if (r.cpusetCpus) checkCpuset(r.cpusetCpus, host.onlineCpus, "cpus");
  if (r.cpusetMems) checkCpuset(r.cpusetMems, host.onlineMems, "mems");
  const weight = r.blkioWeight ?? 0;
  if (weight > 0 && (weight < 10 || weight > 1000)) {
    throw refused("Range of blkio weight is from 10 to 1000");
  }
}

/** The CFS period `--cpus` uses (Docker's default, 100 ms). */
const CPUS_PERIOD = 100000;

/**
 * The spec's `linux.resources` for a request, as Docker's daemon fills
 * runc's: a memory limit without `--memory-swap` allows as much swap again
 * (total twice the limit); `--cpus=N` is a quota of N periods of 100 ms;
 * shares clamped to [2, 262144]; a pids limit of 0 or -1 is no limit.
 * Undefined when nothing is asked.
 */
export function ociResources(r: ResourceRequest): Resources | undefined {
  const out: Resources = {};
  const memory: NonNullable<Resources["memory"]> = {};
  if (r.memory !== undefined && r.memory > 0) memory.limit = r.memory;
  if (r.memoryReservation !== undefined && r.memoryReservation > 0) {
    memory.reservation = r.memoryReservation;
  }
  if (r.memorySwap !== undefined && r.memorySwap !== 0) memory.swap = r.memorySwap;
  else if (memory.limit !== undefined) memory.swap = memory.limit * 2;
  if (Object.keys(memory).length > 0) out.memory = memory;
  const cpu: NonNullable<Resources["cpu"]> = {};
  if (r.cpuShares !== undefined && r.cpuShares !== 0) {
    cpu.shares = Math.min(262144, Math.max(2, r.cpuShares));
  }
  if (r.nanoCpus !== undefined && r.nanoCpus > 0) {
    cpu.period = CPUS_PERIOD;
    cpu.quota = Math.round((r.nanoCpus * CPUS_PERIOD) / 1e9);
  } else {
    if (r.cpuPeriod !== undefined && r.cpuPeriod > 0) cpu.period = r.cpuPeriod;
    if (r.cpuQuota !== undefined && r.cpuQuota !== 0) cpu.quota = r.cpuQuota;
  }
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  if (r.pidsLimit !== undefined && r.pidsLimit > 0) out.pids = { limit: r.pidsLimit };
  if (r.blkioWeight !== undefined && r.blkioWeight > 0) out.blockIO = { weight: r.blkioWeight };
  return Object.keys(out).length > 0 ? out : undefined;
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
export function flagOfFile(file: string, given: ResourceFlagValues): string {
  if (file === "memory.swap.max" && given["memory-swap"] === undefined) return "--memory";
  if (file === "cpu.max" && given.cpus === undefined) {
    return given["cpu-quota"] !== undefined ? "--cpu-quota" : "--cpu-period";
  }
  return FLAGS_OF_FILE[file] ?? file;
}
