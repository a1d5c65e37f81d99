/**
 * The container's capabilities: `--cap-add`, `--cap-drop` and
 * `--privileged` applied to Docker's default list (moby's
 * `TweakCapabilities`), then spread over the five sets for the process's
 * user, as Podman does.
 */
import { CAPABILITIES } from "../../ffi/syscalls.ts";
import type { Capabilities } from "./types.ts";
import { DEFAULT_CAPABILITIES } from "./defaults.ts";

/** Every capability trun knows, by name (`CAP_CHOWN`…), in kernel order. */
export const ALL_CAPABILITIES: readonly string[] = Object.keys(CAPABILITIES);

/**
 * A capability flag's value as the kernel's name: any case, with or
 * without `CAP_`; `ALL` stays `ALL`. Throws on a name the kernel lacks.
 */
export function capabilityName(raw: string): string {
  const upper = raw.trim().toUpperCase();
  if (upper === "ALL") return "ALL";
  const name = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(name)) throw new Error(`unknown capability: "${name}"`);
  return name;
}

/**
 * The names of the capabilities in a `/proc/PID/status` mask (`CapBnd:`'s
 * hex), in kernel order.
 */
export function capabilitiesInMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((c) => (mask >> BigInt(CAPABILITIES[c]!)) & 1n);
}

/** What the user asked for. */
export interface CapabilityRequest {
  /** `--cap-add` values. */
  add?: readonly string[];
  /** `--cap-drop` values. */
  drop?: readonly string[];
  /** `--privileged`. */
  privileged?: boolean;
  /**
   * The capabilities trun itself may pass on (its bounding set); absent:
   * every one. No process can give what it lacks.
   */
  available?: readonly string[];
}

function names(list: readonly string[] | undefined, flag: string): string[] {
  return [
    ...new Set((list ?? []).map((c) => {
      try {
        return capabilityName(c);
      } catch (e) {
        throw new Error(`invalid ${flag}: ${(e as Error).message}`);
      }
    })),
  ];
}

/**
 * The container's capability list, as Docker decides it: `--privileged`
 * is everything (drops ignored, as Docker does); `--cap-add ALL` is
 * everything but the drops; `--cap-drop ALL` keeps only the adds;
 * otherwise the defaults less the drops plus the adds. "Everything" and
 * the defaults are cut to what trun has (Podman takes its own bounding set
 * for `--privileged`); a capability added by name that trun lacks is an
 * error rather than a failed start.
 */
export function capabilityList(req: CapabilityRequest): string[] {
  const have = (c: string) => req.available === undefined || req.available.includes(c);
  const all = ALL_CAPABILITIES.filter(have);
  if (req.privileged) return all;
  const add = names(req.add, "--cap-add");
  const drop = names(req.drop, "--cap-drop");
  if (add.includes("ALL")) return all.filter((c) => !drop.includes(c));
  const missing = add.filter((c) => c !== "ALL" && !have(c));
  if (missing.length > 0) {
    throw new Error(
      `invalid --cap-add: ${missing.join(", ")} not in trun's own bounding set: ` +
        "this host does not give it to trun, so no container of it can have it",
    );
  }
  if (drop.includes("ALL")) return add;
  const kept = DEFAULT_CAPABILITIES.filter((c) => have(c) && !drop.includes(c));
  return [...kept, ...add.filter((c) => !kept.includes(c))];
}

/**
 * The five sets for a process running as `uid`. Root: the list in
 * bounding, effective and permitted; inheritable and ambient empty (Docker
 * and Podman leave inheritable empty since CVE-2022-24769, so a program
 * with inheritable file capabilities gains nothing). Another user: the
 * list bounds it, and only what `--cap-add` asked for (and the list still
 * holds) is effective, permitted, inheritable and ambient, so it survives
 * execve (Podman's rule; Docker's non-root process ends with none, as
 * execve clears a non-root process's permitted set). `--privileged` alone
 * gives such a user nothing more, as with Podman.
 */
export function capabilitySets(
  list: readonly string[],
  uid: number,
  req: CapabilityRequest,
): Required<Capabilities> {
  const bounding = [...list];
  if (uid === 0) {
    return { bounding, effective: bounding, permitted: bounding, inheritable: [], ambient: [] };
  }
  const added = names(req.add, "--cap-add");
  const asked = added.includes("ALL") ? bounding : bounding.filter((c) => added.includes(c));
  return { bounding, effective: asked, permitted: asked, inheritable: asked, ambient: asked };
}
