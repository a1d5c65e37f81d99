// User-defined networks: containers on one network reach each other by
// name and alias (including one started later), a container on another
// network cannot, `--internal` gives no way out while other networks go
// out through pasta (to a service on the host's loopback, through pasta's
// gateway address), connect and disconnect,
// `network rm` refusing a network in use, and clean ends: no holder
// process and no leases once everything is removed, and a holder killed
// with SIGKILL replaced (and the running containers wired again) by the
// next trun command. Published ports (`-p`) of containers on a network,
// through trun's forwarder: fetched from the host over IPv4 and IPv6,
// `trun port`/inspect/ps, a busy port failing cleanly, no forwarder left
// after rm, and a dead holder, holder's pasta or forwarder reported by ps
// and inspect. Run as the test user and as root.
import assert from "node:assert/strict";
import {
  hostCapabilities,
  requires,
  sandboxProcessesGone,
  type TrunSandbox,
  trunSandbox,
} from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const withPasta = requires(caps, "userns", "busybox", "pasta");

function test(name: string, fn: () => Promise<void>, extra = base) {
  Deno.test({ name: `${name}${extra.suffix}`, ignore: extra.ignore, fn });
}

/** A sandbox whose containers are removed, and whose holder is waited for, when the test ends. */
async function sandbox(): Promise<TrunSandbox & { rootfs: string }> {
  const sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const cleanup = async () => {
    const ls = await sb.run(["ps", "-a", "-q", "--no-trunc"]);
    const ids = ls.code === 0 ? ls.stdout.split("\n").filter((l) => l !== "") : [];
    if (ids.length > 0) await sb.run(["rm", "-f", ...ids]);
    await holderGone(sb);
    await sandboxProcessesGone(sb);
    await sb.cleanup();
  };
  return { ...sb, rootfs, cleanup, [Symbol.asyncDispose]: cleanup };
}

type Sb = Awaited<ReturnType<typeof sandbox>>;

/** `trun ARGS`, asserting exit 0; returns stdout. */
async function ok(sb: Sb, args: string[]): Promise<string> {
  const r = await sb.run(args);
  assert.equal(r.code, 0, `trun ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** `run FIRST… --network N… MORE… --rootfs ROOTFS sh -c SCRIPT`. */
function runArgs(sb: Sb, first: string[], networks: string[], more: string[], script: string) {
  return [
    "run",
    ...first,
    ...networks.flatMap((n) => ["--network", n]),
    ...more,
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    script,
  ];
}

/** Runs `sh -c SCRIPT` in a new container on `networks` and returns the result. */
function runOn(sb: Sb, networks: string[], script: string, more: string[] = []) {
  return sb.run(runArgs(sb, ["--rm"], networks, more, script));
}

/** Starts a detached container on `networks`; returns its id. */
async function startOn(
  sb: Sb,
  name: string,
  networks: string[],
  script: string,
  more: string[] = [],
) {
  return (await ok(sb, runArgs(sb, ["-d", "--name", name], networks, more, script))).trim();
}

/** A web server on port 80 serving /www/f = `text`. */
const httpd = (text: string) =>
  `mkdir -p /www && echo ${text} > /www/f && exec httpd -f -p 80 -h /www`;

/** The holder's pid from its file, or null. */
function holderPid(sb: Sb): number | null {
  try {
    return (JSON.parse(Deno.readTextFileSync(`${sb.env.TRUN_RUNROOT}/networks/holder.json`)) as {
      pid: number;
    }).pid;
  } catch {
    return null;
  }
}

/** Processes whose command line is trun's network holder of this sandbox. */
function holderProcesses(sb: Pick<TrunSandbox, "env">): number[] {
  const needle = `TRUN_RUNROOT=${sb.env.TRUN_RUNROOT}\0`;
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      const env = new TextDecoder("latin1").decode(Deno.readFileSync(`/proc/${e.name}/environ`));
      if (cmd.includes("network-holder") && env.includes(needle)) out.push(Number(e.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The pasta processes attached to this sandbox's holders (their pid file is in the sandbox). */
function pastaProcesses(sb: Pick<TrunSandbox, "env">): number[] {
  const needle = `${sb.env.TRUN_RUNROOT}/networks/pasta.pid`;
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(needle)) {
        out.push(Number(e.name));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Waits (up to 15 s) until the sandbox's holder and its pasta have exited; false when one is still there. */
async function holderGone(sb: Pick<TrunSandbox, "env">): Promise<boolean> {
  for (let i = 0; i < 150; i++) {
    if (holderProcesses(sb).length === 0 && pastaProcesses(sb).length === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Retries `fn` (a container's first requests may come before its server listens). */
async function eventually<T>(fn: () => Promise<T>, good: (t: T) => boolean): Promise<T> {
  let last = await fn();
  for (let i = 0; i < 20 && !good(last); i++) {
    await new Promise((r) => setTimeout(r, 250));
    last = await fn();
  }
  return last;
}

test("containers on a network reach each other by name and alias; another network cannot", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "front"]);
  await ok(sb, ["network", "create", "back"]);
  await startOn(sb, "web", ["front"], httpd("hello-front"), ["--network-alias", "www"]);
  // A container started later reaches the first by name and alias.
  const got = await eventually(
    () => runOn(sb, ["front"], "wget -qO- http://web/f && wget -qO- http://www/f"),
    (r) => r.code === 0,
  );
  assert.equal(got.code, 0, got.stderr + got.stdout);
  assert.equal(got.stdout, "hello-front\nhello-front\n");
  // And the first finds containers started after it.
  await startOn(sb, "late", ["front"], "sleep 300");
  const back = await ok(sb, [
    "exec",
    "web",
    "sh",
    "-c",
    "ping -c 1 -W 2 late >/dev/null && echo reached",
  ]);
  assert.equal(back, "reached\n");
  // Its address, as inspect tells it.
  const nets = JSON.parse(
    await ok(sb, ["inspect", "--format", "{{json .NetworkSettings.Networks}}", "web"]),
  );
  const ip = nets.front.IPAddress as string;
  assert.match(ip, /^10\.89\.\d+\.\d+$/);
  // By IP too, from the same network; not by IP nor by name from another.
  assert.equal((await runOn(sb, ["front"], `wget -qO- http://${ip}/f`)).stdout, "hello-front\n");
  const other = await runOn(
    sb,
    ["back"],
    `grep -c web /etc/hosts; ping -c 1 -W 1 ${ip} >/dev/null && echo reached || echo unreachable`,
  );
  assert.equal(other.stdout, "0\nunreachable\n", other.stderr);
});

