/**
 * Unit tests of user-defined networks: address management
 * (lib/network/ipam.ts), the store's networks and leases
 * (lib/store/networks.ts), rtnetlink messages (lib/network/netlink.ts),
 * the hosts entries (lib/network/hosts.ts), the pure parts of `network ls`
 * and `network inspect`, container inspect's NetworkSettings, and the
 * spec of a container on networks.
 */
import assert from "node:assert/strict";
import {
  checkGateway,
  formatIPv4,
  formatSubnet,
  macForAddress,
  overlaps,
  parseIPv4,
  parseSubnet,
  pickAddress,
  pickSubnet,
  routesOf,
} from "../../lib/network/ipam.ts";
import { openStore } from "../../lib/store/mod.ts";
import {
  containerLeases,
  createNetwork,
  findNetwork,
  leaseAddress,
  listLeases,
  listNetworks,
  releaseLeases,
  removeNetwork,
  sweepLeases,
} from "../../lib/store/networks.ts";
import * as nl from "../../lib/network/netlink.ts";
import {
  HOSTS_MARKER,
  hostsEntriesFor,
  type NetworkMember,
  withNetworkEntries,
} from "../../lib/network/hosts.ts";
import { linkPlans, recordNetworks, vethName } from "../../lib/network/endpoints.ts";
import {
  inspectNetwork,
  parseNetworkFilters,
  renderNetworks,
  selectNetworks,
} from "../../lib/cli/network.ts";
import { NETWORK_LS } from "../../lib/cli/network.ts";
import { networkSettings } from "../../lib/cli/container_inspect.ts";
import { parseFormat } from "../../lib/cli/format.ts";
import { cid, containerRecord } from "./_container_records.ts";

/** Runs `fn` with a store on a fresh temporary root. */
async function withStore(fn: (store: ReturnType<typeof openStore>) => void | Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "trun-net-" });
  const store = openStore(root);
  try {
    await fn(store);
  } finally {
    store.close();
    await Deno.remove(root, { recursive: true });
  }
}

// ---------------------------------------------------------------------------
// IPAM

Deno.test("parseIPv4() and formatIPv4() round-trip; bad addresses are refused", () => {
  for (const a of ["0.0.0.0", "10.89.0.1", "255.255.255.255", "192.168.1.20"]) {
    assert.equal(formatIPv4(parseIPv4(a)), a);
  }
  for (const bad of ["10.89.0", "10.89.0.256", "a.b.c.d", "010.1.1.1", "1.2.3.4.5", ""]) {
    assert.throws(() => parseIPv4(bad), /invalid IPv4 address/, bad);
  }
});

Deno.test("parseSubnet() takes A.B.C.D/N with zero host bits and room for hosts", () => {
  assert.deepEqual(parseSubnet("10.89.3.0/24"), { base: parseIPv4("10.89.3.0"), prefix: 24 });
  assert.equal(formatSubnet(parseSubnet("172.20.0.0/16")), "172.20.0.0/16");
  assert.throws(() => parseSubnet("10.89.3.1/24"), /host bits are set; did you mean 10.89.3.0\/24/);
  assert.throws(() => parseSubnet("10.89.3.0"), /ADDRESS\/PREFIX/);
  assert.throws(() => parseSubnet("10.89.3.0/33"), /0 to 32/);
  assert.throws(() => parseSubnet("10.89.3.0/31"), /no room for hosts/);
});

Deno.test("overlaps() compares subnets on the shorter prefix", () => {
  const s = parseSubnet;
  assert.equal(overlaps(s("10.89.0.0/16"), s("10.89.7.0/24")), true);
  assert.equal(overlaps(s("10.89.7.0/24"), s("10.89.0.0/16")), true);
  assert.equal(overlaps(s("10.89.7.0/24"), s("10.89.8.0/24")), false);
  assert.equal(overlaps(s("10.0.0.0/8"), s("192.168.0.0/16")), false);
});

