/**
 * A container's endpoints on user-defined networks: from its address
 * leases (lib/store/networks.ts) to the interfaces the holder makes
 * (lib/network/holder.ts) when it starts, the hosts files of the
 * containers that share a network, and the record's `network.networks`
 * that `inspect` shows.
 *
 * Name resolution is /etc/hosts kept current by trun rather than a DNS
 * responder in the holder: every trun command that changes who is on a
 * network (run/create, rm, connect, disconnect) rewrites the hosts files
 * of the containers on it, in place (the file is bind-mounted, so a rename
 * would not be seen). It costs no process and no memory, works with every
 * libc and busybox, and needs no resolver address in the container; its
 * limit is that a program that caches /etc/hosts misses later changes.
 */
import { processStat } from "../engine/state.ts";
import { type ContainerRecord, type NetworkEndpoint, openStore, type Store } from "../store/mod.ts";
import {
  containerLeases,
  listLeases,
  listNetworks,
  type NetworkLease,
  type NetworkRecord,
} from "../store/networks.ts";
import { parseIPv4, parseSubnet } from "./ipam.ts";
import { hostsEntriesFor, type NetworkMember, withNetworkEntries } from "./hosts.ts";
import { askHolder, type LinkPlan, runningHolder, useHolder } from "./holder.ts";

/** The veth end in the shared namespace for container `id` on network `networkId` (15 bytes at most). */
export function vethName(id: string, networkId: string): string {
  return `tv${id.slice(0, 8)}${networkId.slice(0, 4)}`;
}

/** The interfaces to make for `leases`. */
export function linkPlans(
  leases: readonly NetworkLease[],
  networks: readonly NetworkRecord[],
): LinkPlan[] {
  return leases.flatMap((l) => {
    const n = networks.find((x) => x.name === l.network);
    if (!n) return [];
    return [{
      bridge: n.bridge,
      gateway: parseIPv4(n.gateway),
      prefix: parseSubnet(n.subnet).prefix,
      veth: vethName(l.container, n.id),
      ifname: l.ifname,
      ip: parseIPv4(l.ip),
      mac: l.mac,
      internal: n.internal,
    }];
  });
}

/** Whether a record's first process still runs. */
function running(rec: ContainerRecord): boolean {
  if (rec.state !== "running" || rec.pid <= 0) return false;
  const st = processStat(rec.pid);
  return st !== null && st.startTime === rec.startTime && st.state !== "Z";
}

/** The user namespace of a running container on a network, to start a new holder in (rootless). */
function userNamespaceOfRunning(store: Store, except: string): string | undefined {
  if ((Deno.uid() ?? 0) === 0) return undefined;
  const wired = new Set(listLeases(store).map((l) => l.container));
  const rec = store.listRecords().find((r) => r.id !== except && wired.has(r.id) && running(r));
  return rec ? `/proc/${rec.pid}/ns/user` : undefined;
}

/**
 * Before a container on networks is created or started: makes sure the
 * holder runs and that the container's network namespace is made and
 * wired (its spec joins it through `holderNetnsPath`). A holder started
 * anew (the old one was killed, and its namespaces and veths with it)
 * takes over the namespaces of the running containers and wires them
 * again. Returns false for a container on no network.
 */
export async function prepareEndpoints(store: Store, id: string): Promise<boolean> {
  const leases = containerLeases(store, id);
  if (leases.length === 0) return false;
  const use = await useHolder(() => userNamespaceOfRunning(store, id));
  try {
    const networks = listNetworks(store);
    if (use.started) {
      const all = listLeases(store);
      for (const rec of store.listRecords()) {
        if (rec.id === id || !running(rec)) continue;
        const mine = all.filter((l) => l.container === rec.id);
        if (mine.length === 0) continue;
        try {
          await askHolder({
            op: "prepare",
            id: rec.id,
            pid: rec.pid,
            links: linkPlans(mine, networks),
          });
        } catch {
          // A container in another user namespace (its holder died while
          // it was the only one) cannot be wired again; it keeps its
          // loopback, and a restart puts it back on its networks.
        }
      }
    }
    await askHolder({ op: "prepare", id, links: linkPlans(leases, networks) });
  } finally {
    use.close();
  }
  return true;
}

/** {@link prepareEndpoints} with a store of its own, for the monitors. */
export async function networkEndpoints(id: string): Promise<boolean> {
  const store = openStore(undefined, { repair: false });
  try {
    return await prepareEndpoints(store, id);
  } finally {
    store.close();
  }
}

/** Wires a container to one more network (`network connect`): now when it runs, else at its start. */
export async function wireRunning(
  store: Store,
  rec: ContainerRecord,
  lease: NetworkLease,
): Promise<void> {
  if (!running(rec)) return;
  const use = await useHolder(() => userNamespaceOfRunning(store, rec.id));
  try {
    await askHolder({
      op: "prepare",
      id: rec.id,
      pid: rec.pid,
      links: linkPlans([lease], listNetworks(store)),
    });
  } finally {
    use.close();
  }
}

/** Lets the holder forget a removed container's namespace (when the holder runs). */
export async function releaseEndpoints(id: string): Promise<void> {
  if (runningHolder() === null) return;
  await askHolder({ op: "release", id });
}

/** Removes a running container's interface on network `net` (`network disconnect`). */
export async function unwireRunning(rec: ContainerRecord, net: NetworkRecord): Promise<void> {
  if (!running(rec) || runningHolder() === null) return;
  await askHolder({ op: "detach", veths: [vethName(rec.id, net.id)] });
}

/** Removes a network's bridge from the shared namespace, when the holder runs. */
export async function removeBridge(net: NetworkRecord): Promise<void> {
  if (runningHolder() === null) return;
  await askHolder({ op: "remove-bridge", bridge: net.bridge });
}

/** The record's `network.networks`, from its leases (inspect's NetworkSettings.Networks). */
export function recordNetworks(
  leases: readonly NetworkLease[],
  networks: readonly NetworkRecord[],
): Record<string, NetworkEndpoint> {
  return Object.fromEntries(leases.map((l) => {
    const n = networks.find((x) => x.name === l.network);
    return [l.network, {
      ip: l.ip,
      aliases: l.aliases,
      mac: l.mac,
      ...(n
        ? { gateway: n.gateway, prefixLen: parseSubnet(n.subnet).prefix, networkId: n.id }
        : {}),
    }];
  }));
}

/**
 * Rewrites, in place, the hosts file of every container on any of
 * `networks` (all networks when undefined), and of `alsoIds` (a container
 * just taken off a network), with the others on its networks. A container
 * whose file is gone is skipped.
 */
export function refreshHosts(
  store: Store,
  networks?: readonly string[],
  alsoIds: readonly string[] = [],
): void {
  const names = new Map(store.listRecords().map((r) => [r.id, r.name]));
  const members: NetworkMember[] = listLeases(store).flatMap((l) => {
    const name = names.get(l.container);
    return name === undefined
      ? []
      : [{ id: l.container, name, network: l.network, ip: l.ip, aliases: l.aliases }];
  });
  const touched = new Set([
    ...members.filter((m) => networks === undefined || networks.includes(m.network))
      .map((m) => m.id),
    ...alsoIds,
  ]);
  for (const id of touched) {
    const path = `${store.containerDir(id)}/userdata/etc/hosts`;
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      continue;
    }
    const next = withNetworkEntries(text, hostsEntriesFor(id, members));
    // Written over the same inode: the container sees its bind mount change.
    if (next !== text) Deno.writeTextFileSync(path, next);
  }
}