test("--internal: no default route, but the containers on it reach each other", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "--internal", "--subnet", "10.77.0.0/24", "inner"]);
  await startOn(sb, "db", ["inner"], httpd("inner"));
  const r = await eventually(
    () => runOn(sb, ["inner"], "ip route; wget -qO- http://db/f"),
    (x) => x.code === 0,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /default/);
  assert.match(r.stdout, /10\.77\.0\.0\/24 dev eth0/);
  assert.match(r.stdout, /inner\n$/);
  const inspect = JSON.parse(await ok(sb, ["network", "inspect", "inner"]))[0];
  assert.equal(inspect.Internal, true);
  assert.deepEqual(inspect.IPAM.Config, [{ Subnet: "10.77.0.0/24", Gateway: "10.77.0.1" }]);
  // Without --internal the container gets a default route through the gateway.
  await ok(sb, ["network", "create", "--subnet", "10.78.0.0/24", "outer"]);
  const o = await runOn(sb, ["outer"], "ip route");
  assert.match(o.stdout, /default via 10\.78\.0\.1 dev eth0/);
});

test("network connect and disconnect change who a running container reaches", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "n1"]);
  await ok(sb, ["network", "create", "n2"]);
  const a = await startOn(sb, "alpha", ["n1"], httpd("from-a"));
  const b = await startOn(sb, "beta", ["n2"], "sleep 300");
  const fetch = () =>
    sb.run([
      "exec",
      "beta",
      "sh",
      "-c",
      "grep -w alpha /etc/hosts >/dev/null && wget -qO- http://alpha/f",
    ]);
  assert.notEqual((await fetch()).code, 0, "b is not on n1 yet");
  await ok(sb, ["network", "connect", "--alias", "bee", "n1", "beta"]);
  const got = await eventually(fetch, (r) => r.code === 0);
  assert.equal(got.stdout, "from-a\n", got.stderr);
  // a now knows b by its alias, and inspect shows both.
  assert.match(await ok(sb, ["exec", "alpha", "cat", "/etc/hosts"]), /\tbeta bee /);
  const net = JSON.parse(await ok(sb, ["network", "inspect", "n1"]))[0];
  assert.deepEqual(Object.keys(net.Containers).sort(), [a, b].sort());
  assert.equal(net.Containers[b].Name, "beta");
  assert.match(net.Containers[b].IPv4Address, /^10\.89\.\d+\.\d+\/24$/);
  const nets = JSON.parse(
    await ok(sb, ["inspect", "--format", "{{json .NetworkSettings.Networks}}", "beta"]),
  );
  assert.deepEqual(Object.keys(nets).sort(), ["n1", "n2"]);
  assert.deepEqual(nets.n1.Aliases, ["bee"]);
  assert.equal(nets.n1.Gateway, net.IPAM.Config[0].Gateway);
  assert.match(nets.n1.MacAddress, /^02:42:/);
  await ok(sb, ["network", "disconnect", "n1", "beta"]);
  assert.notEqual((await fetch()).code, 0, "b left n1");
  assert.doesNotMatch(await ok(sb, ["exec", "alpha", "cat", "/etc/hosts"]), /\tbeta /);
  const links = await ok(sb, ["exec", "beta", "ip", "-o", "link"]);
  assert.doesNotMatch(links, /eth1/);
  const again = await sb.run(["network", "disconnect", "n1", "beta"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /is not connected to network n1/);
});

