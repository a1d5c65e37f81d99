/**
 * What a container sees of names: the text of its /etc/hostname,
 * /etc/hosts and /etc/resolv.conf, and the flags that shape them
 * (`--add-host`, `--dns`, `--dns-search`, `--dns-option`, `--hostname`,
 * `--domainname`), checked as Docker checks them. Pure: the host's files
 * and the network's facts are arguments. Follows hosts(5) and
 * resolv.conf(5).
 */
import type { NetworkMode } from "./network_mode.ts";

/** The /etc files trun provides. */
export type EtcFileName = "hostname" | "hosts" | "resolv.conf";

/** The name `--add-host NAME:host-gateway` stands for the host's address (Docker's word). */
export const HOST_GATEWAY = "host-gateway";

/** The names a container on a private network reaches the host by (Podman's and Docker's). */
export const HOST_ALIASES = ["host.containers.internal", "host.docker.internal"] as const;

/**
 * Docker's resolvers when none of the host's can be reached from the
 * container (its `FilterResolvDNS` default).
 */
export const FALLBACK_NAMESERVERS = ["8.8.8.8", "8.8.4.4"] as const;

/** Where a container without an address of its own finds its hostname (Debian's and Podman's choice). */
export const NO_ADDRESS = "127.0.1.1";

const LOOPBACK_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/**
 * Whether `s` is an IPv4 or IPv6 address as Go's `net.ParseIP` reads one
 * (what Docker validates with): dotted quads without leading zeros, or
 * IPv6 without a zone.
 */
