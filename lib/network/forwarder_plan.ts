/**
 * What a published-port forwarder of a user-defined network serves, and the
 * names its process and record go by (lib/network/forwarder.ts): on their
 * own, so that every container's monitor can tell it needs none without
 * loading the forwarder and the network holder.
 */
import { storeRoot } from "../paths.ts";
import type { ContainerRecord, PortBinding } from "../store/containers.ts";

/** What a forwarder serves: the container's address and its published ports. */
export interface ForwarderPlan {
  /** The container's address on its first network. */
  ip: string;
  /** The published ports (host ports chosen). */
  ports: PortBinding[];
  /** The store the container is in (so the next trun command finds a stray forwarder of its own). */
  store: string;
}

/** The helper kind the record keeps for a forwarder. */
export const FORWARDER_KIND = "forwarder";

/** The internal command a forwarder runs (its argv names it, then the container's id). */
export const FORWARDER_COMMAND = "network-forwarder";

/**
 * The forwarder's plan for a record on user-defined networks with
 * published ports, or undefined (no ports, or not on a network).
 */
export function forwarderPlan(rec: ContainerRecord): ForwarderPlan | undefined {
  const ports = rec.network?.ports ?? [];
  const first = Object.values(rec.network?.networks ?? {})[0];
  if (ports.length === 0 || !first) return undefined;
  return { ip: first.ip, ports, store: storeRoot() };
}