test("network ls, inspect, rm refusing a network in use, -f, prune", async () => {
  await using sb = await sandbox();
  const id = (await ok(sb, ["network", "create", "--label", "k=v", "used"])).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  await ok(sb, ["network", "create", "spare"]);
  await ok(sb, ["network", "create", "spare2"]);
  const dup = await sb.run(["network", "create", "used"]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /network with name used already exists/);
  const ls = await ok(sb, ["network", "ls"]);
  assert.match(ls.split("\n")[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
  assert.match(ls, new RegExp(`${id.slice(0, 12)}\\s+used\\s+bridge\\s+local`));
  assert.equal(
    await ok(sb, ["network", "ls", "-q", "--filter", "name=used"]),
    `${id.slice(0, 12)}\n`,
  );
  assert.equal(
    await ok(sb, ["network", "ls", "--format", "{{.Name}}", "--filter", "label=k=v"]),
    "used\n",
  );
  const c = await startOn(sb, "user", ["used"], "sleep 300");
  const refused = await sb.run(["network", "rm", "used"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /has active endpoints/);
  // prune keeps the network in use.
  assert.match(await ok(sb, ["network", "prune", "-f"]), /Deleted Networks:\nspare\nspare2\n/);
  assert.equal(await ok(sb, ["network", "ls", "--format", "{{.Name}}"]), "used\n");
  assert.equal(await ok(sb, ["network", "rm", "-f", "used"]), "used\n");
  assert.equal((await sb.run(["inspect", c])).code, 1, "rm -f removed its container");
  const missing = await sb.run(["network", "inspect", "used"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /network used not found/);
  const unknown = await sb.run(["run", "--rm", "--network", "nope", "--rootfs", sb.rootfs, "true"]);
  assert.equal(unknown.code, 125);
  assert.match(unknown.stderr, /network nope not found/);
});

/** The host's default gateway: in R (pasta --config-net) the address that leads to the host. */
function hostGateway(): string | null {
  for (const line of Deno.readTextFileSync("/proc/net/route").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === "00000000" && f[7] === "00000000" && f[2] !== undefined) {
      const n = parseInt(f[2], 16);
      return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
    }
  }
  return null;
}

test("a network's containers go out through pasta; an internal network's do not", async () => {
  await using sb = await sandbox();
  const gw = hostGateway();
  assert.ok(gw !== null, "the host has a default route");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("from-host\n"),
  );
  try {
    const port = server.addr.port;
    await ok(sb, ["network", "create", "out"]);
    await ok(sb, ["network", "create", "--internal", "in"]);
    const out = await runOn(sb, ["out"], `wget -qO- http://${gw}:${port}/`);
    assert.equal(out.stdout, "from-host\n", out.stderr);
    const inner = await runOn(
      sb,
      ["in"],
      `ip route | grep -c default; nc -w 2 ${gw} ${port} </dev/null && echo reached || echo unreachable`,
    );
    assert.equal(inner.stdout, "0\nunreachable\n", inner.stderr);
  } finally {
    await server.shutdown();
  }
}, withPasta);

test("clean ends: no holder and no leases once the containers are gone; kill -9 of the holder is tidied", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "n"]);
  await startOn(sb, "web", ["n"], httpd("first"));
  const first = holderPid(sb);
  assert.ok(first !== null, "a holder runs");
  assert.deepEqual(holderProcesses(sb), [first]);
  // kill -9 of the holder: the next command starts another and wires the
  // running container again.
  Deno.kill(first, "SIGKILL");
  const got = await eventually(
    () => runOn(sb, ["n"], "wget -qO- http://web/f"),
    (r) => r.code === 0,
  );
  assert.equal(got.stdout, "first\n", got.stderr);
  const second = holderPid(sb);
  assert.ok(second !== null && second !== first, "a new holder");
  assert.deepEqual(holderProcesses(sb), [second]);
  // The killed holder's pasta went with it.
  assert.ok(pastaProcesses(sb).length <= 1, `one pasta at most: ${pastaProcesses(sb)}`);
  // rm of everything: the holder goes, the leases go, nothing is left.
  await ok(sb, ["rm", "-f", "web"]);
  assert.ok(await holderGone(sb), "the holder exits once no container is on a network");
  const net = JSON.parse(await ok(sb, ["network", "inspect", "n"]))[0];
  assert.deepEqual(net.Containers, {});
  const left = [...Deno.readDirSync(`${sb.env.TRUN_RUNROOT}/networks`)].map((e) => e.name).sort();
  assert.deepEqual(left.filter((n) => n !== "locks" && n !== "holder.log" && n !== "netns"), []);
  assert.deepEqual([...Deno.readDirSync(`${sb.env.TRUN_RUNROOT}/networks/netns`)], []);
  // The address is free again: the next container gets the same one.
  const again = await runOn(sb, ["n"], "ip -4 -o addr show eth0");
  assert.match(again.stdout, /inet 10\.89\.\d+\.2\//);
});

