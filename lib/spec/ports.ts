/** Published ports: `-p`, `--expose` and `-P` read with Docker's grammar, and shown in Docker's shapes. */
import type { PortBinding } from "../store/containers.ts";

export type { PortBinding } from "../store/containers.ts";

/** A port protocol trun publishes. */
export type PortProtocol = "tcp" | "udp";

/** One `-p` value, read: host ports 0 mean "any free port". */
export interface PublishRequest {
  /** The host address ("" = every address). */
  hostIp: string;
  /** The first and last host port, or [0, 0] when not given. */
  hostPorts: [number, number];
  /** The first and last container port. */
  containerPorts: [number, number];
  /** The protocol. */
  protocol: PortProtocol;
}

/** Whether `s` is an IPv4 address in dotted decimal. */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && !/^0\d/.test(p));
}

/** Whether `s` is an IPv6 address (with `::` shortening, and an IPv4 tail). */
export function isIPv6(s: string): boolean {
  if (!s.includes(":") || /[^0-9a-fA-F:.]/.test(s)) return false;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const all = [...groups(halves[0]!), ...(halves.length === 2 ? groups(halves[1]!) : [])];
  let count = 0;
  for (const [i, g] of all.entries()) {
    if (i === all.length - 1 && g.includes(".")) {
      if (!isIPv4(g)) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) count++;
    else return false;
  }
  return halves.length === 2 ? count < 8 : count === 8;
}

/** A port or range `N[-M]` (Docker's ParsePortRange); throws the given message when invalid. */
function parseRange(text: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const start = m ? Number(m[1]) : NaN;
  const end = m?.[2] !== undefined ? Number(m[2]) : start;
  if (!m || start < 1 || end > 65535 || end < start) throw new Error(`invalid ${what}: ${text}`);
  return [start, end];
}

/** The protocol after `/` (tcp when none); sctp is Docker's too, but no helper forwards it. */
function splitProtocol(raw: string): [string, PortProtocol] {
  const slash = raw.lastIndexOf("/");
  if (slash < 0) return [raw, "tcp"];
  const proto = raw.slice(slash + 1).toLowerCase();
  if (proto !== "tcp" && proto !== "udp") {
    throw new Error(
      proto === "sctp"
        ? `invalid proto: sctp: trun's network helpers forward only tcp and udp`
        : `invalid proto: ${raw.slice(slash + 1)}`,
    );
  }
  return [raw.slice(0, slash), proto];
}

/**
 * Reads one `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]` value with Docker's
 * rules and messages: ports and ranges (`8000-8001:80-81`), a host range
 * for one container port (any free one of them), IPv6 addresses in
 * brackets (`[::1]:8080:80`).
 */
export function parsePublish(value: string): PublishRequest {
  const [rest, protocol] = splitProtocol(value);
  const parts = rest.split(":");
  const n = parts.length;
  const container = parts[n - 1]!;
  const host = n >= 2 ? parts[n - 2]! : "";
  let ip = n >= 3 ? parts.slice(0, n - 2).join(":") : "";
  if (ip.startsWith("[") && ip.endsWith("]")) ip = ip.slice(1, -1);
  if (ip !== "" && !isIPv4(ip) && !isIPv6(ip)) throw new Error(`invalid IP address: ${ip}`);
  if (container === "") throw new Error(`no port specified: ${value}<empty>`);
  const containerPorts = parseRange(container, "containerPort");
  const hostPorts: [number, number] = host === "" ? [0, 0] : parseRange(host, "hostPort");
  const cCount = containerPorts[1] - containerPorts[0];
  const hCount = hostPorts[1] - hostPorts[0];
  if (host !== "" && cCount !== hCount && cCount !== 0) {
    throw new Error(
      `invalid ranges specified for container and host Ports: ${container} and ${host}`,
    );
  }
  return { hostIp: ip, hostPorts, containerPorts, protocol };
}

/** Reads one `--expose PORT[-END][/PROTO]` value into container ports. */
export function parseExpose(value: string): { port: number; protocol: PortProtocol }[] {
  const [rest, protocol] = splitProtocol(value);
  const [start, end] = parseRange(rest, "range format for --expose specification");
  const out = [];
  for (let p = start; p <= end; p++) out.push({ port: p, protocol });
  return out;
}

/**
 * The bindings the requests ask for, one per container port, in order.
 * A host range for a single container port becomes a binding with
 * `hostPortRange` (the helper's caller picks a free port of it); no host
 * port is 0 (any free port).
 */
