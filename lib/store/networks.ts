/**
 * User-defined networks in the store's `networks` table, and the address
 * leases of the containers on them in `network_leases`.
 *
 * A network's row is its existence: the bridge that carries it lives in
 * the shared network namespace (lib/network/holder.ts) and is made on
 * demand. A lease is taken in the same write transaction that checks the
 * addresses in use, so two `trun run` at once never get the same address;
 * the UNIQUE constraint on (network, ip) backs that up. Leases go with
 * `rm` and `network disconnect`; those of containers whose record is gone
 * (a `run` killed before it recorded) are swept by `sweepLeases`.
 */
import { type StoreContext, transaction } from "./db.ts";
import {
  checkGateway,
  defaultGateway,
  formatIPv4,
  formatSubnet,
  macForAddress,
  overlaps,
  parseIPv4,
  parseSubnet,
  pickAddress,
  pickSubnet,
  type Subnet,
} from "../network/ipam.ts";

/** A user-defined network as the store keeps it. */
export interface NetworkRecord {
  /** Its name. */
  name: string;
  /** 64 hex digits. */
  id: string;
  /** Its driver (always `bridge`). */
  driver: string;
  /** Creation time (RFC 3339). */
  created: string;
  /** `A.B.C.D/N`. */
  subnet: string;
  /** The bridge's address, the containers' default route. */
  gateway: string;
  /** `--internal`: no route out. */
  internal: boolean;
  /** `--label`s. */
  labels: Record<string, string>;
  /** The bridge's interface name in the shared namespace. */
  bridge: string;
}

/** A container's address on a network. */
export interface NetworkLease {
  /** The network's name. */
  network: string;
  /** The container's id. */
  container: string;
  /** Its IPv4 address. */
  ip: string;
  /** Its interface's MAC address. */
  mac: string;
  /** `--network-alias`/`--alias` names. */
  aliases: string[];
  /** The interface's name in the container (eth0, eth1…). */
  ifname: string;
}

/** What `createNetwork` is given. */
export interface NewNetwork {
  /** Its name. */
  name: string;
  /** Its driver (default `bridge`; no other is known). */
  driver?: string;
  /** `--subnet` (a free /24 of 10.89.0.0/16 when absent). */
  subnet?: string;
  /** `--gateway` (the subnet's first address when absent). */
  gateway?: string;
  /** `--internal`. */
  internal?: boolean;
  /** `--label`s. */
  labels?: Record<string, string>;
}