/** A TCP port free on `hostname` now (the kernel's pick). */
function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Whether the host has IPv6 loopback. */
function hasIPv6(): boolean {
  try {
    freePort("::1");
    return true;
  } catch {
    return false;
  }
}

/** The published-port forwarders of this sandbox's containers (their plan names the store). */
function forwarderProcesses(sb: Pick<TrunSandbox, "env">): number[] {
  const needle = JSON.stringify(sb.env.TRUN_ROOT);
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmd.includes("\0network-forwarder\0") && cmd.includes(needle)) out.push(Number(e.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** GETs `url` from the host; the body, or the error's message. */
async function get(url: string): Promise<string> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return await r.text();
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

/** Waits (up to 5 s) until `fn` holds. */
async function until(fn: () => boolean): Promise<boolean> {
  for (let i = 0; i < 50 && !fn(); i++) await new Promise((r) => setTimeout(r, 100));
  return fn();
}

test("-p on a network: fetched from the host (IPv4 and IPv6), trun port, inspect, ps; rm leaves no forwarder", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "--subnet", "10.79.0.0/24", "pub"]);
  const v6 = hasIPv6();
  const p4 = freePort();
  const p6 = v6 ? freePort("::1") : 0;
  const id = await startOn(
    sb,
    "web",
    ["pub"],
    "mkdir -p /www && echo published > /www/f && exec httpd -f -v -p 80 -h /www",
    ["-p", `127.0.0.1:${p4}:80`, ...(v6 ? ["-p", `[::1]:${p6}:80`] : [])],
  );
  const body = await eventually(
    () => get(`http://127.0.0.1:${p4}/f`),
    (t) => t === "published\n",
  );
  assert.equal(body, "published\n");
  if (v6) assert.equal(await get(`http://[::1]:${p6}/f`), "published\n");
  assert.equal(
    await ok(sb, ["port", "web"]),
    `80/tcp -> 127.0.0.1:${p4}\n` + (v6 ? `80/tcp -> [::1]:${p6}\n` : ""),
  );
  assert.equal(
    await ok(sb, ["port", "web", "80"]),
    `127.0.0.1:${p4}\n` + (v6 ? `[::1]:${p6}\n` : ""),
  );
  const ports = JSON.parse(
    await ok(sb, ["inspect", "--format", "{{json .NetworkSettings.Ports}}", "web"]),
  );
  assert.deepEqual(ports["80/tcp"], [
    { HostIp: "127.0.0.1", HostPort: String(p4) },
    ...(v6 ? [{ HostIp: "::1", HostPort: String(p6) }] : []),
  ]);
  assert.equal(
    await ok(sb, ["ps", "--format", "{{.Ports}}"]),
    `127.0.0.1:${p4}->80/tcp` + (v6 ? `, [::1]:${p6}->80/tcp` : "") + "\n",
  );
  // The container sees the connection come from its network's gateway.
  // (httpd -v logs to its stderr.)
  const logs = await eventually(
    async () => (await sb.run(["logs", "web"])).stderr,
    (t) => /response:200/.test(t),
  );
  assert.match(logs, /10\.79\.0\.1\]?:\d+: response:200/);
  // One forwarder, ended by rm; the port is free again.
  const fwd = forwarderProcesses(sb);
  assert.equal(fwd.length, 1, `one forwarder: ${fwd}`);
  const rec = JSON.parse(await ok(sb, ["inspect", "--format", "{{json .State}}", id]));
  assert.equal(rec.Error, "");
  await ok(sb, ["rm", "-f", "web"]);
  assert.ok(await until(() => forwarderProcesses(sb).length === 0), "the forwarder went with rm");
  Deno.listen({ hostname: "127.0.0.1", port: p4 }).close();
});

