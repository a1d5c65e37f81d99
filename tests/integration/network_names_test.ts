// What containers see of names: /etc/hosts (hostname, name, --add-host,
// host-gateway), /etc/resolv.conf (--dns, --dns-search, --dns-option, the
// host's loopback resolvers left out of a private network), and
// `--network container:NAME` sharing another container's network
// namespace, hostname and files. As the test user and as root.
import assert from "node:assert/strict";
import { hostCapabilities, requires, type TrunSandbox, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `${name}${base.suffix}`, ignore: base.ignore, fn });
}

const rootless = requires(caps, "userns", "busybox", "rootless");

/** A test of user namespaces that root's containers do not have. */
function rootlessTest(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `${name}${rootless.suffix}`, ignore: rootless.ignore, fn });
}

const LOOPBACK = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

type Box = TrunSandbox & { rootfs: string };

async function sandbox(): Promise<Box> {
  return { ...await trunSandbox(), rootfs: await busyboxRootfs() };
}

/** `run --rm [flags] --rootfs ROOTFS sh -c SCRIPT`, which must succeed; its stdout. */
async function output(sb: Box, flags: string[], script: string): Promise<string> {
  const r = await sb.run(["run", "--rm", ...flags, "--rootfs", sb.rootfs, "sh", "-c", script]);
  assert.equal(r.code, 0, `run ${flags.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** `run -d [flags] --rootfs ROOTFS sh -c SCRIPT`; the id it prints. */
async function detached(sb: Box, flags: string[], script: string): Promise<string> {
  const r = await sb.run(["run", "-d", ...flags, "--rootfs", sb.rootfs, "sh", "-c", script]);
  assert.equal(r.code, 0, `run -d: ${r.stderr}`);
  return r.stdout.trim();
}

/** A port in the dynamic range (each container has its own network namespace anyway). */
function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

test("/etc/hosts of a private network names the hostname, the domain, the container and --add-host", async () => {
  await using sb = await sandbox();
  const hosts = await output(sb, [
    "--network",
    "none",
    "--name",
    "names1",
    "--hostname",
    "web",
    "--domainname",
    "example.org",
    "--add-host",
    "db:10.0.0.5",
    "--add-host",
    "v6:[2001:db8::1]",
    "--add-host",
    "lo6=::1",
  ], "cat /etc/hosts; hostname; cat /proc/sys/kernel/domainname; getent hosts web || true");
  assert.equal(
    hosts,
    `${LOOPBACK}10.0.0.5\tdb\n2001:db8::1\tv6\n::1\tlo6\n127.0.1.1\tweb.example.org web names1\n` +
      "web\nexample.org\n",
  );
});

test("/etc/hosts: the short id is the hostname by default, and the name follows it", async () => {
  await using sb = await sandbox();
  const out = await output(
    sb,
    ["--network", "none", "--name", "names2"],
    "hostname; cat /etc/hosts",
  );
  const [hostname, ...rest] = out.split("\n");
  assert.match(hostname!, /^[0-9a-f]{12}$/);
  assert.equal(rest.join("\n"), `${LOOPBACK}127.0.1.1\t${hostname} names2\n`);
});

test("--add-host NAME:host-gateway is refused without a gateway, on the host's loopback with --network host", async () => {
  await using sb = await sandbox();
  const r = await sb.run([
    "run",
    "--rm",
    "--network",
    "none",
    "--add-host",
    "gw:host-gateway",
    "--rootfs",
    sb.rootfs,
    "true",
  ]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /cannot resolve "host-gateway" in --add-host "gw:host-gateway"/);
  const hosts = await output(sb, [
    "--network",
    "host",
    "--add-host",
    "gw:host-gateway",
    "--add-host",
    "db:10.0.0.5",
  ], "grep -E '\\s(gw|db)$' /etc/hosts");
  assert.equal(hosts, "127.0.0.1\tgw\n10.0.0.5\tdb\n");
});

test("malformed --add-host and --dns values fail before anything is made, with Docker's messages", async () => {
  await using sb = await sandbox();
  const cases: [string[], RegExp][] = [
    [["--add-host", "nohost"], /invalid argument "nohost" for "--add-host" flag: bad format/],
    [["--add-host", "db:10.0.0"], /invalid IP address in add-host: "10.0.0"/],
    [["--dns", "dns.example"], /IP address is not correctly formatted: dns.example/],
    [["--dns-search", "-bad.org"], /-bad.org is not a valid domain/],
  ];
  for (const [flags, want] of cases) {
    const r = await sb.run(["run", "--rm", ...flags, "--rootfs", sb.rootfs, "true"]);
    assert.equal(r.code, 125, flags.join(" "));
    assert.match(r.stderr, want);
  }
  assert.equal((await sb.run(["ps", "-aq"])).stdout, "");
});

test("--dns, --dns-search and --dns-option make /etc/resolv.conf", async () => {
  await using sb = await sandbox();
  const conf = await output(sb, [
    "--network",
    "none",
    "--dns",
    "10.1.1.1",
    "--dns",
    "2001:db8::53",
    "--dns-search",
    "corp.example",
    "--dns-search",
    "lab.example",
    "--dns-option",
    "ndots:2",
    "--dns-option",
    "timeout:1",
  ], "grep -v '^#' /etc/resolv.conf | grep -Ev '^(domain|sortlist)'");
  assert.equal(
    conf,
    "nameserver 10.1.1.1\nnameserver 2001:db8::53\nsearch corp.example lab.example\n" +
      "options ndots:2 timeout:1\n",
  );
});

test("a private network's /etc/resolv.conf leaves out the host's loopback resolvers", async () => {
  await using sb = await sandbox();
  const conf = await output(sb, ["--network", "none"], "cat /etc/resolv.conf");
  const servers = conf.split("\n").filter((l) => l.startsWith("nameserver "));
  assert.ok(servers.length > 0, conf);
  assert.ok(!servers.some((s) => /^nameserver (127\.|::1$)/.test(s)), conf);
  const host = Deno.readTextFileSync("/etc/resolv.conf").split("\n")
    .filter((l) => l.startsWith("nameserver ") && !/^nameserver (127\.|::1\s*$)/.test(l))
    .map((l) => l.trim());
  assert.deepEqual(servers, host.length > 0 ? host : ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]);
});

test("--network host keeps the host's /etc/hosts and /etc/resolv.conf", async () => {
  await using sb = await sandbox();
  const out = await output(
    sb,
    ["--network", "host", "--hostname", "hostnet1"],
    "cat /etc/hosts; echo ===; cat /etc/resolv.conf",
  );
  const [hosts, resolv] = out.split("===\n");
  let want = Deno.readTextFileSync("/etc/hosts");
  if (!want.endsWith("\n")) want += "\n";
  assert.equal(hosts, `${want}127.0.1.1\thostnet1\n`);
  assert.equal(resolv, Deno.readTextFileSync("/etc/resolv.conf"));
});

test("--network none has loopback up, and only loopback", async () => {
  await using sb = await sandbox();
  const port = randomPort();
  const out = await output(
    sb,
    ["--network", "none"],
    `ls /sys/class/net; (nc -l -p ${port} -e echo pong &); sleep 0.3; nc 127.0.0.1 ${port} </dev/null`,
  );
  assert.equal(out, "lo\npong\n");
});

test("--network container:NAME shares the network namespace, hostname and /etc files", async () => {
  await using sb = await sandbox();
  const port = randomPort();
  const peer = await detached(
    sb,
    ["--name", "peer", "--network", "none", "--hostname", "peerhost", "--add-host", "db:10.0.0.5"],
    `nc -l -p ${port} -e echo hello-from-peer; sleep 600`,
  );
  await new Promise((r) => setTimeout(r, 300));
  const peerNs = await sb.run(["exec", "peer", "readlink", "/proc/self/ns/net"]);
  assert.equal(peerNs.code, 0, peerNs.stderr);
  const peerHosts = await sb.run(["exec", "peer", "cat", "/etc/hosts"]);
  const out = await output(
    sb,
    ["--network", "container:peer"],
    `readlink /proc/self/ns/net; hostname; nc 127.0.0.1 ${port} </dev/null; echo ===; cat /etc/hosts`,
  );
  const [head, hosts] = out.split("===\n");
  assert.equal(head, `${peerNs.stdout}peerhost\nhello-from-peer\n`);
  assert.equal(hosts, peerHosts.stdout);
  assert.match(hosts!, /^10\.0\.0\.5\tdb$/m);
  // By id too; inspect names the full id.
  const id = await detached(sb, ["--network", `container:${peer.slice(0, 12)}`], "sleep 600");
  const mode = await sb.run(["inspect", "-f", "{{.HostConfig.NetworkMode}}", id]);
  assert.equal(mode.stdout.trim(), `container:${peer}`);
  // The joiner keeps the namespace when the peer stops, as with Docker.
  assert.equal((await sb.run(["rm", "-f", "peer"])).code, 0);
  const still = await sb.run(["exec", id, "readlink", "/proc/self/ns/net"]);
  assert.equal(still.stdout, peerNs.stdout);
});

test("--network container: refuses a missing or stopped container and the options it decides", async () => {
  await using sb = await sandbox();
  const run = (flags: string[]) => sb.run(["run", "--rm", ...flags, "--rootfs", sb.rootfs, "true"]);
  let r = await run(["--network", "container:nosuch"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /No such container: nosuch/);
  await detached(sb, ["--name", "stopped", "--network", "none"], "true");
  await sb.run(["wait", "stopped"]);
  r = await run(["--network", "container:stopped"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /cannot join network of a non running container: stopped/);
  const conflicts: [string[], string][] = [
    [["--hostname", "x"], "conflicting options: hostname and the network mode"],
    [["--dns", "1.1.1.1"], "conflicting options: dns and the network mode"],
    [
      ["--add-host", "a:1.2.3.4"],
      "conflicting options: custom host-to-IP mapping and the network mode",
    ],
  ];
  for (const [flags, message] of conflicts) {
    r = await run(["--network", "container:stopped", ...flags]);
    assert.equal(r.code, 125, flags.join(" "));
    assert.match(r.stderr, new RegExp(message));
  }
});

rootlessTest(
  "--network container: refuses a peer whose user namespace maps ids differently",
  async () => {
    await using sb = await sandbox();
    await detached(
      sb,
      ["--name", "single", "--userns", "single", "--network", "none"],
      "sleep 600",
    );
    const r = await sb.run([
      "run",
      "--rm",
      "--network",
      "container:single",
      "--rootfs",
      sb.rootfs,
      "true",
    ]);
    assert.equal(r.code, 125);
    assert.match(
      r.stderr,
      /cannot join network of container single: its user namespace maps uids differently/,
    );
  },
);

test("a created container:NAME container joins the other's current namespace when it starts", async () => {
  await using sb = await sandbox();
  await detached(sb, ["--name", "moving", "--network", "none"], "sleep 600");
  const r = await sb.run([
    "create",
    "--name",
    "joiner",
    "--network",
    "container:moving",
    "--rootfs",
    sb.rootfs,
    "sleep",
    "600",
  ]);
  assert.equal(r.code, 0, r.stderr);
  // Started again, the other container has a new process and a new namespace.
  assert.equal((await sb.run(["restart", "-t", "0", "moving"])).code, 0);
  assert.equal((await sb.run(["start", "joiner"])).code, 0);
  const ns = async (name: string) =>
    (await sb.run(["exec", name, "readlink", "/proc/self/ns/net"])).stdout;
  assert.equal(await ns("joiner"), await ns("moving"));
  assert.equal((await sb.run(["stop", "-t", "0", "moving", "joiner"])).code, 0);
  const again = await sb.run(["start", "joiner"]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /cannot join network of a non running container/);
});
