/**
 * Address management for user-defined networks (pure): IPv4 subnets in
 * CIDR form, a free /24 for `network create` without `--subnet` (from
 * 10.89.0.0/16 up, as Podman's pool, skipping the subnets of other
 * networks and of the host's routes), a free address for a container, and
 * the MAC address that goes with it.
 */

/** An IPv4 subnet: its network address (as a 32-bit number) and prefix length. */
export interface Subnet {
  /** The network address, host bits zero. */
  base: number;
  /** The prefix length, 0–32. */
  prefix: number;
}

/** Parses a dotted-quad IPv4 address; throws on anything else. */
export function parseIPv4(text: string): number {
  const parts = text.split(".");
  if (
    parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)
  ) {
    throw new Error(`invalid IPv4 address "${text}"`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** The dotted-quad form of a 32-bit address. */
export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The mask of a prefix length, as a 32-bit unsigned number. */
function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `A.B.C.D/N`; host bits must be zero, as Docker requires. */
export function parseSubnet(text: string): Subnet {
  const slash = text.indexOf("/");
  if (slash < 0) throw new Error(`invalid subnet "${text}": give it as ADDRESS/PREFIX`);
  const addr = parseIPv4(text.slice(0, slash));
  const p = text.slice(slash + 1);
  if (!/^[0-9]{1,2}$/.test(p) || Number(p) > 32) {
    throw new Error(`invalid subnet "${text}": the prefix length is 0 to 32`);
  }
  const prefix = Number(p);
  if (((addr & ~mask(prefix)) >>> 0) !== 0) {
    throw new Error(
      `invalid subnet "${text}": host bits are set; did you mean ${
        formatSubnet({ base: (addr & mask(prefix)) >>> 0, prefix })
      }?`,
    );
  }
  if (prefix > 30) throw new Error(`invalid subnet "${text}": a /${prefix} has no room for hosts`);
  return { base: addr, prefix };
}

/** `A.B.C.D/N`. */
export function formatSubnet(s: Subnet): string {
  return `${formatIPv4(s.base)}/${s.prefix}`;
}

/** Whether `ip` lies in `s`. */
export function contains(s: Subnet, ip: number): boolean {
  return ((ip & mask(s.prefix)) >>> 0) === s.base;
}

/** Whether two subnets share any address. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** The broadcast address of `s`. */
function broadcast(s: Subnet): number {
  return (s.base | ~mask(s.prefix)) >>> 0;
}

/** The default gateway of a subnet: its first host address. */
export function defaultGateway(s: Subnet): number {
  return s.base + 1;
}

/** Checks that `gateway` is a host address of `s`; returns it parsed. */
export function checkGateway(s: Subnet, gateway: string): number {
  const g = parseIPv4(gateway);
  if (!contains(s, g) || g === s.base || g === broadcast(s)) {
    throw new Error(`gateway ${gateway} is not a host address of subnet ${formatSubnet(s)}`);
  }
  return g;
}

/**
 * The first free /24 of `pool` (default 10.89.0.0/16) that overlaps none of
 * `used` (other networks' subnets, the host's routes); null when all are
 * taken.
 */
export function pickSubnet(
  used: readonly Subnet[],
  pool: Subnet = { base: parseIPv4("10.89.0.0"), prefix: 16 },
): Subnet | null {
  const size = 256;
  const count = 2 ** (24 - pool.prefix);
  for (let i = 0; i < count; i++) {
    const cand = { base: pool.base + i * size, prefix: 24 };
    if (!used.some((u) => overlaps(u, cand))) return cand;
  }
  return null;
}

/**
 * The lowest free host address of `s` for a container: not the network or
 * broadcast address, not the gateway, not one of `taken`. Null when full.
 */
export function pickAddress(s: Subnet, gateway: number, taken: ReadonlySet<number>): number | null {
  for (let ip = s.base + 1; ip < broadcast(s); ip++) {
    if (ip !== gateway && !taken.has(ip)) return ip;
  }
  return null;
}

/**
 * The MAC address of a container's interface, derived from its address as
 * Docker did (`02:42` then the four address bytes): locally administered,
 * unicast, and unique on the network as the address is.
 */
export function macForAddress(ip: number): string {
  return [
    "02",
    "42",
    ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]
      .map((b) => b.toString(16).padStart(2, "0")),
  ].join(":");
}

/**
 * The IPv4 routes of the host, from the text of /proc/net/route (destination
 * and mask in little-endian hex); the default route is left out, as it
 * overlaps everything.
 */
export function routesOf(procNetRoute: string): Subnet[] {
  const out: Subnet[] = [];
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const le = (hex: string) => {
      const n = parseInt(hex, 16) >>> 0;
      return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) |
        (n >>> 24)) >>> 0;
    };
    const dest = le(f[1]!);
    const m = le(f[7]!);
    if (m === 0) continue;
    const prefix = 32 - countTrailingZeros(m);
    out.push({ base: (dest & mask(prefix)) >>> 0, prefix });
  }
  return out;
}

function countTrailingZeros(n: number): number {
  let c = 0;
  while (c < 32 && ((n >>> c) & 1) === 0) c++;
  return c;
}