test("-p on a network follows network disconnect: the forwarder moves to the next network, and goes with the last", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "--subnet", "10.81.0.0/24", "first"]);
  await ok(sb, ["network", "create", "--subnet", "10.82.0.0/24", "second"]);
  const port = freePort();
  await startOn(sb, "web", ["first", "second"], httpd("moved"), ["-p", `127.0.0.1:${port}:80`]);
  const url = `http://127.0.0.1:${port}/f`;
  assert.equal(await eventually(() => get(url), (t) => t === "moved\n"), "moved\n");
  // Its first network's address goes away with the network: the ports must
  // now lead to its address on the second.
  await ok(sb, ["network", "disconnect", "first", "web"]);
  assert.equal(await eventually(() => get(url), (t) => t === "moved\n"), "moved\n");
  assert.equal(forwarderProcesses(sb).length, 1, "one forwarder after the move");
  const state = JSON.parse(await ok(sb, ["inspect", "--format", "{{json .State}}", "web"]));
  assert.equal(state.Error, "", "the new forwarder is the recorded one");
  // With no network left, nothing is forwarded and the port is free.
  await ok(sb, ["network", "disconnect", "second", "web"]);
  assert.ok(
    await until(() => forwarderProcesses(sb).length === 0),
    "no forwarder without a network",
  );
  Deno.listen({ hostname: "127.0.0.1", port }).close();
  await ok(sb, ["rm", "-f", "web"]);
});

test("-p on a network: a container that exits takes its forwarder; a busy port fails run and start cleanly", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "busy"]);
  // The forwarder ends with its container.
  await startOn(sb, "short", ["busy"], "sleep 3", ["-p", `127.0.0.1:${freePort()}:80`]);
  assert.equal(forwarderProcesses(sb).length, 1, "a forwarder while it runs");
  const ended = async () => {
    for (let i = 0; i < 100 && forwarderProcesses(sb).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return forwarderProcesses(sb).length === 0;
  };
  assert.ok(await ended(), "the forwarder ended with the container");
  const port = freePort();
  const taken = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    const r = await sb.run(
      runArgs(sb, ["-d", "--name", "clash"], ["busy"], ["-p", `127.0.0.1:${port}:80`], "sleep 300"),
    );
    assert.equal(r.code, 125, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`cannot publish port ${port}/tcp on 127\\.0\\.0\\.1: address already in use`),
    );
    assert.equal((await sb.run(["inspect", "clash"])).code, 1, "nothing created");
    // Taken between create and start: the start fails, nothing runs.
    await ok(sb, [
      "create",
      "--name",
      "later",
      "--network",
      "busy",
      "-p",
      `127.0.0.1:${freePort()}:80`,
      "--rootfs",
      sb.rootfs,
      "sleep",
      "300",
    ]);
    const mine = JSON.parse(
      await ok(sb, ["inspect", "--format", "{{json .HostConfig.PortBindings}}", "later"]),
    )["80/tcp"][0].HostPort as string;
    const late = Deno.listen({ hostname: "127.0.0.1", port: Number(mine) });
    try {
      const s = await sb.run(["start", "later"]);
      assert.notEqual(s.code, 0);
      assert.match(s.stderr, /address already in use/);
      assert.equal(await ok(sb, ["inspect", "--format", "{{.State.Running}}", "later"]), "false\n");
    } finally {
      late.close();
    }
    assert.deepEqual(forwarderProcesses(sb), []);
  } finally {
    taken.close();
  }
});

