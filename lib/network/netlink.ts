/**
 * rtnetlink messages (pure): the few requests that build a user-defined
 * network — a bridge, a veth pair with one end in a container's network
 * namespace, addresses, links up, a default route, deletions — and the
 * reading of the kernel's answers. Follows rtnetlink(7) and netlink(7);
 * the socket itself is in ffi/netlink.ts, the kernel's numbers in
 * ffi/syscalls.ts. All numbers are little-endian (x86-64 and arm64).
 */
import { NLM_F, RTM, RTNL } from "../../ffi/syscalls.ts";

/** Message types, re-exported for the readers of answers. */
export { NLM_F, RTM };

const IFLA = {
  ADDRESS: RTNL.IFLA_ADDRESS,
  IFNAME: RTNL.IFLA_IFNAME,
  MASTER: RTNL.IFLA_MASTER,
  LINKINFO: RTNL.IFLA_LINKINFO,
  NET_NS_FD: RTNL.IFLA_NET_NS_FD,
} as const;
const IFLA_INFO = { KIND: RTNL.IFLA_INFO_KIND, DATA: RTNL.IFLA_INFO_DATA } as const;
const VETH_INFO_PEER = RTNL.VETH_INFO_PEER;
const IFA = {
  ADDRESS: RTNL.IFA_ADDRESS,
  LOCAL: RTNL.IFA_LOCAL,
  BROADCAST: RTNL.IFA_BROADCAST,
} as const;
const RTA = { GATEWAY: RTNL.RTA_GATEWAY, OIF: RTNL.RTA_OIF } as const;
const AF_INET = RTNL.AF_INET;
const IFF_UP = RTNL.IFF_UP;
const NLA_F_NESTED = RTNL.NLA_F_NESTED;

const encoder = new TextEncoder();