Deno.test("pickSubnet() takes the first /24 of 10.89.0.0/16 free of networks and routes", () => {
  assert.equal(formatSubnet(pickSubnet([])!), "10.89.0.0/24");
  const used = [
    parseSubnet("10.89.0.0/24"),
    parseSubnet("10.89.1.0/25"),
    parseSubnet("10.89.2.0/23"),
  ];
  assert.equal(formatSubnet(pickSubnet(used)!), "10.89.4.0/24");
  assert.equal(pickSubnet([parseSubnet("10.89.0.0/16")]), null);
  assert.equal(pickSubnet([parseSubnet("10.0.0.0/8")]), null);
});

Deno.test("pickAddress() skips the network address, the gateway, taken ones and broadcast", () => {
  const s = parseSubnet("10.89.0.0/24");
  const gw = parseIPv4("10.89.0.1");
  assert.equal(formatIPv4(pickAddress(s, gw, new Set())!), "10.89.0.2");
  assert.equal(
    formatIPv4(pickAddress(s, gw, new Set([parseIPv4("10.89.0.2"), parseIPv4("10.89.0.3")]))!),
    "10.89.0.4",
  );
  // A gateway elsewhere frees .1.
  assert.equal(formatIPv4(pickAddress(s, parseIPv4("10.89.0.254"), new Set())!), "10.89.0.1");
  const small = parseSubnet("10.9.0.0/30"); // .1 gateway, .2 host, .3 broadcast
  assert.equal(formatIPv4(pickAddress(small, parseIPv4("10.9.0.1"), new Set())!), "10.9.0.2");
  assert.equal(pickAddress(small, parseIPv4("10.9.0.1"), new Set([parseIPv4("10.9.0.2")])), null);
});

Deno.test("checkGateway() wants a host address of the subnet", () => {
  const s = parseSubnet("10.90.0.0/24");
  assert.equal(formatIPv4(checkGateway(s, "10.90.0.254")), "10.90.0.254");
  for (const bad of ["10.90.0.0", "10.90.0.255", "10.91.0.1"]) {
    assert.throws(() => checkGateway(s, bad), /is not a host address of subnet 10.90.0.0\/24/);
  }
});

Deno.test("macForAddress() is 02:42 and the address bytes", () => {
  assert.equal(macForAddress(parseIPv4("10.89.0.2")), "02:42:0a:59:00:02");
  assert.equal(macForAddress(parseIPv4("172.18.255.254")), "02:42:ac:12:ff:fe");
});

Deno.test("routesOf() reads /proc/net/route, leaving the default route out", () => {
  const text = [
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
    "cni-podman0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
    "",
  ].join("\n");
  assert.deepEqual(routesOf(text).map(formatSubnet), ["10.88.0.0/16", "192.0.2.0/24"]);
});

// ---------------------------------------------------------------------------
// The store

Deno.test("createNetwork() picks free subnets, avoiding host routes, and refuses clashes", async () => {
  await withStore((store) => {
    const a = createNetwork(store, { name: "a" }, [parseSubnet("10.89.0.0/24")]);
    assert.equal(a.subnet, "10.89.1.0/24");
    assert.equal(a.gateway, "10.89.1.1");
    assert.equal(a.driver, "bridge");
    assert.match(a.id, /^[0-9a-f]{64}$/);
    assert.equal(a.bridge, `trunbr-${a.id.slice(0, 8)}`);
    assert.ok(a.bridge.length <= 15);
    const b = createNetwork(store, { name: "b", internal: true, labels: { x: "1" } }, []);
    assert.equal(b.subnet, "10.89.0.0/24");
    assert.equal(b.internal, true);
    const c = createNetwork(
      store,
      { name: "c", subnet: "10.90.0.0/16", gateway: "10.90.0.254" },
      [],
    );
    assert.equal(c.gateway, "10.90.0.254");
    assert.throws(
      () => createNetwork(store, { name: "a" }, []),
      (e: Error & { exitCode?: number }) =>
        /network with name a already exists/.test(e.message) && e.exitCode === 1,
    );
    assert.throws(
      () => createNetwork(store, { name: "d", subnet: "10.90.3.0/24" }, []),
      /Pool overlaps with other one on this address space \(10.90.3.0\/24 overlaps 10.90.0.0\/16 of network c\)/,
    );
    assert.throws(
      () => createNetwork(store, { name: "e", gateway: "10.1.1.1" }, []),
      /--gateway needs --subnet/,
    );
    assert.throws(
      () => createNetwork(store, { name: "f", driver: "macvlan" }, []),
      /driver "macvlan"/,
    );
    assert.throws(() => createNetwork(store, { name: "bridge" }, []), /pre-defined network/);
    assert.deepEqual(listNetworks(store).map((n) => n.name), ["a", "b", "c"]);
    assert.equal(findNetwork(store, a.id.slice(0, 6))?.name, "a");
    assert.equal(findNetwork(store, "zz"), undefined);
  });
});