export function publishBindings(
  requests: readonly PublishRequest[],
): (PortBinding & { hostPortRange?: [number, number] })[] {
  const out: (PortBinding & { hostPortRange?: [number, number] })[] = [];
  for (const r of requests) {
    const [c0, c1] = r.containerPorts;
    const [h0, h1] = r.hostPorts;
    if (c0 === c1 && h1 > h0) {
      out.push({
        hostIp: r.hostIp,
        hostPort: 0,
        containerPort: c0,
        protocol: r.protocol,
        hostPortRange: [h0, h1],
      });
      continue;
    }
    for (let c = c0; c <= c1; c++) {
      out.push({
        hostIp: r.hostIp,
        hostPort: h0 === 0 ? 0 : h0 + (c - c0),
        containerPort: c,
        protocol: r.protocol,
      });
    }
  }
  return out;
}

/**
 * `-P`: every exposed port (the image's `ExposedPorts` keys such as
 * `80/tcp`, and `--expose`) not published already gets a free host port
 * on every address.
 */
export function publishAllBindings(
  exposed: readonly string[],
  published: readonly PortBinding[],
): PortBinding[] {
  const taken = new Set(published.map((b) => `${b.containerPort}/${b.protocol}`));
  const out: PortBinding[] = [];
  for (const key of exposed) {
    for (const { port, protocol } of parseExpose(key)) {
      if (taken.has(`${port}/${protocol}`)) continue;
      taken.add(`${port}/${protocol}`);
      out.push({ hostIp: "", hostPort: 0, containerPort: port, protocol });
    }
  }
  return out;
}

/** `IP:PORT` as Docker prints it: IPv6 in brackets, every address as 0.0.0.0 and [::]. */
function hostAddresses(b: PortBinding): string[] {
  if (b.hostIp === "") return [`0.0.0.0:${b.hostPort}`, `[::]:${b.hostPort}`];
  return [b.hostIp.includes(":") ? `[${b.hostIp}]:${b.hostPort}` : `${b.hostIp}:${b.hostPort}`];
}

/**
 * `trun port` lines: `80/tcp -> 0.0.0.0:8080` for every binding, or with
 * `privatePort` (`80` or `80/udp`) only the host sides of that port. An
 * unpublished port is Docker's error.
 */
export function portLines(
  bindings: readonly PortBinding[],
  name: string,
  privatePort?: string,
): string[] {
  if (privatePort === undefined) {
    const sorted = [...bindings].sort((a, b) =>
      a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol)
    );
    return sorted.flatMap((b) =>
      hostAddresses(b).map((a) => `${b.containerPort}/${b.protocol} -> ${a}`)
    );
  }
  const [port, protocol] = splitProtocol(privatePort);
  const n = /^\d+$/.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new Error(`Invalid port: ${privatePort}`);
  const lines = bindings.filter((b) => b.containerPort === n && b.protocol === protocol)
    .flatMap(hostAddresses);
  if (lines.length === 0) {
    throw new Error(`No public port '${n}/${protocol}' published for ${name}`);
  }
  return lines;
}

/**
 * Docker's `NetworkSettings.Ports` (every exposed port, null when not
 * published) and `HostConfig.PortBindings` (the published ones) maps.
 */
export function dockerPortMaps(
  bindings: readonly PortBinding[],
  exposed: readonly string[] = [],
): {
  ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
  portBindings: Record<string, { HostIp: string; HostPort: string }[]>;
} {
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const key of exposed) {
    for (const { port, protocol } of parseExpose(key)) ports[`${port}/${protocol}`] = null;
  }
  for (const b of bindings) {
    const key = `${b.containerPort}/${b.protocol}`;
    const hostPort = String(b.hostPort);
    (portBindings[key] ??= []).push({ HostIp: b.hostIp, HostPort: hostPort });
    const shown = b.hostIp === ""
      ? [{ HostIp: "0.0.0.0", HostPort: hostPort }, { HostIp: "::", HostPort: hostPort }]
      : [{ HostIp: b.hostIp, HostPort: hostPort }];
    (ports[key] ??= []).push(...shown);
  }
  return { ports, portBindings };
}

/** `ps`'s PORTS column: `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`. */
export function portsColumn(bindings: readonly PortBinding[]): string {
  return bindings.flatMap((b) =>
    hostAddresses(b).map((a) => `${a}->${b.containerPort}/${b.protocol}`)
  ).join(", ");
}
