/**
 * The process that gives a container's own network namespace its
 * connectivity: pasta (Debian's passt) or slirp4netns, started on the
 * container's pid between the runtime's create and start, with the
 * published ports, and stopped when the container ends (neither exits by
 * itself when the namespace goes: both were tried). Its pid and start time
 * are kept in the record, so `rm`, `ps` and the next trun command find a
 * helper left behind by a killed trun, and `ps`/`inspect` tell when it died
 * while the container runs.
 */
import {
  cloexecPipe,
  CLOSE_INHERITED,
  closeFd,
  readFd,
  signalProcess,
  spawnDetached,
  spawnOrphan,
  spawnProcess,
  waitChild,
} from "../../ffi/child_program.ts";
import { O, SIGNALS } from "../../ffi/syscalls.ts";
import { openPath } from "../../ffi/fs.ts";
import { isAlive, processStat } from "../engine/state.ts";
import { choosePrivateNetwork } from "../host/network.ts";
import { probeNetwork } from "../host/network.ts";
import { findExecutable } from "../runtime/idmap.ts";
import { runtimeRoot } from "../paths.ts";
import {
  FORWARDER_COMMAND,
  FORWARDER_KIND,
  type ForwarderPlan,
  forwarderPlan,
} from "../network/forwarder_plan.ts";
import { formatNetworkMode, type NetworkMode, parseNetworkMode } from "../spec/network_mode.ts";
import type { ContainerNetwork, ContainerRecord, PortBinding } from "../store/containers.ts";

/** The helper process of a run, as the record keeps it. */
export type NetworkHelper = NonNullable<ContainerNetwork["helper"]>;

/** The address pasta's DNS forwarder answers on inside (Podman's choice). */
export const PASTA_DNS = "169.254.1.1";
/** slirp4netns's fixed addresses: the host (gateway) and its DNS forwarder. */
export const SLIRP_GATEWAY = "10.0.2.2";
/** slirp4netns's DNS forwarder. */
export const SLIRP_DNS = "10.0.2.3";

/** `slirp4netns:` options trun implements (Podman's names). */
export interface SlirpOptions {
  /** `allow_host_loopback=true`: 10.0.2.2 reaches the host's loopback. */
  allowHostLoopback: boolean;
  /** `mtu=`. */
  mtu: number;
  /** `cidr=`: the network (default 10.0.2.0/24). */
  cidr?: string;
  /** `enable_ipv6=true`. */
  enableIPv6: boolean;
}

/** Reads `slirp4netns:` options; refuses the ones trun does not implement, naming them. */
export function parseSlirpOptions(options: readonly string[]): SlirpOptions {
  const out: SlirpOptions = { allowHostLoopback: false, mtu: 65520, enableIPv6: false };
  const bool = (k: string, v: string) => {
    if (v !== "true" && v !== "false") {
      throw new Error(`invalid slirp4netns option "${k}=${v}": use true or false`);
    }
    return v === "true";
  };
  for (const o of options) {
    const eq = o.indexOf("=");
    const [k, v] = eq < 0 ? [o, ""] : [o.slice(0, eq), o.slice(eq + 1)];
    switch (k) {
      case "allow_host_loopback":
        out.allowHostLoopback = bool(k, v);
        break;
      case "enable_ipv6":
        out.enableIPv6 = bool(k, v);
        break;
      case "mtu": {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 68 || n > 65521) {
          throw new Error(`invalid slirp4netns option "mtu=${v}": a number from 68 to 65521`);
        }
        out.mtu = n;
        break;
      }
      case "cidr":
        if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(v)) {
          throw new Error(`invalid slirp4netns option "cidr=${v}": use an IPv4 network A.B.C.D/N`);
        }
        out.cidr = v;
        break;
      case "port_handler":
        if (v !== "slirp4netns") {
          throw new Error(
            `unsupported slirp4netns option "port_handler=${v}": trun forwards ports ` +
              "through slirp4netns itself (port_handler=slirp4netns)",
          );
        }
        break;
      default:
        throw new Error(
          `unsupported slirp4netns option "${o}": trun takes allow_host_loopback=, mtu=, ` +
            "cidr=, enable_ipv6= and port_handler=slirp4netns",
        );
    }
  }
  return out;
}

