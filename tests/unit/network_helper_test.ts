import assert from "node:assert/strict";
import {
  containerNetwork,
  defaultGateway,
  defaultRoutes,
  helperKind,
  parseSlirpOptions,
  pastaArgs,
  routesConfigured,
  slirpArgs,
  strayHelpers,
  withHelper,
} from "../../lib/container/network_helper.ts";
import { networkProblem } from "../../lib/container/network_problem.ts";
import { choosePrivateNetwork, type NetworkReport } from "../../lib/host/network.ts";
import type { ContainerRecord } from "../../lib/store/containers.ts";
import { processStat } from "../../lib/engine/state.ts";

const TCP = { hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" as const };
const UDP = { hostIp: "::1", hostPort: 5353, containerPort: 53, protocol: "udp" as const };

Deno.test("pastaArgs() forwards nothing but the published ports, and the host's loopback stays out", () => {
  assert.deepEqual(pastaArgs(42, [], [], "/p"), [
    "pasta",
    "--config-net",
    "--dns-forward",
    "169.254.1.1",
    "-t",
    "none",
    "-u",
    "none",
    "-T",
    "none",
    "-U",
    "none",
    "-q",
    "-P",
    "/p",
    "42",
  ]);
  assert.deepEqual(pastaArgs(42, [], [TCP, UDP], "/p"), [
    "pasta",
    "--config-net",
    "--dns-forward",
    "169.254.1.1",
    "-t",
    "8080:80",
    "-u",
    "::1/5353:53",
    "-T",
    "none",
    "-U",
    "none",
    "-q",
    "-P",
    "/p",
    "42",
  ]);
});

Deno.test("pastaArgs() lets the user's pasta options replace trun's defaults", () => {
  const args = pastaArgs(7, ["-T", "9000", "--dns-forward", "10.0.0.1"], [], "/p");
  assert.deepEqual(args, [
    "pasta",
    "--config-net",
    "-t",
    "none",
    "-u",
    "none",
    "-U",
    "none",
    "-q",
    "-P",
    "/p",
    "-T",
    "9000",
    "--dns-forward",
    "10.0.0.1",
    "7",
  ]);
});

Deno.test("parseSlirpOptions() reads Podman's options and refuses the others by name", () => {
  assert.deepEqual(parseSlirpOptions([]), {
    allowHostLoopback: false,
    mtu: 65520,
    enableIPv6: false,
  });
  assert.deepEqual(
    parseSlirpOptions([
      "allow_host_loopback=true",
      "mtu=1500",
      "cidr=10.5.0.0/24",
      "enable_ipv6=true",
    ]),
    { allowHostLoopback: true, mtu: 1500, cidr: "10.5.0.0/24", enableIPv6: true },
  );
  assert.throws(() => parseSlirpOptions(["port_handler=rootlesskit"]), /port_handler=rootlesskit/);
  assert.throws(
    () => parseSlirpOptions(["outbound_addr=eth0"]),
    /unsupported slirp4netns option "outbound_addr=eth0"/,
  );
  assert.throws(() => parseSlirpOptions(["mtu=big"]), /mtu=big/);
  assert.throws(() => parseSlirpOptions(["allow_host_loopback=yes"]), /use true or false/);
});

Deno.test("slirpArgs() shuts the host's loopback unless allowed", () => {
  assert.deepEqual(slirpArgs(9, parseSlirpOptions([]), "/s"), [
    "slirp4netns",
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    "--ready-fd=3",
    "--api-socket=/s",
    "9",
    "tap0",
  ]);
  assert.deepEqual(
    slirpArgs(9, parseSlirpOptions(["allow_host_loopback=true", "cidr=10.5.0.0/24"]), "/s"),
    [
      "slirp4netns",
      "--configure",
      "--mtu=65520",
      "--cidr=10.5.0.0/24",
      "--ready-fd=3",
      "--api-socket=/s",
      "9",
      "tap0",
    ],
  );
});

Deno.test("defaultGateway() reads the IPv4 default route of /proc/net/route", () => {
  const table =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
  assert.equal(defaultGateway(table), "192.0.2.1");
  assert.equal(defaultGateway(table.split("\n").slice(0, 2).join("\n")), undefined);
});

const TUN = { exists: true, mode: "0666", accessible: true };

Deno.test("choosePrivateNetwork() prefers pasta, then slirp4netns, else none saying what to install", () => {
  const r = (pasta: string | null, slirp: string | null, tun = TUN): NetworkReport => ({
    pasta,
    slirp4netns: slirp,
    devNetTun: tun as NetworkReport["devNetTun"],
  });
  assert.equal(choosePrivateNetwork(r("/usr/bin/pasta", "/usr/bin/slirp4netns")).kind, "pasta");
  assert.equal(choosePrivateNetwork(r(null, "/usr/bin/slirp4netns")).kind, "slirp4netns");
  const none = choosePrivateNetwork(r(null, null));
  assert.equal(none.kind, "none");
  assert.match(none.why, /install passt \(for pasta\) or slirp4netns/);
  const noTun = choosePrivateNetwork(
    r("/usr/bin/pasta", null, { ...TUN, accessible: false, mode: "0600" }),
  );
  assert.equal(noTun.kind, "none");
  assert.match(noTun.why, /chmod 0666 \/dev\/net\/tun/);
});

Deno.test("containerNetwork() and withHelper() keep the record's network as plain JSON", () => {
  const net = containerNetwork({ kind: "slirp4netns", options: ["mtu=1500"] }, [TCP], ["80/tcp"]);
  assert.deepEqual(net, { mode: "slirp4netns:mtu=1500", ports: [TCP], exposed: ["80/tcp"] });
  assert.equal(helperKind(net), "slirp4netns");
  assert.equal(helperKind({ mode: "host" }), null);
  const rec = { id: "x", network: net } as unknown as ContainerRecord;
  const helper = { kind: "slirp4netns" as const, pid: 5, startTime: 9 };
  assert.deepEqual(withHelper(rec, helper).network?.helper, helper);
  assert.equal(withHelper(withHelper(rec, helper), undefined).network?.helper, undefined);
});

Deno.test("strayHelpers() finds the helpers of containers without a record, by their command lines", () => {
  const proc = Deno.makeTempDirSync();
  const live = "a".repeat(64), gone = "b".repeat(64);
  const procs: Record<string, string[]> = {
    "10": ["pasta", "--config-net", "-P", `/s/containers/${live}/userdata/network.log.pid`, "5"],
    "11": ["pasta", "--config-net", "-P", `/s/containers/${gone}/userdata/network.log.pid`, "6"],
    "12": ["slirp4netns", "--configure", `--api-socket=/r/net/${gone.slice(0, 12)}.sock`, "7"],
    "13": ["slirp4netns", "--configure", `--api-socket=/r/net/${live.slice(0, 12)}.sock`, "8"],
    "14": ["pasta", "-P", `/other/containers/${gone}/userdata/x`, "9"],
    "15": ["sleep", `/s/containers/${gone}/userdata/x`],
    "16": ["deno", "run", "main.ts", "network-forwarder", gone, JSON.stringify({ store: "/s" })],
    "17": ["deno", "run", "main.ts", "network-forwarder", live, JSON.stringify({ store: "/s" })],
    "18": ["trun", "network-forwarder", gone, JSON.stringify({ store: "/other" })],
  };
  for (const [pid, argv] of Object.entries(procs)) {
    Deno.mkdirSync(`${proc}/${pid}`);
    Deno.writeTextFileSync(`${proc}/${pid}/cmdline`, argv.join("\0") + "\0");
  }
  try {
    assert.deepEqual(strayHelpers("/s", "/r", new Set([live]), proc).sort(), [11, 12, 16]);
  } finally {
    Deno.removeSync(proc, { recursive: true });
  }
});

Deno.test("networkProblem() names a dead helper, forwarder, holder or holder's pasta", () => {
  const self = processStat(Deno.pid)!;
  const alive = { pid: Deno.pid, startTime: Number(self.startTime) };
  const dead = { pid: Deno.pid, startTime: Number(self.startTime) + 1 };
  const onNet = (helper?: object) =>
    ({
      id: "x",
      network: {
        mode: "n",
        networks: { n: { ip: "10.89.0.2", aliases: [] } },
        ...(helper ? { helper } : {}),
      },
    }) as unknown as ContainerRecord;
  const fine = () => ({ holder: true, pasta: true });
  assert.equal(networkProblem(onNet({ kind: "forwarder", ...alive }), fine), undefined);
  const fwd = networkProblem(onNet({ kind: "forwarder", ...dead }), fine)!;
  assert.equal(fwd.label, "network helper forwarder exited");
  assert.match(fwd.error, /forwarder of the published ports \(pid \d+\) exited/);
  assert.equal(
    networkProblem(onNet(), () => ({ holder: false }))?.label,
    "network holder exited",
  );
  assert.equal(
    networkProblem(onNet(), () => ({ holder: true, pasta: false }))?.label,
    "network holder's pasta exited",
  );
  // A holder without pasta (as root) is fine.
  assert.equal(networkProblem(onNet(), () => ({ holder: true })), undefined);
  // A private network's helper; the holder is not asked about a container on no network.
  const priv = {
    id: "y",
    network: { mode: "pasta", helper: { kind: "pasta", ...dead } },
  } as unknown as ContainerRecord;
  assert.equal(
    networkProblem(priv, () => {
      throw new Error("asked");
    })?.label,
    "network helper pasta exited",
  );
  assert.equal(networkProblem({ ...priv, network: { mode: "pasta" } }, fine), undefined);
});

// As a Debian host with both families prints them (the kernel's own
// unreachable default on lo included).
const ROUTE = [
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
  "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
  "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
].join("\n");
const ZERO = "0".repeat(32);
const IPV6_ROUTE = [
  `fd000000000000000000000000000000 40 ${ZERO} 00 ${ZERO} 00000100 00000001 00000000 00000001     eth0`,
  `${ZERO} 00 ${ZERO} 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0`,
  `${ZERO} 00 ${ZERO} 00 ${ZERO} ffffffff 00000001 00000000 00200200       lo`,
].join("\n");

Deno.test("defaultRoutes() finds the default route of each family, not the kernel's unreachable one", () => {
  assert.deepEqual(defaultRoutes(ROUTE, IPV6_ROUTE), { v4: true, v6: true });
  const v6Lines = IPV6_ROUTE.split("\n");
  // Only the unreachable default on lo: no IPv6 default route.
  assert.deepEqual(defaultRoutes(ROUTE, [v6Lines[0], v6Lines[2]].join("\n")), {
    v4: true,
    v6: false,
  });
  // The header alone, and a route to a subnet only.
  const v4Lines = ROUTE.split("\n");
  assert.deepEqual(defaultRoutes([v4Lines[0], v4Lines[2]].join("\n"), ""), {
    v4: false,
    v6: false,
  });
  // A route not up does not count.
  assert.deepEqual(defaultRoutes(ROUTE.replace("\t0003\t", "\t0002\t"), ""), {
    v4: false,
    v6: false,
  });
  assert.deepEqual(defaultRoutes("", ""), { v4: false, v6: false });
});

Deno.test("routesConfigured() waits for every family the host routes, and only those", () => {
  const none = { v4: false, v6: false };
  const both = { v4: true, v6: true };
  assert.equal(routesConfigured(both, both), true);
  assert.equal(routesConfigured(both, { v4: true, v6: false }), false);
  assert.equal(routesConfigured({ v4: true, v6: false }, { v4: true, v6: false }), true);
  assert.equal(routesConfigured({ v4: false, v6: true }, { v4: true, v6: false }), false);
  assert.equal(routesConfigured({ v4: true, v6: false }, none), false);
});

Deno.test("pastaArgs() keeps pasta in the foreground only when asked", () => {
  assert.ok(!pastaArgs(42, [], [], "/p").includes("-f"));
  const fg = pastaArgs(42, [], [], "/p", true);
  assert.deepEqual(fg.slice(fg.indexOf("-q"), fg.indexOf("-q") + 4), ["-q", "-f", "-P", "/p"]);
  assert.equal(fg.at(-1), "42");
});