/** A network error, with the daemon's exit status (1), as Docker's client reports it. */
export function networkError(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

interface NetworkRow {
  name: string;
  id: string;
  driver: string;
  created: string;
  subnet: string;
  gateway: string;
  internal: number;
  labels: string;
  bridge: string;
}

function fromRow(r: NetworkRow): NetworkRecord {
  return {
    name: r.name,
    id: r.id,
    driver: r.driver,
    created: r.created,
    subnet: r.subnet,
    gateway: r.gateway,
    internal: r.internal !== 0,
    labels: JSON.parse(r.labels) as Record<string, string>,
    bridge: r.bridge,
  };
}

/** Every network, by name. */
export function listNetworks(ctx: StoreContext): NetworkRecord[] {
  return (ctx.db.prepare("SELECT * FROM networks ORDER BY name").all() as unknown as NetworkRow[])
    .map(fromRow);
}

/** The network a name, full id or unambiguous id prefix names (Docker's lookup), or undefined. */
export function findNetwork(ctx: StoreContext, ref: string): NetworkRecord | undefined {
  const all = listNetworks(ctx);
  const exact = all.find((n) => n.name === ref) ?? all.find((n) => n.id === ref);
  if (exact) return exact;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const matches = all.filter((n) => n.id.startsWith(ref));
  if (matches.length > 1) {
    throw networkError(
      `network ${ref} is ambiguous (${matches.length} matches found on id prefix)`,
    );
  }
  return matches[0];
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * Creates a network (its name checked by the caller against
 * lib/spec/network_mode.ts `NETWORK_NAME`); `hostRoutes` are the host's routed subnets, which an
 * automatic subnet avoids. Fails on a name in use or an overlapping subnet
 * (Docker's messages).
 */
export function createNetwork(
  ctx: StoreContext,
  n: NewNetwork,
  hostRoutes: readonly Subnet[],
): NetworkRecord {
  if (["bridge", "host", "none", "default", "private", "pasta", "slirp4netns"].includes(n.name)) {
    throw networkError(`${n.name} is a pre-defined network and cannot be created`);
  }
  const driver = n.driver ?? "bridge";
  if (driver !== "bridge") {
    throw networkError(`network driver "${driver}" is not available: trun has the bridge driver`);
  }
  let given: Subnet | undefined;
  try {
    given = n.subnet === undefined ? undefined : parseSubnet(n.subnet);
  } catch (e) {
    throw networkError((e as Error).message);
  }
  if (n.gateway !== undefined && given === undefined) {
    throw networkError("--gateway needs --subnet: give the subnet the gateway belongs to");
  }
  return transaction(ctx.db, () => {
    const all = listNetworks(ctx);
    if (all.some((x) => x.name === n.name)) {
      throw networkError(`network with name ${n.name} already exists`);
    }
    const theirs = all.map((x) => ({ name: x.name, subnet: parseSubnet(x.subnet) }));
    let subnet: Subnet;
    if (given) {
      const clash = theirs.find((t) => overlaps(t.subnet, given));
      if (clash) {
        throw networkError(
          `invalid pool request: Pool overlaps with other one on this address space ` +
            `(${formatSubnet(given)} overlaps ${
              formatSubnet(clash.subnet)
            } of network ${clash.name})`,
        );
      }
      subnet = given;
    } else {
      const picked = pickSubnet([...theirs.map((t) => t.subnet), ...hostRoutes]);
      if (!picked) {
        throw networkError(
          "could not find a free subnet in 10.89.0.0/16: give one with --subnet, or remove networks",
        );
      }
      subnet = picked;
    }
    let gateway: number;
    try {
      gateway = n.gateway === undefined ? defaultGateway(subnet) : checkGateway(subnet, n.gateway);
    } catch (e) {
      throw networkError((e as Error).message);
    }
    const id = randomHex(32);
    const rec: NetworkRecord = {
      name: n.name,
      id,
      driver,
      created: new Date().toISOString(),
      subnet: formatSubnet(subnet),
      gateway: formatIPv4(gateway),
      internal: n.internal === true,
      labels: n.labels ?? {},
      // Interface names have at most 15 bytes; the id keeps them unique.
      bridge: `trunbr-${id.slice(0, 8)}`,
    };
    ctx.db.prepare(
      "INSERT INTO networks (name, id, driver, created, subnet, gateway, internal, labels, bridge) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(
      rec.name,
      rec.id,
      rec.driver,
      rec.created,
      rec.subnet,
      rec.gateway,
      rec.internal ? 1 : 0,
      JSON.stringify(rec.labels),
      rec.bridge,
    );
    return rec;
  });
}

/** Deletes network `name` and its leases; false when there was none. */
export function removeNetwork(ctx: StoreContext, name: string): boolean {
  return transaction(ctx.db, () => {
    ctx.db.prepare("DELETE FROM network_leases WHERE network = ?").run(name);
    return Number(ctx.db.prepare("DELETE FROM networks WHERE name = ?").run(name).changes) > 0;
  });
}

interface LeaseRow {
  network: string;
  container: string;
  ip: string;
  mac: string;
  aliases: string;
  ifname: string;
}

function leaseOf(r: LeaseRow): NetworkLease {
  return { ...r, aliases: JSON.parse(r.aliases) as string[] };
}

/** The leases of network `name` (all networks when undefined), by address. */
export function listLeases(ctx: StoreContext, name?: string): NetworkLease[] {
  const rows =
    (name === undefined
      ? ctx.db.prepare("SELECT * FROM network_leases").all()
      : ctx.db.prepare("SELECT * FROM network_leases WHERE network = ?").all(
        name,
      )) as unknown as LeaseRow[];
  return rows.map(leaseOf).sort((a, b) => parseIPv4(a.ip) - parseIPv4(b.ip));
}

/** The leases of container `id`, in interface order. */
export function containerLeases(ctx: StoreContext, id: string): NetworkLease[] {
  return (ctx.db.prepare("SELECT * FROM network_leases WHERE container = ?").all(
    id,
  ) as unknown as LeaseRow[]).map(leaseOf).sort((a, b) =>
    Number(a.ifname.slice(3)) - Number(b.ifname.slice(3))
  );
}

/**
 * Gives container `id` an address on network `name` (the lowest free one);
 * fails when it already has one there or the subnet is full. Its interface
 * is the first `ethN` the container does not use yet.
 */
export function leaseAddress(
  ctx: StoreContext,
  name: string,
  id: string,
  aliases: readonly string[],
): NetworkLease {
  return transaction(ctx.db, () => {
    const net = listNetworks(ctx).find((n) => n.name === name);
    if (!net) throw networkError(`network ${name} not found`);
    const mine = containerLeases(ctx, id);
    if (mine.some((l) => l.network === name)) {
      throw networkError(`container ${id.slice(0, 12)} is already connected to network ${name}`);
    }
    const subnet = parseSubnet(net.subnet);
    const taken = new Set(listLeases(ctx, name).map((l) => parseIPv4(l.ip)));
    const ip = pickAddress(subnet, parseIPv4(net.gateway), taken);
    if (ip === null) throw networkError(`no free address left in network ${name} (${net.subnet})`);
    const used = new Set(mine.map((l) => l.ifname));
    let i = 0;
    while (used.has(`eth${i}`)) i++;
    const lease: NetworkLease = {
      network: name,
      container: id,
      ip: formatIPv4(ip),
      mac: macForAddress(ip),
      aliases: [...aliases],
      ifname: `eth${i}`,
    };
    ctx.db.prepare(
      "INSERT INTO network_leases (network, container, ip, mac, aliases, ifname) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(name, id, lease.ip, lease.mac, JSON.stringify(lease.aliases), lease.ifname);
    return lease;
  });
}

/** Gives back container `id`'s address on network `name` (all its addresses when undefined). */
export function releaseLeases(ctx: StoreContext, id: string, name?: string): void {
  if (name === undefined) {
    ctx.db.prepare("DELETE FROM network_leases WHERE container = ?").run(id);
  } else {
    ctx.db.prepare("DELETE FROM network_leases WHERE container = ? AND network = ?").run(id, name);
  }
}

/** Drops the leases of containers that have no row any more; returns how many. */
export function sweepLeases(ctx: StoreContext): number {
  return Number(
    ctx.db.prepare(
      "DELETE FROM network_leases WHERE container NOT IN (SELECT id FROM containers)",
    ).run().changes,
  );
}