/** The address slirp4netns gives the host inside a `cidr` (its .2), or the default. */
function slirpGateway(o: SlirpOptions): string {
  if (!o.cidr) return SLIRP_GATEWAY;
  const [a, b, c, d] = o.cidr.split("/")[0]!.split(".").map(Number);
  return [a, b, c, (d! & ~0xff) + 2].join(".");
}

/** The DNS address of slirp4netns inside a `cidr` (its .3). */
function slirpDns(o: SlirpOptions): string {
  return slirpGateway(o).replace(/\.\d+$/, (m) => `.${Number(m.slice(1)) + 1}`);
}

/** Whether one of pasta's own options in `options` sets `flag` (short or long). */
function pastaHas(options: readonly string[], short: string, long: string): boolean {
  return options.some((o) => o === short || o === long || o.startsWith(`${long}=`));
}

/** pasta's spelling of a published port: `[ADDR/]HOSTPORT:CONTAINERPORT`. */
function pastaPort(b: PortBinding): string {
  return `${b.hostIp === "" ? "" : `${b.hostIp}/`}${b.hostPort}:${b.containerPort}`;
}

/**
 * pasta's arguments for container process `target` (or its network
 * namespace passed as descriptor 3), staying in the foreground when
 * `foreground` (its pid is then the spawned one): configure the interface
 * (addresses and routes copied from the host), the DNS forwarder, the
 * published ports, nothing forwarded from the namespace to the host's
 * loopback (`-T none -U none`: the host's 127.0.0.1 stays out of reach;
 * the gateway address maps to the host instead), then the user's own
 * pasta options (Podman's `pasta:OPTIONS`).
 */
export function pastaArgs(
  target: number | "fd3",
  options: readonly string[],
  ports: readonly PortBinding[],
  pidFile: string,
  foreground = false,
): string[] {
  const tcp = ports.filter((p) => p.protocol === "tcp").map(pastaPort);
  const udp = ports.filter((p) => p.protocol === "udp").map(pastaPort);
  const forwards = (short: string, long: string, list: string[]) =>
    list.length > 0
      ? list.flatMap((p) => [short, p])
      : pastaHas(options, short, long)
      ? []
      : [short, "none"];
  return [
    "pasta",
    "--config-net",
    ...(pastaHas(options, "--dns-forward", "--dns-forward") ? [] : ["--dns-forward", PASTA_DNS]),
    ...forwards("-t", "--tcp-ports", tcp),
    ...forwards("-u", "--udp-ports", udp),
    ...(pastaHas(options, "-T", "--tcp-ns") ? [] : ["-T", "none"]),
    ...(pastaHas(options, "-U", "--udp-ns") ? [] : ["-U", "none"]),
    "-q",
    ...(foreground ? ["-f"] : []),
    "-P",
    pidFile,
    ...options,
    // A container without a user namespace of its own (root): pasta, which
    // drops its capabilities first, could not open /proc/PID/ns/net; trun
    // opens it and passes it on as descriptor 3 (reopened through
    // /proc/self/fd, which needs no capability), and pasta stays root.
    ...(target === "fd3"
      ? ["--runas", "0", "--netns", "/proc/self/fd/3", "--netns-only"]
      : [String(target)]),
  ];
}

/** slirp4netns's arguments for container process `pid` (readiness on descriptor 3). */
export function slirpArgs(pid: number, o: SlirpOptions, apiSocket: string): string[] {
  return [
    "slirp4netns",
    "--configure",
    `--mtu=${o.mtu}`,
    ...(o.allowHostLoopback ? [] : ["--disable-host-loopback"]),
    ...(o.cidr ? [`--cidr=${o.cidr}`] : []),
    ...(o.enableIPv6 ? ["--enable-ipv6"] : []),
    "--ready-fd=3",
    `--api-socket=${apiSocket}`,
    String(pid),
    "tap0",
  ];
}

