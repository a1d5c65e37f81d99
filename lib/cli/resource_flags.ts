/**
 * Docker's resource flags (`--memory`, `--cpus`, `--pids-limit`…), which
 * `run`, `create` and `update` share, and `run`/`create`'s `--cgroups`:
 * their grammar, and turning them into a checked request (lib/spec/
 * resources.ts holds the rules and messages).
 */
import type { FlagDefs, FlagValues } from "./args.ts";
import type { ResourceRequest } from "../spec/resources.ts";

/** The resource flags' grammar, spread into a command's. */
export const RESOURCE_FLAGS = {
  memory: { short: "m", kind: "string", value: "BYTES", help: "Memory limit (e.g. 512m, 1g)" },
  "memory-swap": {
    kind: "string",
    value: "BYTES",
    help: "Memory plus swap limit; -1 for unlimited swap (default: twice --memory)",
  },
  "memory-reservation": { kind: "string", value: "BYTES", help: "Memory soft limit" },
  cpus: { kind: "string", value: "N", help: "Number of CPUs (e.g. 1.5)" },
  "cpu-period": { kind: "string", value: "MICROSECONDS", help: "CPU CFS period" },
  "cpu-quota": { kind: "string", value: "MICROSECONDS", help: "CPU CFS quota per period" },
  "cpu-shares": { short: "c", kind: "string", value: "N", help: "CPU shares (relative weight)" },
  "cpuset-cpus": { kind: "string", value: "LIST", help: "CPUs to run on (0-3, 0,1)" },
  "cpuset-mems": { kind: "string", value: "LIST", help: "Memory nodes to use (0-3, 0,1)" },
  "pids-limit": { kind: "string", value: "N", help: "Process limit (-1 for unlimited)" },
  "blkio-weight": {
    kind: "string",
    value: "N",
    help: "Block I/O weight (10 to 1000; 0 to leave unset)",
  },
} as const satisfies FlagDefs;

/** `run`/`create`'s `--cgroups`. */
export const CGROUPS_FLAG = {
  cgroups: {
    kind: "string",
    value: "MODE",
    help:
      "enabled (default: a cgroup of its own where the host delegates one), disabled, or required (refuse to run without enforced limits)",
  },
} as const satisfies FlagDefs;

/** The values of the resource flags, as parsed. */
export type ResourceFlagSet = FlagValues<typeof RESOURCE_FLAGS>;

/** What `--cgroups` may say. */
export type CgroupsMode = "enabled" | "disabled" | "required";

/** The `--cgroups` mode, or an error naming the choices. */
export function cgroupsMode(value: string | undefined): CgroupsMode {
  const mode = value ?? "enabled";
  if (mode !== "enabled" && mode !== "disabled" && mode !== "required") {
    throw new Error(
      `invalid --cgroups "${mode}": use enabled, disabled or required`,
    );
  }
  return mode;
}

/** A sysfs list of what is online (`0-1`), or undefined when it cannot be read. */
function readOnline(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return undefined;
  }
}

/**
 * The request the flags make, parsed and checked with Docker's messages
 * (exit 125); `update` for `trun update`'s rules.
 */
export async function resourceRequest(
  flags: ResourceFlagSet,
  update = false,
): Promise<ResourceRequest> {
  const { checkResources, parseResourceFlags } = await import("../spec/resources.ts");
  const request = parseResourceFlags(flags);
  checkResources(request, {
    cpus: navigator.hardwareConcurrency,
    ...optional("onlineCpus", readOnline("/sys/devices/system/cpu/online")),
    ...optional("onlineMems", readOnline("/sys/devices/system/node/online")),
  }, update);
  return request;
}

function optional<K extends string>(key: K, v: string | undefined): Partial<Record<K, string>> {
  return v === undefined ? {} : { [key]: v } as Record<K, string>;
}
