/**
 * Docker's resource flags of `run`, `create` and `update` (`--memory`,
 * `--cpus`, `--pids-limit`, …), in a module of their own that imports
 * only types, so that each command's grammar can take them cheaply.
 */
import type { ResourceFlags } from "../spec/resources.ts";

/** The resource flags, as Docker spells them. */
export const RESOURCE_FLAGS = {
  "blkio-weight": {
    kind: "string",
    value: "uint16",
    help: "Block IO (relative weight), between 10 and 1000, or 0 to disable",
  },
  "cpu-period": {
    kind: "string",
    value: "int",
    help: "Limit CPU CFS (Completely Fair Scheduler) period",
  },
  "cpu-quota": {
    kind: "string",
    value: "int",
    help: "Limit CPU CFS (Completely Fair Scheduler) quota",
  },
  "cpu-shares": { short: "c", kind: "string", value: "int", help: "CPU shares (relative weight)" },
  cpus: { kind: "string", value: "decimal", help: "Number of CPUs" },
  "cpuset-cpus": {
    kind: "string",
    value: "string",
    help: "CPUs in which to allow execution (0-3, 0,1)",
  },
  "cpuset-mems": {
    kind: "string",
    value: "string",
    help: "MEMs in which to allow execution (0-3, 0,1)",
  },
  memory: { short: "m", kind: "string", value: "bytes", help: "Memory limit" },
  "memory-reservation": { kind: "string", value: "bytes", help: "Memory soft limit" },
  "memory-swap": {
    kind: "string",
    value: "bytes",
    help: "Swap limit equal to memory plus swap: -1 to enable unlimited swap",
  },
  "pids-limit": {
    kind: "string",
    value: "int",
    help: "Tune container pids limit (set -1 for unlimited)",
  },
} as const;

/** The values of {@link RESOURCE_FLAGS} as parsed, for `resourcesFromFlags`. */
export function resourceFlagValues(
  f: { [K in keyof typeof RESOURCE_FLAGS]: string | undefined },
): ResourceFlags {
  const out: ResourceFlags = {};
  const set = (k: keyof ResourceFlags, v: string | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("blkioWeight", f["blkio-weight"]);
  set("cpuPeriod", f["cpu-period"]);
  set("cpuQuota", f["cpu-quota"]);
  set("cpuShares", f["cpu-shares"]);
  set("cpus", f.cpus);
  set("cpusetCpus", f["cpuset-cpus"]);
  set("cpusetMems", f["cpuset-mems"]);
  set("memory", f.memory);
  set("memoryReservation", f["memory-reservation"]);
  set("memorySwap", f["memory-swap"]);
  set("pidsLimit", f["pids-limit"]);
  return out;
}

/** `run`/`create`'s `--cgroups`. */
export const CGROUPS_FLAG = {
  cgroups: {
    kind: "string",
    value: "MODE",
    help:
      "enabled (default: a cgroup of its own where the host delegates one), disabled, or required (refuse to run without enforced limits)",
  },
} as const;

/** What `--cgroups` may say. */
export type CgroupsMode = "enabled" | "disabled" | "required";

/** The `--cgroups` mode, or an error naming the choices. */
export function cgroupsMode(value: string | undefined): CgroupsMode {
  const mode = value ?? "enabled";
  if (mode !== "enabled" && mode !== "disabled" && mode !== "required") {
    throw new Error(`invalid --cgroups "${mode}": use enabled, disabled or required`);
  }
  return mode;
}