/** What a `--network` value gives a new container, `private` resolved on this host. */
export interface ResolvedNetwork {
  /** The mode the container gets (never `private`). */
  mode: NetworkMode;
  /** `RunOptions.hostGateway`. */
  hostGateway?: string;
  /** `RunOptions.dnsServers`. */
  dnsServers?: string[];
  /** Said once when `private` falls back to none. */
  warning?: string;
}

/** The host's IPv4 default gateway from /proc/net/route (pasta copies the host's routes), or undefined. */
export function defaultGateway(routeTable: string): string | undefined {
  for (const line of routeTable.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== "00000000" || f[2] === undefined || f[7] !== "00000000") continue;
    const n = parseInt(f[2], 16);
    if (!n) continue;
    // Little-endian hex, as the kernel prints it.
    return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff].join(".");
  }
  return undefined;
}

/** Which families have a default route, as pasta's `--config-net` copies them from the host. */
export interface DefaultRoutes {
  /** IPv4. */
  v4: boolean;
  /** IPv6. */
  v6: boolean;
}

/** RTF_UP and RTF_REJECT of the kernel's route flags. */
const RTF_UP = 0x1, RTF_REJECT = 0x200;

/**
 * The default routes in route tables as /proc/PID/net/route and
 * /proc/PID/net/ipv6_route print them (a namespace's, or the host's);
 * unreachable ones (the kernel's own on `lo`) do not count.
 */
export function defaultRoutes(route: string, ipv6Route: string): DefaultRoutes {
  const v4 = route.split("\n").slice(1).some((line) => {
    const f = line.trim().split(/\s+/);
    const flags = parseInt(f[3] ?? "0", 16);
    return f[1] === "00000000" && f[7] === "00000000" && (flags & RTF_UP) !== 0 &&
      (flags & RTF_REJECT) === 0;
  });
  const v6 = ipv6Route.split("\n").some((line) => {
    const f = line.trim().split(/\s+/);
    const flags = parseInt(f[8] ?? "0", 16);
    return f[0] === "0".repeat(32) && f[1] === "00" && f[9] !== undefined && f[9] !== "lo" &&
      (flags & RTF_UP) !== 0 && (flags & RTF_REJECT) === 0;
  });
  return { v4, v6 };
}

/** The default routes in the network namespace of process `pid` (`proc` for tests: "/proc"). */
function routesOf(pid: number | "self", proc = "/proc"): DefaultRoutes {
  const read = (name: string) => {
    try {
      return Deno.readTextFileSync(`${proc}/${pid}/net/${name}`);
    } catch {
      return "";
    }
  };
  return defaultRoutes(read("route"), read("ipv6_route"));
}

/** Whether `got` holds every default route `expected` has. */
export function routesConfigured(expected: DefaultRoutes, got: DefaultRoutes): boolean {
  return (!expected.v4 || got.v4) && (!expected.v6 || got.v6);
}

/**
 * Resolves `mode` for a new container: `private` becomes pasta,
 * slirp4netns or none (with one warning saying what to install); an
 * explicit helper must be installed. Sets the gateway that reaches the
 * host and the DNS forwarder where the helper has them.
 */
export function resolveNetwork(
  mode: NetworkMode,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): ResolvedNetwork {
  const pathEnv = env.PATH ?? "";
  let m = mode;
  let warning: string | undefined;
  if (m.kind === "private") {
    const { report } = probeNetwork({
      root: "",
      who: { uid: Deno.uid() ?? 0, groups: [Deno.gid() ?? 0] },
      name: env.USER ?? "",
      pathEnv,
    });
    const choice = choosePrivateNetwork(report);
    if (choice.kind === "none") warning = choice.why;
    m = choice.kind === "none" ? { kind: "none" } : { kind: choice.kind, options: [] };
  }
  if (m.kind === "pasta" || m.kind === "slirp4netns") {
    if (!findExecutable(m.kind, pathEnv)) {
      throw new Error(
        `--network ${m.kind}: ${m.kind} is not installed: install ${
          m.kind === "pasta" ? "passt" : "slirp4netns"
        }`,
      );
    }
  }
  if (m.kind === "pasta") {
    let routes = "";
    try {
      routes = Deno.readTextFileSync("/proc/net/route");
    } catch {
      // No IPv4 routes to read: no gateway to map.
    }
    const gw = pastaHas(m.options, "--no-map-gw", "--no-map-gw")
      ? undefined
      : defaultGateway(routes);
    return {
      mode: m,
      ...(gw ? { hostGateway: gw } : {}),
      dnsServers: [PASTA_DNS],
      ...(warning ? { warning } : {}),
    };
  }
  if (m.kind === "slirp4netns") {
    const o = parseSlirpOptions(m.options);
    return {
      mode: m,
      ...(o.allowHostLoopback ? { hostGateway: slirpGateway(o) } : {}),
      dnsServers: [slirpDns(o)],
    };
  }
  return { mode: m, ...(warning ? { warning } : {}) };
}

