/**
 * Published ports of containers on user-defined networks: one forwarder
 * process per container (`trun network-forwarder`), started before the
 * container and ended with it like the private networks' pasta. It listens
 * on the host ports in the host's network namespace; for each connection it
 * asks the holder (lib/network/holder.ts), which lives in the shared
 * namespace, to connect to the container's address and port on its bridge,
 * and copies bytes both ways over the holder's unix socket.
 *
 * Why a relay through the holder rather than pasta: Debian 12's pasta
 * cannot add forwards to the holder's running instance, and a second pasta
 * per container would need its own interface in the shared namespace and
 * NAT rules to reach the bridge; a unix socket crosses namespaces without
 * either, needs no privilege (rootless and root alike) and no firewall, and
 * the forwarder is one process that `rm`, `ps` and the next trun command
 * handle like any network helper. UDP goes the same way, one relay per
 * client address, its datagrams framed on the stream. Its cost: the container sees connections
 * from its network's gateway address, not from the client (as with
 * Podman's rootlessport), and bytes are copied twice in user space.
 */
import { cloexecPipe, closeFd, readFd, spawnDetached, writeFd } from "../../ffi/child_program.ts";
import { processStat } from "../engine/state.ts";
import { runtimeRoot, storeRoot } from "../paths.ts";
import { selfCommand } from "../runtime/self_exec.ts";
import type { PortBinding } from "../store/containers.ts";
import { holderDir, readLineFrom } from "./holder.ts";
import { FORWARDER_COMMAND, type ForwarderPlan } from "./forwarder_plan.ts";
import {
  frameDatagram,
  type HalfCloseConn,
  orderedWriter,
  readDatagrams,
  relayBoth,
} from "./relay.ts";

/**
 * The addresses to listen on for host address `hostIp`: every address is
 * IPv6's any address, which takes IPv4 too (dual stack), else IPv4's when
 * the host has no IPv6.
 */
export function listenAddresses(hostIp: string): string[] {
  return hostIp === "" ? ["::", "0.0.0.0"] : [hostIp];
}

/**
 * Starts container `id`'s forwarder, detached, and waits until it listens
 * on every port; throws its own message (a busy port: exit code 125) with
 * nothing left running.
 */
export async function startForwarder(
  id: string,
  plan: ForwarderPlan,
  logPath: string,
): Promise<{ kind: "forwarder"; pid: number; startTime?: number }> {
  const argv = selfCommand([FORWARDER_COMMAND, id, JSON.stringify(plan)]);
  const env = Object.entries({
    ...Deno.env.toObject(),
    TRUN_ROOT: storeRoot(),
    TRUN_RUNROOT: runtimeRoot(),
  }).map(([k, v]) => `${k}=${v}`);
  Deno.writeTextFileSync(logPath, "", { mode: 0o600 });
  const [readyRead, readyWrite] = cloexecPipe();
  let pid: number;
  try {
    pid = spawnDetached(argv[0]!, argv, env, { stderrPath: logPath, passFd: readyWrite });
  } finally {
    closeFd(readyWrite);
  }
  try {
    const ready = await readFd(readyRead, 1);
    if (ready.length !== 1) {
      let why = "";
      try {
        why = Deno.readTextFileSync(logPath).trim().split("\n").at(-1) ?? "";
      } catch {
        // No log.
      }
      throw Object.assign(
        new Error(why.replace(/^trun network-forwarder: /, "") || "the port forwarder failed"),
        { exitCode: 125 },
      );
    }
  } finally {
    closeFd(readyRead);
  }
  const st = processStat(pid);
  return { kind: "forwarder", pid, ...(st ? { startTime: Number(st.startTime) } : {}) };
}

/** Opens a relay to `ip:port` (TCP, or UDP datagrams framed) in the shared namespace through the holder. */
async function openRelay(
  ip: string,
  port: number,
  proto: "tcp" | "udp" = "tcp",
): Promise<Deno.UnixConn> {
  const path = `${holderDir()}/holder.sock`;
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    const req = { op: "connect", ip, port, proto };
    await conn.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const answer = JSON.parse((await readLineFrom(conn)) || '{"error":"no answer"}') as {
      error?: string;
    };
    if (answer.error !== undefined) throw new Error(answer.error);
    return conn;
  } catch (e) {
    conn.close();
    throw e;
  }
}

/** One line on the forwarder's stderr (its log, which `startForwarder` reads on failure). */
function logLine(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`trun network-forwarder: ${text}\n`));
}

/** Listens on one published TCP port; throws a user's message when it is taken. */
function listenPort(p: PortBinding): Deno.TcpListener {
  let last: unknown;
  for (const hostname of listenAddresses(p.hostIp)) {
    try {
      return Deno.listen({ hostname, port: p.hostPort });
    } catch (e) {
      last = e;
      // A taken port is taken on every address: no point in trying IPv4.
      if (e instanceof Deno.errors.AddrInUse) break;
    }
  }
  const where = p.hostIp === "" ? "0.0.0.0" : p.hostIp;
  const why = last instanceof Deno.errors.AddrInUse
    ? "address already in use; stop what listens there or choose another host port"
    : (last as Error).message;
  throw new Error(`cannot publish port ${p.hostPort}/${p.protocol} on ${where}: ${why}`);
}