export function isIpAddress(s: string): boolean {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) {
    return s.split(".").every((p) => (p === "0" || !p.startsWith("0")) && Number(p) <= 255);
  }
  if (!s.includes(":") || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  try {
    // The URL parser implements RFC 4291's textual forms, embedded IPv4 included.
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Whether `ip` is a loopback address (127.0.0.0/8 or ::1), unreachable from another network namespace. */
export function isLoopbackAddress(ip: string): boolean {
  if (ip.startsWith("127.")) return true;
  try {
    const host = new URL(`http://[${ip}]/`).hostname;
    return host === "[::1]" || /^\[::ffff:7f/.test(host);
  } catch {
    return false;
  }
}

/** One `--add-host` entry: a name and an address (or `host-gateway`). */
export interface ExtraHost {
  /** The host name. */
  name: string;
  /** An IP address as given (brackets removed), or HOST_GATEWAY. */
  address: string;
}

/**
 * Reads `--add-host NAME:IP` (or `NAME=IP`) as Docker does: the name may
 * not be empty or hold a colon; the address is an IP, IPv6 plain or in
 * brackets, or `host-gateway`.
 */
export function parseExtraHost(value: string): ExtraHost {
  const eq = value.indexOf("=");
  const sep = eq >= 0 ? eq : value.indexOf(":");
  const name = sep < 0 ? "" : value.slice(0, sep);
  if (sep < 0 || name === "" || name.includes(":")) {
    throw new Error(`bad format for add-host: "${value}"`);
  }
  let address = value.slice(sep + 1);
  if (address === HOST_GATEWAY) return { name, address };
  if (address.length > 2 && address.startsWith("[") && address.endsWith("]")) {
    address = address.slice(1, -1);
  }
  if (!isIpAddress(address)) throw new Error(`invalid IP address in add-host: "${address}"`);
  return { name, address };
}

/** Checks a `--dns` value (an IP address, Docker's rule and message). */
export function checkDnsServer(value: string): string {
  const v = value.trim();
  if (!isIpAddress(v)) throw new Error(`IP address is not correctly formatted: ${value}`);
  return v;
}

const DOMAIN =
  /^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;

/**
 * Checks a `--dns-search` value: a domain name (a trailing dot allowed), or
 * "." alone, which means no search domains (Docker's rule and message).
 */
export function checkDnsSearch(value: string): string {
  const v = value.trim();
  if (v === ".") return v;
  const d = v.endsWith(".") ? v.slice(0, -1) : v;
  if (d.length > 255 || !DOMAIN.test(d)) throw new Error(`${value} is not a valid domain`);
  return v;
}

/**
 * The options that conflict with `--network container:`, each with
 * Docker's message: the joined container's namespace, hostname and files
 * decide these. Docker ignores `--dns-search` and `--dns-option` there;
 * trun refuses them with `--dns`'s message, so no flag is silently lost.
 */
export function containerModeConflict(o: {
  hostname?: string | undefined;
  addHosts?: readonly string[] | undefined;
  dns?: readonly string[] | undefined;
  dnsSearch?: readonly string[] | undefined;
  dnsOptions?: readonly string[] | undefined;
  publish?: readonly string[] | undefined;
  publishAll?: boolean | undefined;
  expose?: readonly string[] | undefined;
}): string | undefined {
  if (o.hostname !== undefined && o.hostname !== "") {
    return "conflicting options: hostname and the network mode";
  }
  if ((o.dns?.length ?? 0) + (o.dnsSearch?.length ?? 0) + (o.dnsOptions?.length ?? 0) > 0) {
    return "conflicting options: dns and the network mode";
  }
  if (o.addHosts?.length) {
    return "conflicting options: custom host-to-IP mapping and the network mode";
  }
  if (o.publish?.length || o.publishAll) {
    return "conflicting options: port publishing and the container type network mode";
  }
  if (o.expose?.length) {
    return "conflicting options: port exposing and the container type network mode";
  }
  return undefined;
}

/** What the /etc files are made from. */
export interface EtcFilesInput {
  /** The container's hostname (`--hostname`, else its short id). */
  hostname: string;
  /** `--domainname`. */
  domainname?: string | undefined;
  /** The container's name. */
  name?: string | undefined;
  /** Its network, resolved (`private` is pasta, slirp4netns or none by now). Not `container:`: that one shares the other container's files. */
  network: NetworkMode;
  /** Its own address on that network, when known. */
  address?: string | undefined;
  /** Where it reaches the host (the helper's gateway mapping), when it can. */
  hostGateway?: string | undefined;
  /** The resolvers the network's helper offers inside (its DNS forwarder). */
  dnsServers?: readonly string[] | undefined;
  /** `--add-host` values. */
  addHosts?: readonly string[] | undefined;
  /** `--dns`. */
  dns?: readonly string[] | undefined;
  /** `--dns-search`. */
  dnsSearch?: readonly string[] | undefined;
  /** `--dns-option`. */
  dnsOptions?: readonly string[] | undefined;
  /** The host's files (null when missing). */
  host: { hosts: string | null; resolvConf: string | null };
}

/** The address `--add-host NAME:host-gateway` stands for, or an error saying why there is none. */
function gatewayFor(input: EtcFilesInput, entry: string): string {
  // In the host's network the host is at its loopback address.
  const gw = input.hostGateway ?? (input.network.kind === "host" ? "127.0.0.1" : undefined);
  if (gw === undefined) {
    throw new Error(
      `cannot resolve "${HOST_GATEWAY}" in --add-host "${entry}": the ${input.network.kind} ` +
        "network gives the container no address for the host; use an IP address, or a network " +
        "that reaches the host (pasta, or slirp4netns:allow_host_loopback=true)",
    );
  }
  return gw;
}

/**
 * The container's /etc/hosts. With the host's network: the host's file (or
 * a loopback-only one), `--add-host` lines, and the hostname on 127.0.1.1
 * unless the file names it already. With a network of its own: loopback,
 * `--add-host` lines, `ADDRESS hostname[.domain] hostname name` (127.0.1.1
 * when the address is unknown, so the hostname always resolves, to the
 * container itself), and the host's aliases at the gateway when there is
 * one and `--add-host` did not name them.
 */
export function hostsFile(input: EtcFilesInput): string {
  const extra = (input.addHosts ?? []).map((v) => {
    const e = parseExtraHost(v);
    return { ...e, address: e.address === HOST_GATEWAY ? gatewayFor(input, v) : e.address };
  });
  const extraLines = extra.map((e) => `${e.address}\t${e.name}\n`).join("");
  const own = input.domainname
    ? [`${input.hostname}.${input.domainname}`, input.hostname]
    : [input.hostname];
  if (input.network.kind === "host") {
    let text = input.host.hosts ?? LOOPBACK_HOSTS;
    if (!text.endsWith("\n")) text += "\n";
    text += extraLines;
    const named = text.split("\n").some((l) =>
      l.replace(/#.*/, "").trim().split(/\s+/).slice(1).includes(input.hostname)
    );
    return named ? text : `${text}${NO_ADDRESS}\t${own.join(" ")}\n`;
  }
  const names = [...own];
  if (input.name !== undefined && !names.includes(input.name)) names.push(input.name);
  let text = `${LOOPBACK_HOSTS}${extraLines}${input.address ?? NO_ADDRESS}\t${names.join(" ")}\n`;
  if (input.hostGateway !== undefined) {
    const taken = new Set(extra.map((e) => e.name));
    const aliases = HOST_ALIASES.filter((a) => !taken.has(a));
    if (aliases.length > 0) text += `${input.hostGateway}\t${aliases.join(" ")}\n`;
  }
  return text;
}

/** The nameserver addresses of a resolv.conf text, in order. */
export function resolvNameservers(text: string): string[] {
  return text.split("\n").map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === "nameserver" && f[1] !== undefined)
    .map((f) => f[1]!);
}

/**
 * The container's /etc/resolv.conf, merged as Docker merges it: the
 * host's file, with its nameservers replaced by `--dns`, its search
 * domains by `--dns-search` ("." alone: none) and its options by
 * `--dns-option`, each only when given. With the host's network the
 * host's resolvers are reachable and kept as they are. With a network of
 * its own the host's loopback resolvers (systemd-resolved's 127.0.0.53,
 * dnsmasq's 127.0.0.1) are not: the helper's forwarder stands in when
 * there is one, else the host's other resolvers, else Docker's fallback
 * (8.8.8.8, 8.8.4.4). Null when the host has no file and nothing is asked.
 */
export function resolvConfFile(input: EtcFilesInput): string | null {
  const hostText = input.host.resolvConf;
  const dns = input.dns ?? [];
  const search = input.dnsSearch ?? [];
  const options = input.dnsOptions ?? [];
  const shared = input.network.kind === "host";
  if (shared && dns.length + search.length + options.length === 0) return hostText;
  let servers = [...dns];
  if (servers.length === 0) {
    const hosts = resolvNameservers(hostText ?? "");
    if (shared) servers = hosts;
    else if (input.dnsServers?.length) servers = [...input.dnsServers];
    else {
      servers = hosts.filter((s) => !isLoopbackAddress(s));
      if (servers.length === 0) servers = [...FALLBACK_NAMESERVERS];
    }
  }
  const replaced = new Set(["nameserver"]);
  if (search.length > 0) replaced.add("search").add("domain");
  if (options.length > 0) replaced.add("options");
  const kept = (hostText ?? "").split("\n").filter((l) => {
    const key = l.trim().split(/\s+/)[0] ?? "";
    return l.trim() !== "" && !replaced.has(key);
  });
  const lines = [...kept, ...servers.map((s) => `nameserver ${s}`)];
  const domains = search.filter((d) => d !== ".");
  if (domains.length > 0) lines.push(`search ${domains.join(" ")}`);
  if (options.length > 0) lines.push(`options ${options.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

/**
 * The contents of the container's /etc/hostname, /etc/hosts and
 * /etc/resolv.conf (see `hostsFile` and `resolvConfFile`). Throws on a
 * malformed `--add-host`, or `host-gateway` without a gateway.
 */
export function etcFileContents(input: EtcFilesInput): Record<EtcFileName, string | null> {
  return {
    hostname: `${input.hostname}\n`,
    hosts: hostsFile(input),
    "resolv.conf": resolvConfFile(input),
  };
}