/**
 * The spec annotation that asks `trun runtime create` (run by conmon) to
 * start the container's network helper once its namespaces exist: its
 * value is `{ id, network }` as JSON. Started there because after the
 * create the waiting process runs as the container's user and is not
 * dumpable, so nobody but root could open its namespaces any more.
 */
export const NETWORK_ANNOTATION = "run.trun.network";

/** Where the runtime's create leaves the helper it started, in the bundle. */
export function helperFilePath(bundle: string): string {
  return `${bundle}/network-helper.json`;
}

/**
 * `trun runtime create`'s part: when the spec's annotations ask for a
 * network helper, starts it on `pid` and leaves it in the bundle for the
 * starter to record. Returns it, to be ended if the create fails.
 */
export async function startAnnotatedHelper(
  annotations: Readonly<Record<string, string>>,
  bundle: string,
  pid: number,
): Promise<NetworkHelper | undefined> {
  const text = annotations[NETWORK_ANNOTATION];
  if (text === undefined) return undefined;
  const { id, network } = JSON.parse(text) as { id: string; network: ContainerNetwork };
  const helper = await startNetworkHelper(id, network, pid, `${bundle}/network.log`);
  if (helper) Deno.writeTextFileSync(helperFilePath(bundle), JSON.stringify(helper));
  return helper;
}

/** Takes the helper `startAnnotatedHelper` left in `bundle` (once). */
export function takeAnnotatedHelper(bundle: string): NetworkHelper | undefined {
  try {
    const helper = JSON.parse(Deno.readTextFileSync(helperFilePath(bundle))) as NetworkHelper;
    Deno.removeSync(helperFilePath(bundle));
    return helper;
  } catch {
    return undefined;
  }
}

/** Whether the record's network has a helper to start (pasta or slirp4netns). */
export function helperKind(net: ContainerNetwork | undefined): "pasta" | "slirp4netns" | null {
  if (!net) return null;
  const kind = net.mode.split(":")[0];
  return kind === "pasta" || kind === "slirp4netns" ? kind : null;
}

/** The API socket of a container's slirp4netns (short: a socket path has 108 bytes). */
function apiSocketPath(id: string): string {
  return `${runtimeRoot()}/net/${id.slice(0, 12)}.sock`;
}

/**
 * The line of a helper's error output that says why it failed: pasta's
 * first (a usage text may follow), slirp4netns's last (progress lines
 * come first); pasta's notes about an absent syslog are skipped.
 */
function helperMessage(path: string, kind: NetworkHelper["kind"]): string {
  try {
    const lines = Deno.readTextFileSync(path).split("\n").map((l) => l.trim())
      .filter((l) => l !== "" && !/^Failed to send \d+ bytes to syslog$/.test(l));
    Deno.removeSync(path);
    return (kind === "pasta" ? lines[0] : lines.at(-1)) ?? "";
  } catch {
    return "";
  }
}

/**
 * Checks that every host port is free before a helper binds it (pasta
 * starts even when it could bind none of them): a clear error naming the
 * first busy one.
 */