Deno.test("leaseAddress() gives the lowest free address and the next ethN; release frees it", async () => {
  await withStore((store) => {
    createNetwork(store, { name: "n", subnet: "10.91.0.0/24" }, []);
    createNetwork(store, { name: "m", subnet: "10.92.0.0/24" }, []);
    const x = cid("a1"), y = cid("b2");
    store.addRecord(containerRecord({ id: x, name: "x" }));
    store.addRecord(containerRecord({ id: y, name: "y" }));
    const lx = leaseAddress(store, "n", x, ["web"]);
    assert.deepEqual(lx, {
      network: "n",
      container: x,
      ip: "10.91.0.2",
      mac: "02:42:0a:5b:00:02",
      aliases: ["web"],
      ifname: "eth0",
    });
    assert.equal(leaseAddress(store, "n", y, []).ip, "10.91.0.3");
    assert.equal(leaseAddress(store, "m", x, []).ifname, "eth1");
    assert.throws(() => leaseAddress(store, "n", x, []), /already connected to network n/);
    assert.throws(() => leaseAddress(store, "nope", x, []), /network nope not found/);
    releaseLeases(store, x, "n");
    assert.deepEqual(containerLeases(store, x).map((l) => l.network), ["m"]);
    // The freed address is the next one given.
    const z = cid("c3");
    store.addRecord(containerRecord({ id: z, name: "z" }));
    assert.equal(leaseAddress(store, "n", z, []).ip, "10.91.0.2");
    // A container gone without `rm` (its row deleted) loses its leases to the sweep.
    store.removeContainer(y);
    assert.equal(sweepLeases(store), 1);
    assert.deepEqual(listLeases(store, "n").map((l) => l.container), [z]);
    removeNetwork(store, "n");
    assert.deepEqual(listLeases(store).map((l) => l.network), ["m"]);
  });
});

// ---------------------------------------------------------------------------
// rtnetlink messages

/** The attributes of a message body after `fixed` bytes: [type, payload] pairs. */
function attrs(body: Uint8Array, fixed: number): [number, Uint8Array][] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out: [number, Uint8Array][] = [];
  for (let o = fixed; o + 4 <= body.length;) {
    const len = v.getUint16(o, true);
    out.push([v.getUint16(o + 2, true), body.subarray(o + 4, o + len)]);
    o += (len + 3) & ~3;
  }
  return out;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b.subarray(0, b.indexOf(0)));

Deno.test("newBridge() is an RTM_NEWLINK create with the name and kind bridge", () => {
  const msg = nl.newBridge(7, "trunbr-1");
  const [r] = nl.parseReplies(msg);
  assert.equal(r!.type, nl.RTM.NEWLINK);
  assert.equal(r!.seq, 7);
  const v = new DataView(msg.buffer);
  assert.equal(v.getUint32(0, true), msg.length);
  assert.equal(v.getUint16(6, true), 0x1 | 0x4 | 0x400 | 0x200);
  const a = attrs(r!.body, 16);
  assert.equal(a[0]![0], 3);
  assert.equal(text(a[0]![1]), "trunbr-1");
  assert.equal(a[1]![0], 18 | 0x8000);
  const info = attrs(a[1]![1], 0);
  assert.deepEqual([info[0]![0], text(info[0]![1])], [1, "bridge"]);
});