test("a dead forwarder, holder or holder's pasta is reported in ps and inspect", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "watch"]);
  const port = freePort();
  await startOn(sb, "web", ["watch"], httpd("watched"), ["-p", `127.0.0.1:${port}:80`]);
  await startOn(sb, "plain", ["watch"], "sleep 300");
  const status = async (name: string) =>
    (await ok(sb, ["ps", "--filter", `name=${name}`, "--format", "{{.Status}}"])).trim();
  const error = async (name: string) =>
    (await ok(sb, ["inspect", "--format", "{{.State.Error}}", name])).trim();
  assert.match(await status("plain"), /^Up [^(]*$/);
  assert.equal(
    await eventually(() => get(`http://127.0.0.1:${port}/f`), (t) => t === "watched\n"),
    "watched\n",
  );
  // The holder's pasta (none when pasta is not installed).
  const pastaFile = `${sb.env.TRUN_RUNROOT}/networks/pasta.pid`;
  let pasta = 0;
  try {
    pasta = Number(Deno.readTextFileSync(pastaFile).trim());
  } catch {
    // None.
  }
  if (pasta > 0) {
    Deno.kill(pasta, "SIGKILL");
    assert.ok(await until(() => !pastaProcesses(sb).includes(pasta)));
    assert.match(await status("plain"), /\(network holder's pasta exited\)$/);
    assert.match(await error("plain"), /pasta of the user-defined networks' namespace exited/);
    // The next run on a network attaches a new one.
    await ok(sb, runArgs(sb, ["--rm"], ["watch"], [], "true"));
    assert.match(await status("plain"), /^Up [^(]*$/);
    assert.equal(await error("plain"), "");
    assert.equal(pastaProcesses(sb).length, 1);
  }
  // The holder.
  const holder = holderPid(sb)!;
  Deno.kill(holder, "SIGKILL");
  assert.ok(await until(() => !holderProcesses(sb).includes(holder)));
  assert.match(await status("plain"), /\(network holder exited\)$/);
  assert.match(await error("plain"), /holder of the user-defined networks' namespace exited/);
  await ok(sb, runArgs(sb, ["--rm"], ["watch"], [], "true"));
  assert.match(await status("plain"), /^Up [^(]*$/);
  // The published port works again through the new holder.
  assert.equal(
    await eventually(() => get(`http://127.0.0.1:${port}/f`), (t) => t === "watched\n"),
    "watched\n",
  );
  // The forwarder.
  const [fwd] = forwarderProcesses(sb);
  assert.ok(fwd !== undefined, "a forwarder runs");
  Deno.kill(fwd, "SIGKILL");
  assert.ok(await until(() => !forwarderProcesses(sb).includes(fwd)));
  assert.match(await status("web"), /\(network helper forwarder exited\)$/);
  assert.match(await error("web"), /forwarder of the published ports \(pid \d+\) exited/);
});

test("-p …/udp on a network: datagrams reach the container and its answers come back", async () => {
  await using sb = await sandbox();
  await ok(sb, ["network", "create", "--subnet", "10.80.0.0/24", "dgram"]);
  const port = freePort();
  // busybox's nc has no -u here: the host's python3, bound in read-only,
  // answers each datagram and prints where it came from.
  const server = "import socket\n" +
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
    "s.bind(('0.0.0.0', 5353))\n" +
    "while True:\n" +
    "    d, a = s.recvfrom(2048)\n" +
    "    print('from', a[0], flush=True)\n" +
    "    s.sendto(b'echo-' + d, a)\n";
  await startOn(sb, "echo", ["dgram"], `exec /usr/bin/python3 -c "${server}"`, [
    "-p",
    `127.0.0.1:${port}:5353/udp`,
    ...["-v", "/usr:/usr:ro", "-v", "/usr/lib64:/lib64:ro", "-v", "/usr/lib:/lib:ro"],
  ]);
  assert.equal(await ok(sb, ["port", "echo"]), `5353/udp -> 127.0.0.1:${port}\n`);
  const dgram = await import("node:dgram");
  const sock = dgram.createSocket("udp4");
  const answers: string[] = [];
  sock.on("message", (m: Uint8Array) => answers.push(new TextDecoder().decode(m)));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  try {
    for (let i = 0; i < 50 && answers.length === 0; i++) {
      sock.send("ping", port, "127.0.0.1");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(answers[0], "echo-ping");
  } finally {
    sock.close();
  }
  // The container sees the datagrams come from its network's gateway.
  assert.match(await ok(sb, ["logs", "echo"]), /^from 10\.80\.0\.1$/m);
  await ok(sb, ["rm", "-f", "echo"]);
  assert.ok(await until(() => forwarderProcesses(sb).length === 0), "the forwarder went with rm");
});