/** A bound UDP socket. */
type UdpSocket = import("node:dgram").Socket;

/** Binds one published UDP port; throws a user's message when it is taken. */
async function bindUdp(p: PortBinding): Promise<UdpSocket> {
  const dgram = await import("node:dgram");
  let last: Error | undefined;
  for (const address of listenAddresses(p.hostIp)) {
    const sock = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once("error", reject);
        sock.bind(p.hostPort, address, () => {
          sock.off("error", reject);
          resolve();
        });
      });
      return sock;
    } catch (e) {
      sock.close();
      last = e as Error;
      if ((e as { code?: string }).code === "EADDRINUSE") break;
    }
  }
  const where = p.hostIp === "" ? "0.0.0.0" : p.hostIp;
  const why = (last as { code?: string } | undefined)?.code === "EADDRINUSE"
    ? "address already in use; stop what listens there or choose another host port"
    : last?.message;
  throw new Error(`cannot publish port ${p.hostPort}/${p.protocol} on ${where}: ${why}`);
}

/** How long a UDP client may stay silent before its relay is closed. */
const UDP_IDLE_MS = 60_000;

/**
 * Serves one UDP port: each client (address and port) gets its own relay
 * to the container's `port`, closed after {@link UDP_IDLE_MS} of silence;
 * the container's answers go back to that client.
 */
function serveUdp(sock: UdpSocket, ip: string, port: number): void {
  interface Session {
    write?: (b: Uint8Array) => void;
    pending: Uint8Array[];
    conn?: Deno.UnixConn;
    last: number;
  }
  const sessions = new Map<string, Session>();
  sock.on("message", (msg: Uint8Array, from: { address: string; port: number }) => {
    const key = `${from.address}|${from.port}`;
    let s = sessions.get(key);
    if (!s) {
      const fresh: Session = { pending: [], last: Date.now() };
      s = fresh;
      sessions.set(key, fresh);
      openRelay(ip, port, "udp").then(async (conn) => {
        fresh.conn = conn;
        fresh.write = orderedWriter(conn);
        for (const d of fresh.pending.splice(0)) fresh.write(frameDatagram(d));
        await readDatagrams(conn, (d) => sock.send(d, from.port, from.address));
        sessions.delete(key);
      }).catch((e) => {
        logLine(`cannot reach ${ip}:${port}/udp: ${(e as Error).message}`);
        sessions.delete(key);
      });
    }
    s.last = Date.now();
    if (s.write) s.write(frameDatagram(msg));
    else s.pending.push(msg);
  });
  setInterval(() => {
    for (const [key, s] of sessions) {
      if (Date.now() - s.last < UDP_IDLE_MS || !s.conn) continue;
      sessions.delete(key);
      try {
        s.conn.close();
      } catch {
        // Closed already.
      }
    }
  }, 10_000);
}

/** Serves one listener: each connection relayed to the container's `port`. */
async function serve(listener: Deno.TcpListener, ip: string, port: number): Promise<void> {
  for await (const client of listener) {
    (async () => {
      let inner: Deno.UnixConn;
      try {
        inner = await openRelay(ip, port);
      } catch (e) {
        logLine(`cannot reach ${ip}:${port}: ${(e as Error).message}`);
        client.close();
        return;
      }
      await relayBoth(client as HalfCloseConn, inner as HalfCloseConn);
    })();
  }
}

/**
 * Runs the forwarder (`trun network-forwarder ID PLAN`): listens on every
 * published port, says ready on descriptor 3, relays until stopped (its
 * container's end) or until the container's directory is gone (an `rm`
 * that was killed before it stopped this process).
 */
export async function forwarderMain(id: string, planJson: string): Promise<number> {
  const plan = JSON.parse(planJson) as ForwarderPlan;
  const listeners: [Deno.TcpListener, number][] = [];
  const udp: [UdpSocket, number][] = [];
  try {
    for (const p of plan.ports) {
      if (p.protocol === "udp") udp.push([await bindUdp(p), p.containerPort]);
      else listeners.push([listenPort(p), p.containerPort]);
    }
  } catch (e) {
    logLine((e as Error).message);
    return 1;
  }
  writeFd(3, new Uint8Array([1]));
  closeFd(3);
  const dir = `${storeRoot()}/containers/${id}`;
  setInterval(() => {
    try {
      Deno.statSync(dir);
    } catch {
      Deno.exit(0);
    }
  }, 2000);
  for (const [sock, port] of udp) serveUdp(sock, plan.ip, port);
  await Promise.all(listeners.map(([l, port]) => serve(l, plan.ip, port)));
  // Only UDP ports: the sockets keep it running.
  await new Promise(() => {});
  return 0;
}