Deno.test("newVethPair() nests the peer with its name, MAC and namespace descriptor", () => {
  const msg = nl.newVethPair(1, {
    name: "tvabc",
    master: 4,
    peerName: "eth0",
    peerMac: "02:42:0a:59:00:02",
    peerNetnsFd: 9,
  });
  const [r] = nl.parseReplies(msg);
  const a = attrs(r!.body, 16);
  assert.equal(text(a[0]![1]), "tvabc");
  assert.equal(a[1]![0], 10);
  assert.equal(new DataView(a[1]![1].buffer, a[1]![1].byteOffset).getUint32(0, true), 4);
  const info = attrs(a[2]![1], 0);
  assert.equal(text(info[0]![1]), "veth");
  const peer = attrs(info[1]![1], 0);
  assert.equal(peer[0]![0], 1);
  const p = attrs(peer[0]![1], 16);
  assert.equal(text(p[0]![1]), "eth0");
  assert.deepEqual([...p[1]![1]], [2, 0x42, 10, 0x59, 0, 2]);
  assert.equal(p[2]![0], 28);
  assert.equal(new DataView(p[2]![1].buffer, p[2]![1].byteOffset).getUint32(0, true), 9);
  assert.throws(
    () => nl.newVethPair(1, { name: "a", master: 1, peerName: "b", peerMac: "zz", peerNetnsFd: 3 }),
    /invalid MAC address/,
  );
});

Deno.test("newAddress() and newDefaultRoute() carry the addresses in network order", () => {
  const [a] = nl.parseReplies(nl.newAddress(2, 5, parseIPv4("10.89.0.2"), 24));
  assert.deepEqual([...a!.body.subarray(0, 8)], [2, 24, 0, 0, 5, 0, 0, 0]);
  const at = attrs(a!.body, 8);
  assert.deepEqual(at.map(([t]) => t), [2, 1, 4]);
  assert.deepEqual([...at[0]![1]], [10, 0x59, 0, 2]);
  assert.deepEqual([...at[2]![1]], [10, 0x59, 0, 255]);
  const [rt] = nl.parseReplies(nl.newDefaultRoute(3, 5, parseIPv4("10.89.0.1")));
  assert.equal(rt!.type, nl.RTM.NEWROUTE);
  assert.deepEqual([...rt!.body.subarray(0, 8)], [2, 0, 0, 0, 254, 3, 0, 1]);
  const rat = attrs(rt!.body, 12);
  assert.deepEqual([...rat[0]![1]], [10, 0x59, 0, 1]);
});

Deno.test("linkUp() sets and changes IFF_UP; parseReplies()/errorOf()/parseLink() read answers", () => {
  const [u] = nl.parseReplies(nl.linkUp(4, 9));
  const v = new DataView(u!.body.buffer, u!.body.byteOffset);
  assert.deepEqual([v.getInt32(4, true), v.getUint32(8, true), v.getUint32(12, true)], [9, 1, 1]);
  // An acknowledgement, an EEXIST error and a link, in one buffer.
  const ack = new Uint8Array(20);
  new DataView(ack.buffer).setInt32(0, 0, true);
  const err = new Uint8Array(20);
  new DataView(err.buffer).setInt32(0, -17, true);
  const link = nl.message(nl.RTM.NEWLINK, 0, 6, [
    (() => {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setInt32(4, 12, true);
      return b;
    })(),
    nl.getLink(0, "eth3").subarray(32), // IFLA_IFNAME "eth3"
    new Uint8Array([8, 0, 10, 0, 4, 0, 0, 0]), // IFLA_MASTER 4
  ]);
  const buf = new Uint8Array([
    ...nl.message(nl.RTM.NLMSG_ERROR, 0, 4, [ack]),
    ...nl.message(nl.RTM.NLMSG_ERROR, 0, 5, [err]),
    ...link,
  ]);
  const rs = nl.parseReplies(buf);
  assert.deepEqual(rs.map((r) => [r.type, r.seq]), [[2, 4], [2, 5], [16, 6]]);
  assert.equal(nl.errorOf(rs[0]!), 0);
  assert.equal(nl.errorOf(rs[1]!), 17);
  assert.deepEqual(nl.parseLink(rs[2]!.body), { index: 12, name: "eth3", master: 4 });
});