/** One netlink attribute, its payload padded to four bytes. */
function attr(type: number, payload: Uint8Array): Uint8Array {
  const len = 4 + payload.length;
  const out = new Uint8Array((len + 3) & ~3);
  const v = new DataView(out.buffer);
  v.setUint16(0, len, true);
  v.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function str(s: string): Uint8Array {
  return concat([encoder.encode(s), new Uint8Array(1)]);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

/** An IPv4 address (32-bit number) in network order. */
function ipv4(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** A MAC address `aa:bb:…` as six bytes. */
function mac(text: string): Uint8Array {
  const b = text.split(":").map((x) => parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) {
    throw new Error(`invalid MAC address "${text}"`);
  }
  return new Uint8Array(b);
}

/** struct ifinfomsg: family, type, index, flags, change. */
function ifinfo(index = 0, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** A whole message: nlmsghdr, body, with `seq`. */
export function message(type: number, flags: number, seq: number, body: Uint8Array[]): Uint8Array {
  const payload = concat(body);
  const out = new Uint8Array(16 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  out.set(payload, 16);
  return out;
}

const CREATE = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL;

/** RTM_NEWLINK: a bridge named `name`. */
export function newBridge(seq: number, name: string): Uint8Array {
  return message(RTM.NEWLINK, CREATE, seq, [
    ifinfo(),
    attr(IFLA.IFNAME, str(name)),
    attr(IFLA.LINKINFO | NLA_F_NESTED, attr(IFLA_INFO.KIND, str("bridge"))),
  ]);
}

/** What {@link newVethPair} makes. */
export interface VethRequest {
  /** The end that stays here, enslaved to `master`. */
  name: string;
  /** The bridge's interface index. */
  master: number;
  /** The other end's name, in the namespace of `peerNetnsFd`. */
  peerName: string;
  /** The other end's MAC address. */
  peerMac: string;
  /** An open descriptor of the network namespace the other end goes to. */
  peerNetnsFd: number;
}

/** RTM_NEWLINK: a veth pair, one end on a bridge, the other in another namespace. */
export function newVethPair(seq: number, r: VethRequest): Uint8Array {
  const peer = concat([
    ifinfo(),
    attr(IFLA.IFNAME, str(r.peerName)),
    attr(IFLA.ADDRESS, mac(r.peerMac)),
    attr(IFLA.NET_NS_FD, u32(r.peerNetnsFd)),
  ]);
  return message(RTM.NEWLINK, CREATE, seq, [
    ifinfo(),
    attr(IFLA.IFNAME, str(r.name)),
    attr(IFLA.MASTER, u32(r.master)),
    attr(
      IFLA.LINKINFO | NLA_F_NESTED,
      concat([
        attr(IFLA_INFO.KIND, str("veth")),
        attr(IFLA_INFO.DATA | NLA_F_NESTED, attr(VETH_INFO_PEER, peer)),
      ]),
    ),
  ]);
}

/** RTM_NEWLINK on an existing link: brings interface `index` up. */
export function linkUp(seq: number, index: number): Uint8Array {
  return message(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK, seq, [ifinfo(index, IFF_UP, IFF_UP)]);
}

/** RTM_DELLINK of the interface named `name`. */
export function deleteLink(seq: number, name: string): Uint8Array {
  return message(RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK, seq, [
    ifinfo(),
    attr(IFLA.IFNAME, str(name)),
  ]);
}

/** RTM_GETLINK of the interface named `name` (the answer is one RTM_NEWLINK). */
export function getLink(seq: number, name: string): Uint8Array {
  return message(RTM.GETLINK, NLM_F.REQUEST, seq, [ifinfo(), attr(IFLA.IFNAME, str(name))]);
}

/** RTM_GETLINK of every interface (a multi-part answer). */
export function dumpLinks(seq: number): Uint8Array {
  return message(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, seq, [ifinfo()]);
}

/** RTM_NEWADDR: `ip/prefix` on interface `index`, with its broadcast address. */
export function newAddress(seq: number, index: number, ip: number, prefix: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  b[0] = AF_INET;
  b[1] = prefix;
  v.setUint32(4, index, true);
  const hostBits = prefix === 32 ? 0 : (2 ** (32 - prefix)) - 1;
  return message(RTM.NEWADDR, CREATE, seq, [
    b,
    attr(IFA.LOCAL, ipv4(ip)),
    attr(IFA.ADDRESS, ipv4(ip)),
    attr(IFA.BROADCAST, ipv4((ip | hostBits) >>> 0)),
  ]);
}

/** RTM_NEWROUTE: the default route via `gateway` on interface `index`. */
export function newDefaultRoute(seq: number, index: number, gateway: number): Uint8Array {
  // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
  // type, flags (u32).
  const rtm = new Uint8Array([
    AF_INET,
    0,
    0,
    0,
    RTNL.RT_TABLE_MAIN,
    RTNL.RTPROT_BOOT,
    RTNL.RT_SCOPE_UNIVERSE,
    RTNL.RTN_UNICAST,
    0,
    0,
    0,
    0,
  ]);
  return message(RTM.NEWROUTE, CREATE, seq, [
    rtm,
    attr(RTA.GATEWAY, ipv4(gateway)),
    attr(RTA.OIF, u32(index)),
  ]);
}

/** One message of a kernel answer. */
export interface Reply {
  /** nlmsg_type. */
  type: number;
  /** nlmsg_seq. */
  seq: number;
  /** The body after the header. */
  body: Uint8Array;
}

/** Splits a buffer received from a netlink socket into its messages. */
export function parseReplies(buf: Uint8Array): Reply[] {
  const out: Reply[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  while (o + 16 <= buf.length) {
    const len = v.getUint32(o, true);
    if (len < 16 || o + len > buf.length) break;
    out.push({
      type: v.getUint16(o + 4, true),
      seq: v.getUint32(o + 8, true),
      body: buf.subarray(o + 16, o + len),
    });
    o += (len + 3) & ~3;
  }
  return out;
}

/** The errno of an NLMSG_ERROR body (0 is the acknowledgement). */
export function errorOf(r: Reply): number {
  return -new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength).getInt32(0, true) | 0;
}

/** A link as an RTM_NEWLINK answer describes it. */
export interface LinkInfo {
  /** Its interface index. */
  index: number;
  /** Its name. */
  name: string;
  /** The index of its bridge, when it has one. */
  master?: number;
}

/** Reads an RTM_NEWLINK body. */
export function parseLink(body: Uint8Array): LinkInfo {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const link: LinkInfo = { index: v.getInt32(4, true), name: "" };
  let o = 16;
  while (o + 4 <= body.length) {
    const len = v.getUint16(o, true);
    const type = v.getUint16(o + 2, true) & 0x3fff;
    if (len < 4) break;
    const payload = body.subarray(o + 4, o + len);
    if (type === IFLA.IFNAME) {
      const nul = payload.indexOf(0);
      link.name = new TextDecoder().decode(nul < 0 ? payload : payload.subarray(0, nul));
    } else if (type === IFLA.MASTER && payload.length >= 4) {
      link.master = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
    }
    o += (len + 3) & ~3;
  }
  return link;
}