export async function checkHostPorts(ports: readonly PortBinding[]): Promise<void> {
  for (const p of ports) {
    if (!(await portFree(p.hostIp, p.hostPort, p.protocol))) {
      const where = p.hostIp === "" ? "0.0.0.0" : p.hostIp;
      throw Object.assign(
        new Error(
          `cannot publish port ${p.hostPort}/${p.protocol} on ${where}: ` +
            `address already in use; stop what listens there or choose another host port`,
        ),
        { exitCode: 125 },
      );
    }
  }
}

/** Whether `port` (0: any) can be bound at `ip` (""; every address); the bound port, or 0. */
async function bindProbe(ip: string, port: number, protocol: "tcp" | "udp"): Promise<number> {
  const hostname = ip === "" ? "0.0.0.0" : ip;
  if (protocol === "tcp") {
    try {
      const l = Deno.listen({ hostname, port });
      const got = (l.addr as Deno.NetAddr).port;
      l.close();
      return got;
    } catch {
      return 0;
    }
  }
  const dgram = await import("node:dgram");
  const s = dgram.createSocket(hostname.includes(":") ? "udp6" : "udp4");
  return await new Promise<number>((resolve) => {
    s.once("error", () => {
      s.close();
      resolve(0);
    });
    s.bind(port, hostname, () => {
      const got = s.address().port;
      s.close(() => resolve(got));
    });
  });
}

async function portFree(ip: string, port: number, protocol: "tcp" | "udp"): Promise<boolean> {
  return (await bindProbe(ip, port, protocol)) === port;
}

/**
 * Chooses the host ports not given (0: a free port the kernel picks; a
 * range: its first free port), and checks that the given ones are free.
 */
export async function allocateHostPorts(
  ports: readonly (PortBinding & { hostPortRange?: [number, number] })[],
): Promise<PortBinding[]> {
  const out: PortBinding[] = [];
  const given: PortBinding[] = [];
  for (const { hostPortRange, ...p } of ports) {
    if (hostPortRange) {
      let found = 0;
      for (let port = hostPortRange[0]; port <= hostPortRange[1] && !found; port++) {
        if (await portFree(p.hostIp, port, p.protocol)) found = port;
      }
      if (!found) {
        throw Object.assign(
          new Error(
            `cannot publish port ${p.containerPort}/${p.protocol}: every host port of ` +
              `${hostPortRange[0]}-${hostPortRange[1]} is in use`,
          ),
          { exitCode: 125 },
        );
      }
      out.push({ ...p, hostPort: found });
    } else if (p.hostPort === 0) {
      const got = await bindProbe(p.hostIp, 0, p.protocol);
      if (!got) {
        throw Object.assign(
          new Error(`cannot find a free host port on ${p.hostIp || "0.0.0.0"} for ${p.protocol}`),
          { exitCode: 125 },
        );
      }
      out.push({ ...p, hostPort: got });
    } else {
      out.push(p);
      given.push(p);
    }
  }
  await checkHostPorts(given);
  return out;
}

/** Asks slirp4netns (over its API socket) to forward one host port. */
async function slirpForward(socket: string, p: PortBinding): Promise<void> {
  if (p.hostIp.includes(":")) {
    throw new Error(
      `cannot publish port ${p.hostPort}/${p.protocol} on ${p.hostIp}: slirp4netns forwards ` +
        "only IPv4 host addresses; use --network pasta for IPv6",
    );
  }
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    const request = {
      execute: "add_hostfwd",
      arguments: {
        proto: p.protocol,
        host_addr: p.hostIp === "" ? "0.0.0.0" : p.hostIp,
        host_port: p.hostPort,
        guest_port: p.containerPort,
      },
    };
    await conn.write(new TextEncoder().encode(JSON.stringify(request)));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    const reply = JSON.parse(new TextDecoder().decode(buf.subarray(0, n ?? 0)) || "{}");
    if (reply.error) {
      throw new Error(
        `cannot publish port ${p.hostPort}/${p.protocol} on ${p.hostIp || "0.0.0.0"}: ` +
          `address already in use or not available (slirp4netns: ${reply.error.desc})`,
      );
    }
  } finally {
    conn.close();
  }
}