// ---------------------------------------------------------------------------
// Hosts files

Deno.test("withNetworkEntries() replaces trun's block and keeps the rest", () => {
  const base = "127.0.0.1\tlocalhost\n127.0.1.1\tabc\n";
  const one = withNetworkEntries(base, [{ ip: "10.89.0.2", names: ["web", "www"] }]);
  assert.equal(one, `${base}${HOSTS_MARKER}\n10.89.0.2\tweb www\n`);
  const two = withNetworkEntries(one, [{ ip: "10.89.0.3", names: ["db"] }]);
  assert.equal(two, `${base}${HOSTS_MARKER}\n10.89.0.3\tdb\n`);
  assert.equal(withNetworkEntries(two, []), base);
  assert.equal(withNetworkEntries("1.2.3.4 x", []), "1.2.3.4 x\n");
});

Deno.test("hostsEntriesFor() lists the others on the container's networks only", () => {
  const a = cid("a"), b = cid("b"), c = cid("c");
  const members: NetworkMember[] = [
    { id: a, name: "a", network: "n1", ip: "10.89.0.2", aliases: [] },
    { id: b, name: "b", network: "n1", ip: "10.89.0.3", aliases: ["bee", "b"] },
    { id: c, name: "c", network: "n2", ip: "10.89.1.2", aliases: [] },
    { id: b, name: "b", network: "n2", ip: "10.89.1.3", aliases: [] },
  ];
  assert.deepEqual(hostsEntriesFor(a, members), [
    { ip: "10.89.0.3", names: ["b", "bee", b.slice(0, 12)] },
  ]);
  assert.deepEqual(hostsEntriesFor(b, members).map((e) => e.ip), ["10.89.0.2", "10.89.1.2"]);
  assert.deepEqual(hostsEntriesFor(c, members).map((e) => e.ip), ["10.89.1.3"]);
  assert.deepEqual(hostsEntriesFor(cid("d"), members), []);
});

// ---------------------------------------------------------------------------
// Endpoints, commands and inspect

Deno.test("linkPlans() and recordNetworks() join leases with their networks", async () => {
  await withStore((store) => {
    const n = createNetwork(store, { name: "n", subnet: "10.93.0.0/16", internal: true }, []);
    const x = cid("e5");
    store.addRecord(containerRecord({ id: x, name: "x" }));
    const lease = leaseAddress(store, "n", x, ["al"]);
    const [plan] = linkPlans([lease], listNetworks(store));
    assert.deepEqual(plan, {
      bridge: n.bridge,
      gateway: parseIPv4("10.93.0.1"),
      prefix: 16,
      veth: vethName(x, n.id),
      ifname: "eth0",
      ip: parseIPv4("10.93.0.2"),
      mac: "02:42:0a:5d:00:02",
      internal: true,
    });
    assert.ok(plan!.veth.length <= 15);
    assert.deepEqual(recordNetworks([lease], listNetworks(store)), {
      n: {
        ip: "10.93.0.2",
        aliases: ["al"],
        mac: "02:42:0a:5d:00:02",
        gateway: "10.93.0.1",
        prefixLen: 16,
        networkId: n.id,
      },
    });
  });
});