/** The helper process `pid` with its start time, as the record keeps it. */
function helperOf(kind: NetworkHelper["kind"], pid: number): NetworkHelper {
  const st = processStat(pid);
  return { kind, pid, ...(st ? { startTime: Number(st.startTime) } : {}) };
}

/** Where a pasta start reads and writes. */
interface PastaStart {
  /** Its error output. */
  errorPath: string;
  /** Its `-P` file. */
  pidFile: string;
  /** The container's network namespace, passed as descriptor 3. */
  nsFd?: number;
}

/**
 * pasta as Podman runs it: it forks to the background once it is wholly
 * ready (its published ports bound), and its first process's exit says
 * ready (0) or failed.
 */
async function startPastaReady(
  exe: string,
  args: string[],
  env: string[],
  s: PastaStart,
): Promise<NetworkHelper> {
  const errFd = openPath(s.errorPath, O.WRONLY | O.CLOEXEC, `opening "${s.errorPath}"`);
  let status;
  try {
    status = await waitChild(spawnProcess(exe, args, env, errFd, s.nsFd, CLOSE_INHERITED));
  } finally {
    closeFd(errFd);
  }
  let daemon = 0;
  try {
    daemon = Number(Deno.readTextFileSync(s.pidFile).trim());
    Deno.removeSync(s.pidFile);
  } catch {
    // Not written: it failed before it was ready.
  }
  if (!(status.exited && status.code === 0) || !(daemon > 0)) {
    if (daemon > 0) signalProcess(daemon, SIGNALS.SIGKILL);
    throw new Error(
      `network helper pasta failed: ${helperMessage(s.errorPath, "pasta") || "no message"}`,
    );
  }
  return helperOf("pasta", daemon);
}

/**
 * pasta in the foreground (its own session), for a container with no
 * published port: the container may start as soon as pasta has set up
 * its namespace (the interface up, the addresses and the default routes
 * the host has, which pasta copies), about 60 ms before pasta is wholly
 * ready. The rest of pasta's start (about 20 MB of packet buffers to
 * touch, pools of sockets and pipes) then overlaps the container's:
 * what the container sends meanwhile waits in the tap device's queue, and
 * no port of the host waits on pasta. Measured on Debian's pasta
 * (2023-03): the routes at 40–55 ms, ready at 100–120 ms.
 */