Deno.test("network ls: Docker's columns, -q, filters and JSON", async () => {
  await withStore((store) => {
    createNetwork(store, { name: "front", labels: { tier: "web" } }, []);
    createNetwork(store, { name: "back" }, []);
    const all = listNetworks(store);
    const table = renderNetworks(all, { quiet: false, format: parseFormat(undefined) });
    assert.match(table[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    assert.match(table[1]!, /^[0-9a-f]{12}\s+back\s+bridge\s+local$/);
    assert.deepEqual(
      renderNetworks(all, { quiet: true, format: parseFormat(undefined) }),
      all.map((n) => n.id.slice(0, 12)),
    );
    const byName = selectNetworks(all, parseNetworkFilters(NETWORK_LS, ["name=fro"]));
    assert.deepEqual(byName.map((n) => n.name), ["front"]);
    const byLabel = selectNetworks(all, parseNetworkFilters(NETWORK_LS, ["label=tier=web"]));
    assert.deepEqual(byLabel.map((n) => n.name), ["front"]);
    assert.throws(() => parseNetworkFilters(NETWORK_LS, ["dangling=true"]), /invalid filter/);
    const json = renderNetworks(all.slice(1), { quiet: false, format: parseFormat("json") });
    const o = JSON.parse(json[0]!);
    assert.equal(o.Name, "front");
    assert.equal(o.Labels, "tier=web");
    assert.equal(o.Scope, "local");
    assert.deepEqual(
      renderNetworks(all, { quiet: false, format: parseFormat("{{.Name}}:{{.Driver}}") }),
      ["back:bridge", "front:bridge"],
    );
  });
});

Deno.test("inspectNetwork() has Docker's shape with each container's address", async () => {
  await withStore((store) => {
    const n = createNetwork(store, { name: "n", subnet: "10.94.0.0/24", internal: true }, []);
    const x = cid("f6");
    store.addRecord(containerRecord({ id: x, name: "web" }));
    leaseAddress(store, "n", x, []);
    const o = inspectNetwork(n, listLeases(store, "n"), new Map([[x, "web"]]));
    assert.equal(o.Name, "n");
    assert.equal(o.Id, n.id);
    assert.equal(o.Driver, "bridge");
    assert.equal(o.Internal, true);
    assert.deepEqual(o.IPAM, {
      Driver: "default",
      Options: {},
      Config: [{ Subnet: "10.94.0.0/24", Gateway: "10.94.0.1" }],
    });
    assert.deepEqual(o.Containers, {
      [x]: {
        Name: "web",
        EndpointID: "",
        MacAddress: "02:42:0a:5e:00:02",
        IPv4Address: "10.94.0.2/24",
        IPv6Address: "",
      },
    });
  });
});

Deno.test("networkSettings() shows each network's endpoint; none without networks", () => {
  const rec = containerRecord({
    id: cid("ab"),
    name: "web",
    state: "running",
    network: {
      mode: "n",
      networks: {
        n: {
          ip: "10.89.0.2",
          aliases: ["www"],
          mac: "02:42:0a:59:00:02",
          gateway: "10.89.0.1",
          prefixLen: 24,
          networkId: "f".repeat(64),
        },
      },
    },
  });
  const s = networkSettings(rec) as {
    IPAddress: string;
    Networks: Record<string, Record<string, unknown>>;
  };
  assert.equal(s.IPAddress, "10.89.0.2");
  const e = s.Networks.n!;
  assert.equal(e.IPAddress, "10.89.0.2");
  assert.equal(e.Gateway, "10.89.0.1");
  assert.equal(e.IPPrefixLen, 24);
  assert.equal(e.MacAddress, "02:42:0a:59:00:02");
  assert.deepEqual(e.Aliases, ["www"]);
  assert.deepEqual(networkSettings(containerRecord({ id: cid("cd"), name: "x" })), {});
});