async function startPastaEarly(
  exe: string,
  args: string[],
  env: string[],
  s: PastaStart & { pid: number; routes: DefaultRoutes },
): Promise<NetworkHelper> {
  // Nobody's child: trun's monitor would keep its zombie, and the
  // runtime's create must not wait for it.
  const helper = await spawnOrphan(exe, args, env, {
    stderrPath: s.errorPath,
    passFd: s.nsFd,
    setup: CLOSE_INHERITED,
  });
  for (;;) {
    const st = processStat(helper);
    if (!st || st.state === "Z" || st.state === "X") {
      throw new Error(
        `network helper pasta failed: ${helperMessage(s.errorPath, "pasta") || "no message"}`,
      );
    }
    // Its pid file says wholly ready (when the routes were not seen first).
    let ready = false;
    try {
      ready = Deno.statSync(s.pidFile).size > 0;
    } catch {
      // Not yet.
    }
    if (ready || routesConfigured(s.routes, routesOf(s.pid))) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  return helperOf("pasta", helper);
}

/**
 * Starts the network helper of container `id` (network `net`) on its first process `pid`
 * (created, not started), with its published ports; resolves to the
 * helper, or undefined when its network has none. Throws with the
 * helper's own message when it could not start (nothing is left running).
 */
export async function startNetworkHelper(
  id: string,
  net: ContainerNetwork | undefined,
  pid: number,
  errorPath: string,
): Promise<NetworkHelper | undefined> {
  const kind = helperKind(net);
  if (!kind) return undefined;
  const mode = parseNetworkMode(net!.mode);
  const options = mode.kind === kind ? mode.options : [];
  const ports = net!.ports ?? [];
  const path = Deno.env.get("PATH") ?? "";
  const exe = findExecutable(kind, path);
  if (!exe) {
    throw new Error(
      `network helper ${kind} is not installed: install ${
        kind === "pasta" ? "passt" : "slirp4netns"
      }`,
    );
  }
  const env = ["PATH=" + path];
  Deno.writeTextFileSync(errorPath, "", { mode: 0o600 });
  if (kind === "pasta") {
    // pasta binds the ports even when one is taken; the check comes first.
    await checkHostPorts(ports);
    const pidFile = `${errorPath}.pid`;
    try {
      Deno.removeSync(pidFile);
    } catch {
      // No previous run's.
    }
    // Without a user namespace of its own, the container's network
    // namespace is handed over open (see pastaArgs).
    const ownUserns = Deno.readLinkSync(`/proc/${pid}/ns/user`) !==
      Deno.readLinkSync("/proc/self/ns/user");
    const nsFd = ownUserns ? undefined : openPath(
      `/proc/${pid}/ns/net`,
      O.RDONLY | O.CLOEXEC,
      `opening the network namespace of process ${pid}`,
    );
    try {
      const target = nsFd === undefined ? pid : "fd3";
      const early = ports.length === 0 && options.length === 0 ? routesOf("self") : undefined;
      return early && (early.v4 || early.v6)
        ? await startPastaEarly(exe, pastaArgs(target, options, ports, pidFile, true), env, {
          pid,
          routes: early,
          errorPath,
          pidFile,
          ...(nsFd !== undefined ? { nsFd } : {}),
        })
        : await startPastaReady(exe, pastaArgs(target, options, ports, pidFile), env, {
          errorPath,
          pidFile,
          ...(nsFd !== undefined ? { nsFd } : {}),
        });
    } finally {
      if (nsFd !== undefined) closeFd(nsFd);
    }
  }
  {
    const o = parseSlirpOptions(options);
    const socket = apiSocketPath(id);
    Deno.mkdirSync(`${runtimeRoot()}/net`, { recursive: true, mode: 0o700 });
    try {
      Deno.removeSync(socket);
    } catch {
      // No previous run's socket.
    }
    const [readyRead, readyWrite] = cloexecPipe();
    let helper: number;
    try {
      helper = spawnDetached(exe, slirpArgs(pid, o, socket), env, {
        stderrPath: errorPath,
        passFd: readyWrite,
        setup: CLOSE_INHERITED,
      });
    } finally {
      closeFd(readyWrite);
    }
    try {
      const ready = await readFd(readyRead, 1);
      if (ready.length !== 1) {
        throw new Error(
          `network helper slirp4netns failed: ${
            helperMessage(errorPath, "slirp4netns") || "no message"
          }`,
        );
      }
      for (const p of ports) await slirpForward(socket, p);
    } catch (e) {
      signalProcess(helper, SIGNALS.SIGKILL);
      throw e;
    } finally {
      closeFd(readyRead);
    }
    return helperOf("slirp4netns", helper);
  }
}

/**
 * Starts the forwarder of a container's published ports on user-defined
 * networks (lib/network/forwarder.ts), or resolves to undefined when it has
 * none; a busy port throws (exit code 125) with nothing left running.
 */
export async function startPortForwarder(
  rec: ContainerRecord,
  logPath: string,
): Promise<NetworkHelper | undefined> {
  const plan = forwarderPlan(rec);
  if (!plan) return undefined;
  // Loaded only here: the forwarder and the holder it relays through are
  // for user-defined networks, not every container's monitor.
  const { startForwarder } = await import("../network/forwarder.ts");
  return await startForwarder(rec.id, plan, logPath);
}

/**
 * After `network connect` or `disconnect` of running container `after`
 * (`before` is its record before): a port forwarder follows the address of
 * its first network. When that address changed, the forwarder ends (its
 * ports freed) and a new one starts on the new address, or none when no
 * network is left. Returns the helper to record, or "unchanged".
 */
export async function followPortForwarder(
  before: ContainerRecord,
  after: ContainerRecord,
  logPath: string,
): Promise<NetworkHelper | undefined | "unchanged"> {
  const h = after.network?.helper;
  if (h?.kind !== FORWARDER_KIND || !helperAlive(h)) return "unchanged";
  const next = forwarderPlan(after);
  if (forwarderPlan(before)?.ip === next?.ip) return "unchanged";
  stopNetworkHelper(after.id, h);
  for (let i = 0; i < 100 && helperAlive(h); i++) await new Promise((r) => setTimeout(r, 50));
  if (!next) return undefined;
  const { startForwarder } = await import("../network/forwarder.ts");
  return await startForwarder(after.id, next, logPath);
}

/** Whether the recorded helper process still runs (pid and start time). */
export function helperAlive(h: NetworkHelper, proc = "/proc"): boolean {
  return isAlive(
    { pid: h.pid, startTime: h.startTime === undefined ? "" : String(h.startTime) },
    proc,
  );
}

/** Ends the recorded helper if it still runs (its start time guards against a reused pid). */
export function stopNetworkHelper(id: string, h: NetworkHelper | undefined): void {
  if (h && helperAlive(h)) signalProcess(h.pid, SIGNALS.SIGTERM);
  if (h?.kind === "slirp4netns") {
    try {
      Deno.removeSync(apiSocketPath(id));
    } catch {
      // Gone already.
    }
  }
}

/**
 * pasta, slirp4netns and forwarder processes started for containers of the
 * store at `storeRoot` (runtime directory `runRoot`) that have no record
 * any more: their command line names the container's directory (pasta's
 * pid file), its API socket (slirp4netns) or its id (`trun
 * network-forwarder ID`). A helper whose container was removed
 * before its start was recorded (a killed trun) is found this way.
 */
export function strayHelpers(
  storeRoot: string,
  runRoot: string,
  live: ReadonlySet<string>,
  proc = "/proc",
): number[] {
  const ids = [...live];
  const known = (id: string) => ids.some((l) => l.startsWith(id));
  const inStore = new RegExp(`^${regexpQuote(storeRoot)}/containers/([0-9a-f]{64})/`);
  const inRun = new RegExp(`^--api-socket=${regexpQuote(runRoot)}/net/([0-9a-f]{12})\\.sock$`);
  const out: number[] = [];
  for (const e of Deno.readDirSync(proc)) {
    if (!/^\d+$/.test(e.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`${proc}/${e.name}/cmdline`).split("\0");
    } catch {
      continue;
    }
    // A published-port forwarder names its container after its command.
    const fwd = argv.indexOf(FORWARDER_COMMAND);
    if (fwd > 0 && /^[0-9a-f]{64}$/.test(argv[fwd + 1] ?? "")) {
      if (forwarderStore(argv[fwd + 2] ?? "") === storeRoot && !known(argv[fwd + 1]!)) {
        out.push(Number(e.name));
      }
      continue;
    }
    if (argv[0] !== "pasta" && argv[0] !== "slirp4netns") continue;
    for (const a of argv) {
      const id = inStore.exec(a)?.[1] ?? inRun.exec(a)?.[1];
      if (id !== undefined && !known(id)) out.push(Number(e.name));
    }
  }
  return out;
}

/** The store a forwarder's plan (its last argument) belongs to, or "". */
function forwarderStore(planJson: string): string {
  try {
    return String((JSON.parse(planJson) as ForwarderPlan).store ?? "");
  } catch {
    return "";
  }
}

function regexpQuote(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The record's network for `mode` and its ports (the mode as `--network` spells it). */
export function containerNetwork(
  mode: NetworkMode,
  ports: readonly PortBinding[],
  exposed: readonly string[],
): ContainerNetwork {
  return {
    mode: formatNetworkMode(mode),
    ...(ports.length > 0 ? { ports: [...ports] } : {}),
    ...(exposed.length > 0 ? { exposed: [...exposed] } : {}),
  };
}

/** `r` with `helper` as its current run's network helper (or none). */
export function withHelper(r: ContainerRecord, helper: NetworkHelper | undefined): ContainerRecord {
  if (!r.network) return r;
  const { helper: _old, ...net } = r.network;
  return { ...r, network: helper ? { ...net, helper } : net };
}
