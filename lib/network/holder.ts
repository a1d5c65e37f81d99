/**
 * The shared network namespace of user-defined networks, as Podman's
 * rootless-netns: one long-lived process per user (`trun network-holder`)
 * that lives in a user namespace H (mapped as containers are: 0 → the
 * user, then the subordinate ids) and a network namespace R owned by H.
 * In R each network is a Linux bridge with the gateway's address. For each
 * container on a network the holder makes a network namespace in H (an
 * unshare(2) on its main thread, kept open as a descriptor), wires it — a
 * veth pair per network, one end on the bridge, the other in the
 * container's namespace with its address, MAC and default route — and
 * publishes it as `netns/<id>`, a symlink to `/proc/HOLDER/fd/N`. The
 * container's spec joins that namespace and, rootless, H (`userns`, a
 * symlink to `/proc/HOLDER/ns/user`): paths that stay valid in a spec
 * while the holder lives.
 *
 * Why the holder makes the namespace instead of wiring the one the engine
 * makes between create and start: a created container's first process is
 * not dumpable until its execve (it holds trun's memory while it joins
 * namespaces), so a rootless holder may not open its `/proc/PID/ns/net`;
 * the holder's own descriptors it may always publish. It also keeps a
 * container's address and interfaces across stop and start, and needs no
 * hook in the engine.
 *
 * As root there is no H: the holder has only R, and containers use the
 * host's ids.
 *
 * Files, in `<runtime root>/networks/`: `holder.json` (pid and start
 * time), `holder.sock` (requests, one JSON line each way), `userns`,
 * `netns/<id>`, `holder.log` (its stderr) and `locks/` (`start`
 * serialises starting it; `use` is held shared by each trun asking it for
 * a container, and exclusively by the holder when it decides it is idle).
 *
 * The holder keeps a container's namespace until `rm` tells it (or it
 * finds the container's directory gone: an `rm` killed half-way), and
 * exits when it keeps none and no trun holds `use`; the next trun that
 * needs it starts a new one. A holder killed with SIGKILL takes R and the
 * namespaces of stopped containers with it (running containers keep
 * theirs but lose their veths): the next trun finds its pid gone, removes
 * its files, starts a new holder in the user namespace of a running
 * container on a network, which takes over those namespaces by pid and
 * wires them again.
 */
import {
  type ChildOp,
  cloexecPipe,
  CLOSE_INHERITED,
  closeFd,
  detachedStdio,
  execTail,
  readFd,
  signalProcess,
  spawnProcess,
  startChildProgram,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { describeErrno, Errno } from "../../ffi/errno.ts";
import { openPath } from "../../ffi/fs.ts";
import {
  enterNetns,
  openNetlink,
  receiveNetlink,
  sendNetlink,
  unshareNetns,
} from "../../ffi/netlink.ts";
import { AT, CLONE, O, SIGNALS } from "../../ffi/syscalls.ts";
import { configRoot, runtimeRoot, storeRoot } from "../paths.ts";
import { ensureRuntimeRoot } from "../runtime/runtime_dir.ts";
import { findExecutable, loadIdMapping, writeIdMaps } from "../runtime/idmap.ts";
import { selfCommand } from "../runtime/self_exec.ts";
import { processStat } from "../engine/state.ts";
import { takeLease, tryLock, withLock } from "../store/lock.ts";
import * as nl from "./netlink.ts";
import { frameDatagram, orderedWriter, readDatagrams, relayBoth } from "./relay.ts";

/** `<runtime root>/networks`. */
export function holderDir(root: string = runtimeRoot()): string {
  return `${root}/networks`;
}

/** The path container `id` gives as its network namespace: a link the holder keeps current. */
export function holderNetnsPath(id: string, root: string = runtimeRoot()): string {
  return `${holderDir(root)}/netns/${id}`;
}

/** The path containers on a network give as their user namespace (rootless). */
export function holderUsernsPath(root: string = runtimeRoot()): string {
  return `${holderDir(root)}/userns`;
}

/** One interface to make for a container. */
export interface LinkPlan {
  /** The network's bridge in R. */
  bridge: string;
  /** The bridge's (gateway's) address. */
  gateway: number;
  /** The subnet's prefix length. */
  prefix: number;
  /** The veth end in R. */
  veth: string;
  /** The interface's name in the container. */
  ifname: string;
  /** Its address. */
  ip: number;
  /** Its MAC address. */
  mac: string;
  /** No default route (`--internal`). */
  internal: boolean;
}

/** A request to the holder. */
export type HolderRequest =
  /**
   * Makes (or finds) container `id`'s network namespace and wires it; `pid`
   * is its running process, whose namespace a new holder takes over.
   */
  | { op: "prepare"; id: string; pid?: number; links: LinkPlan[] }
  /** Deletes veths in R (`network disconnect`). */
  | { op: "detach"; veths: string[] }
  /** Forgets container `id`'s namespace (`rm`). */
  | { op: "release"; id: string }
  /** Deletes a bridge (`network rm`). */
  | { op: "remove-bridge"; bridge: string }
  /**
   * Connects to `ip:port` in R and, once answered, copies bytes between it
   * and this connection (a published port's forwarder, lib/network/forwarder.ts).
   */
  | { op: "connect"; ip: string; port: number; proto?: "tcp" | "udp" };

interface HolderFile {
  pid: number;
  startTime: string;
}

// ---------------------------------------------------------------------------
// The client side: finding or starting the holder, and talking to it.

/** The running holder's pid, or null (its files are removed when it is gone). */
export function runningHolder(root: string = runtimeRoot()): number | null {
  const dir = holderDir(root);
  let f: HolderFile;
  try {
    f = JSON.parse(Deno.readTextFileSync(`${dir}/holder.json`)) as HolderFile;
  } catch {
    return null;
  }
  const st = processStat(f.pid);
  if (st !== null && st.startTime === f.startTime && st.state !== "Z" && st.state !== "X") {
    return f.pid;
  }
  removeHolderFiles(dir);
  return null;
}

function removeHolderFiles(dir: string): void {
  stopPasta(dir);
  for (const f of ["holder.json", "holder.sock", "userns"]) {
    try {
      Deno.removeSync(`${dir}/${f}`);
    } catch {
      // Already gone.
    }
  }
}

/**
 * A hold on the holder while a container is being wired: the holder does
 * not exit while one is open. Close it once the container is wired (or
 * has failed).
 */
export interface HolderUse {
  /** The holder's pid. */
  pid: number;
  /** Whether this call started it (running containers must be wired again). */
  started: boolean;
  /** Releases the hold. */
  close(): void;
}

/**
 * Makes sure the holder runs and holds it in use. `joinUserns` is the user
 * namespace a new holder must join instead of making one (that of a
 * running container on a network, after the old holder was killed).
 */
export async function useHolder(joinUserns?: () => string | undefined): Promise<HolderUse> {
  const root = ensureRuntimeRoot();
  const dir = holderDir(root);
  Deno.mkdirSync(`${dir}/locks`, { recursive: true, mode: 0o700 });
  for (let attempt = 0;; attempt++) {
    const lease = takeLease(dir, "use");
    const pid = runningHolder(root);
    if (pid !== null) {
      // Its pasta was killed: the networks' way out comes back with a new one.
      if (holderPastaAlive(root) === false) {
        await withLock(dir, "start", async () => {
          if (holderPastaAlive(root) !== false) return;
          stopPasta(dir);
          await attachPasta(dir, pid);
        });
      }
      return { pid, started: false, close: () => lease.close() };
    }
    lease.close();
    if (attempt > 0) {
      throw new Error(
        `the network namespace holder did not stay up; see "${dir}/holder.log"`,
      );
    }
    const started = await withLock(dir, "start", async () => {
      if (runningHolder(root) !== null) return false;
      const pid = await startHolder(root, joinUserns?.());
      await attachPasta(dir, pid);
      return true;
    });
    if (started) {
      const lease2 = takeLease(dir, "use");
      const pid2 = runningHolder(root);
      if (pid2 !== null) return { pid: pid2, started: true, close: () => lease2.close() };
      lease2.close();
    }
  }
}

/** Set in the holder's environment when it owns a user namespace (rootless). */
const USERNS_ENV = "TRUN_HOLDER_USERNS";

/**
 * Starts `trun network-holder` in new namespaces (or in user namespace
 * `joinUserns` with a new network namespace), detached: a fork in the
 * child program leaves it an orphan, so no trun process must reap it.
 * Returns once it listens.
 */
async function startHolder(root: string, joinUserns: string | undefined): Promise<number> {
  const dir = holderDir(root);
  const rootless = (Deno.uid() ?? 0) !== 0;
  const mapping = rootless && joinUserns === undefined ? loadIdMapping() : undefined;
  if (mapping && mapping.mode === "host") {
    throw new Error("no user namespace mapping for the holder");
  }
  const argv = selfCommand(["network-holder"]);
  const env = {
    ...Deno.env.toObject(),
    TRUN_ROOT: storeRoot(),
    TRUN_RUNROOT: root,
    TRUN_CONFIG_DIR: configRoot(),
    ...(rootless ? { [USERNS_ENV]: "1" } : {}),
  };
  const [syncRead, syncWrite] = cloexecPipe();
  const [errRead, errWrite] = cloexecPipe();
  const [readyRead, readyWrite] = cloexecPipe();
  const ops: ChildOp[] = [];
  if (joinUserns !== undefined) {
    ops.push(
      {
        call: "openat",
        args: [AT.FDCWD, { str: joinUserns }, O.RDONLY | O.CLOEXEC],
        produces: "userns",
        step: `opening "${joinUserns}"`,
      },
      {
        call: "setns",
        args: [{ ref: "userns" }, CLONE.NEWUSER],
        step: "joining the user namespace",
      },
      { call: "unshare", args: [CLONE.NEWNET], step: "creating the network namespace" },
    );
  } else if (mapping) {
    ops.push(
      { call: "read", args: [syncRead, { scratch: 8 }, 1], step: "waiting for the id maps" },
    );
  }
  ops.push(
    { call: "close", args: [syncRead], step: "closing the sync pipe" },
    ...(rootless
      ? [
        { call: "setresgid" as const, args: [0, 0, 0], step: "becoming root (gid)" },
        { call: "setresuid" as const, args: [0, 0, 0], step: "becoming root (uid)" },
      ]
      : []),
    // The fork: its parent reports the holder's pid and exits, so the
    // holder is nobody's child but init's (or the subreaper's).
    {
      call: "clone",
      args: [SIGNALS.SIGCHLD, 0, 0, 0, 0],
      parentReportsAndExits: true,
      step: "detaching the holder (fork)",
    },
    ...detachedStdio(`${dir}/holder.log`, readyWrite),
    ...execTail({
      paths: [argv[0]!],
      argv,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      closeFds: false,
    }),
  );
  const flags = joinUserns !== undefined ? 0 : (mapping ? CLONE.NEWUSER : 0) | CLONE.NEWNET;
  const child = startChildProgram(ops, { cloneFlags: flags, errFd: errWrite });
  let holder = 0;
  closeFd(syncRead);
  closeFd(errWrite);
  closeFd(readyWrite);
  try {
    // Only a child with a new user namespace waits for its maps; the others
    // may have closed the pipe already.
    if (mapping) {
      await writeIdMaps(child.pid, mapping);
      writeFd(syncWrite, new Uint8Array([1]));
    }
    const record = await readFd(errRead, 16);
    const view = new DataView(record.buffer, record.byteOffset, record.length);
    if (record.length !== 16 || view.getBigInt64(0, true) !== -2n) {
      await waitChild(child.pid);
      const why = record.length === 16
        ? (() => {
          const f = child.decodeFailure(record);
          return `${f.op.step}: ${describeErrno(f.errno)}`;
        })()
        : "it exited at once";
      throw new Error(`cannot start the network namespace holder: ${why}`);
    }
    await waitChild(child.pid);
    holder = Number(view.getBigInt64(8, true));
    const ready = await readFd(readyRead, 1);
    if (ready.length !== 1) {
      throw new Error(
        `the network namespace holder failed to start; see "${dir}/holder.log"`,
      );
    }
  } finally {
    child.release();
    closeFd(errRead);
    closeFd(readyRead);
    closeFd(syncWrite);
  }
  return holder;
}

/**
 * Gives R a way out: pasta attached to the holder (`--config-net` copies
 * the host's address and default route into R; its gateway address leads
 * to the host's loopback, as with Podman's pasta). No published ports or
 * forwards into R (published ports go through lib/network/forwarder.ts).
 * pasta goes to the background with its pid in `pasta.pid`; it keeps R
 * open itself, so the holder stops it when it exits, and the next trun
 * stops that of a killed holder. As root, where the holder has no user
 * namespace of its own, pasta (which drops to nobody by default, who may
 * not open a root process's namespaces) gets R opened by trun as
 * descriptor 3 and stays root, as a private network's pasta does
 * (lib/container/network_helper.ts `pastaArgs`). Without pasta the
 * networks work among themselves only, and the holder's log says so.
 */
async function attachPasta(dir: string, holder: number): Promise<void> {
  const log = (text: string) =>
    Deno.writeTextFileSync(`${dir}/holder.log`, `trun: ${text}\n`, { append: true });
  const pasta = findExecutable("pasta", Deno.env.get("PATH") ?? "");
  if (pasta === null) {
    log("pasta not found (Debian package passt): user-defined networks have no way out");
    return;
  }
  const err = openPath(
    `${dir}/holder.log`,
    O.WRONLY | O.APPEND | O.CLOEXEC,
    "opening the holder's log",
  );
  const asRoot = (Deno.uid() ?? 0) === 0;
  const nsFd = asRoot
    ? openPath(
      `/proc/${holder}/ns/net`,
      O.RDONLY | O.CLOEXEC,
      "opening the shared network namespace",
    )
    : undefined;
  try {
    const argv = [
      "pasta",
      "--config-net",
      "--quiet",
      ...["-t", "none", "-u", "none", "-T", "none", "-U", "none"],
      ...["-P", `${dir}/pasta.pid`],
      ...(asRoot
        ? ["--runas", "0", "--netns", "/proc/self/fd/3", "--netns-only"]
        : [String(holder)]),
    ];
    const env = Object.entries(Deno.env.toObject()).map(([k, v]) => `${k}=${v}`);
    // The foreground pasta exits once its daemon runs.
    const st = await waitChild(
      spawnProcess(pasta, argv, env, err, nsFd, nsFd === undefined ? undefined : CLOSE_INHERITED),
    );
    if (!(st.exited && st.code === 0)) log("pasta failed (see above): no way out");
  } finally {
    if (nsFd !== undefined) closeFd(nsFd);
    closeFd(err);
  }
}

/**
 * Whether the running holder's pasta still runs: undefined when it has none
 * (pasta not installed, or its start failed), false when it died (the
 * networks lost their way out; the next `useHolder` attaches a new one).
 */
export function holderPastaAlive(root: string = runtimeRoot()): boolean | undefined {
  let pid = 0;
  try {
    pid = Number(Deno.readTextFileSync(`${holderDir(root)}/pasta.pid`).trim());
  } catch {
    return undefined;
  }
  // Killed, it may linger a moment as a zombie, which is dead all the same.
  const st = pid > 0 ? processStat(pid) : null;
  if (st === null || st.state === "Z" || st.state === "X") return false;
  try {
    return /^(pasta|passt)/.test(Deno.readTextFileSync(`/proc/${pid}/comm`).trim());
  } catch {
    return false;
  }
}

/** Stops the pasta of holder dir `dir` (its pid file names it), if it still runs. */
export function stopPasta(dir: string): void {
  let pid = 0;
  try {
    pid = Number(Deno.readTextFileSync(`${dir}/pasta.pid`).trim());
  } catch {
    return;
  }
  try {
    // Only a pasta: the pid may have been reused since.
    const comm = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
    if (pid > 0 && /^(pasta|passt)/.test(comm)) signalProcess(pid, SIGNALS.SIGTERM);
  } catch {
    // Gone already.
  }
  try {
    Deno.removeSync(`${dir}/pasta.pid`);
  } catch {
    // Gone already.
  }
}

/** Sends one request to the running holder; throws its error. */
export async function askHolder(req: HolderRequest, root: string = runtimeRoot()): Promise<void> {
  const path = `${holderDir(root)}/holder.sock`;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (e) {
    throw new Error(
      `cannot reach the network namespace holder at "${path}": ${(e as Error).message}`,
    );
  }
  try {
    await conn.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const line = await readLineFrom(conn);
    const answer = JSON.parse(line || '{"error":"no answer"}') as { error?: string };
    if (answer.error !== undefined) throw new Error(answer.error);
  } finally {
    conn.close();
  }
}

/** Reads one line of the holder's protocol (requests are answered before more is sent). */
export async function readLineFrom(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
    const nlAt = text.indexOf("\n");
    if (nlAt >= 0) return text.slice(0, nlAt);
  }
}

// ---------------------------------------------------------------------------
// The holder itself.

/** A route netlink socket with its request/answer loop. */
class Rtnl {
  #seq = 1;
  constructor(readonly fd: number) {}

  /** Sends a request built by `make` and waits for its acknowledgement; returns the errno. */
  request(make: (seq: number) => Uint8Array): number {
    const seq = this.#seq++;
    sendNetlink(this.fd, make(seq));
    for (;;) {
      for (const r of nl.parseReplies(receiveNetlink(this.fd))) {
        if (r.seq === seq && r.type === nl.RTM.NLMSG_ERROR) return nl.errorOf(r);
      }
    }
  }

  /** Like `request`, failing on any errno but those in `ok`. */
  must(make: (seq: number) => Uint8Array, what: string, ok: number[] = []): void {
    const errno = this.request(make);
    if (errno && !ok.includes(errno)) throw new Error(`${what}: ${describeErrno(errno)}`);
  }

  /** The interface named `name`, or null. */
  link(name: string): nl.LinkInfo | null {
    const seq = this.#seq++;
    sendNetlink(this.fd, nl.getLink(seq, name));
    for (;;) {
      for (const r of nl.parseReplies(receiveNetlink(this.fd))) {
        if (r.seq !== seq) continue;
        if (r.type === nl.RTM.NEWLINK) return nl.parseLink(r.body);
        if (r.type === nl.RTM.NLMSG_ERROR) {
          const errno = nl.errorOf(r);
          if (errno === Errno.ENODEV) return null;
          throw new Error(`looking up interface "${name}": ${describeErrno(errno)}`);
        }
      }
    }
  }

  /** Every interface. */
  links(): nl.LinkInfo[] {
    const seq = this.#seq++;
    sendNetlink(this.fd, nl.dumpLinks(seq));
    const out: nl.LinkInfo[] = [];
    for (;;) {
      for (const r of nl.parseReplies(receiveNetlink(this.fd))) {
        if (r.seq !== seq) continue;
        if (r.type === nl.RTM.NLMSG_DONE) return out;
        if (r.type === nl.RTM.NLMSG_ERROR) {
          throw new Error(`listing interfaces: ${describeErrno(nl.errorOf(r))}`);
        }
        if (r.type === nl.RTM.NEWLINK) out.push(nl.parseLink(r.body));
      }
    }
  }

  /** The index of interface `name`; throws when it does not exist. */
  index(name: string): number {
    const l = this.link(name);
    if (!l) throw new Error(`interface "${name}" does not exist`);
    return l.index;
  }
}

const { EEXIST, ENODEV } = Errno;

/** Makes the bridge of a network when R lacks it; returns its index. */
async function ensureBridge(r: Rtnl, l: LinkPlan, firewall: string | null): Promise<number> {
  const have = r.link(l.bridge);
  if (have) return have.index;
  // An internal network's packets are never forwarded, whatever routes a
  // container adds itself.
  if (l.internal && firewall !== null) {
    await iptables(firewall, ["-I", "FORWARD", "-i", l.bridge, "-j", "DROP"]);
    await iptables(firewall, ["-I", "FORWARD", "-o", l.bridge, "-j", "DROP"]);
  }
  // Frames between two ports of one bridge pass the FORWARD chain too when
  // the host has br_netfilter loaded (bridge-nf-call-iptables): they stay.
  if (firewall !== null) {
    await iptables(firewall, ["-I", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT"]);
  }
  r.must((s) => nl.newBridge(s, l.bridge), `creating bridge "${l.bridge}"`, [EEXIST]);
  const index = r.index(l.bridge);
  r.must(
    (s) => nl.newAddress(s, index, l.gateway, l.prefix),
    `adding the gateway address to "${l.bridge}"`,
    [EEXIST],
  );
  r.must((s) => nl.linkUp(s, index), `bringing "${l.bridge}" up`);
  return index;
}

/** The network namespaces the holder keeps, by container id. */
type Kept = Map<string, number>;

/**
 * The network namespace of container `id`: the one kept already, else that
 * of its running process `pid` (a holder started anew), else a new one made
 * on this thread (unshare(2) of a network namespace is allowed in a
 * threaded process; it changes this thread only, which goes home at once).
 * Published as `netns/<id>`, a symlink to the descriptor.
 */
function namespaceOf(kept: Kept, dir: string, home: number, id: string, pid?: number): number {
  let fd = kept.get(id);
  if (fd === undefined) {
    if (pid !== undefined) {
      fd = openPath(
        `/proc/${pid}/ns/net`,
        O.RDONLY | O.CLOEXEC,
        "opening the container's network namespace",
      );
    } else {
      unshareNetns("creating the container's network namespace");
      try {
        fd = openPath(
          "/proc/thread-self/ns/net",
          O.RDONLY | O.CLOEXEC,
          "opening the new network namespace",
        );
      } finally {
        enterNetns(home, "returning to the shared network namespace");
      }
    }
    kept.set(id, fd);
  }
  const link = `${dir}/netns/${id}`;
  const tmp = `${link}.${Deno.pid}`;
  try {
    Deno.removeSync(tmp);
  } catch {
    // None left.
  }
  Deno.symlinkSync(`/proc/${Deno.pid}/fd/${fd}`, tmp);
  Deno.renameSync(tmp, link);
  return fd;
}

/** Runs iptables (in R: a child starts in the namespace of the thread that spawns it). */
async function iptables(path: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(path, {
    args: ["-w", ...args],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`iptables ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * Lets the containers out through R's own way out (pasta, attached by the
 * trun that started the holder): forwarding on, from a bridge to anything
 * but a bridge and back, masqueraded as R's address; nothing between two
 * bridges, so a container reaches only the networks it is on. Returns the
 * iptables used, or null without it: then forwarding stays off (a new
 * namespace may inherit it from the host's, net.core.devconf_inherit_init_net)
 * and the networks have no way out, which the log says.
 */
async function setupForwarding(): Promise<string | null> {
  // This thread is in R, and /proc/sys/net is the namespace of the thread
  // that opens it.
  const forward = (on: boolean) =>
    Deno.writeTextFileSync("/proc/sys/net/ipv4/ip_forward", on ? "1\n" : "0\n");
  forward(false);
  const path = findExecutable("iptables", Deno.env.get("PATH") ?? "");
  if (path === null) {
    logLine("iptables not found (Debian package iptables): user-defined networks have no way out");
    return null;
  }
  try {
    await iptables(path, ["-P", "FORWARD", "DROP"]);
    await iptables(path, ["-A", "FORWARD", "-i", "trunbr+", "!", "-o", "trunbr+", "-j", "ACCEPT"]);
    await iptables(path, [
      "-A",
      "FORWARD",
      "-o",
      "trunbr+",
      "-m",
      "conntrack",
      "--ctstate",
      "RELATED,ESTABLISHED",
      "-j",
      "ACCEPT",
    ]);
    await iptables(path, [
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "!",
      "-o",
      "trunbr+",
      "-j",
      "MASQUERADE",
    ]);
  } catch (e) {
    logLine(`${(e as Error).message}: user-defined networks have no way out`);
    return null;
  }
  forward(true);
  return path;
}

/** One line on the holder's stderr (its log). */
function logLine(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`trun network-holder: ${text}\n`));
}

/** Connects to `ip:port` for a forwarder's connection `conn`, answers, and relays. */
async function relayTo(conn: Deno.UnixConn, ip: string, port: number): Promise<void> {
  let target: Deno.TcpConn;
  try {
    target = await Deno.connect({ hostname: ip, port });
  } catch (e) {
    try {
      await conn.write(
        new TextEncoder().encode(JSON.stringify({ error: (e as Error).message }) + "\n"),
      );
    } catch {
      // The forwarder went away.
    }
    conn.close();
    return;
  }
  try {
    await conn.write(new TextEncoder().encode(JSON.stringify({ ok: true }) + "\n"));
  } catch {
    conn.close();
    target.close();
    return;
  }
  await relayBoth(conn, target);
}

/**
 * For a forwarder's UDP client `conn`: a UDP socket in R connected to
 * `ip:port`; datagrams framed on `conn` go there, its answers come back
 * framed. Ends when the forwarder closes `conn` (the client idle).
 */
async function relayDatagramsTo(conn: Deno.UnixConn, ip: string, port: number): Promise<void> {
  const dgram = await import("node:dgram");
  const sock = dgram.createSocket(ip.includes(":") ? "udp6" : "udp4");
  const answer = (a: object) => conn.write(new TextEncoder().encode(JSON.stringify(a) + "\n"));
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.connect(port, ip, () => {
        sock.off("error", reject);
        resolve();
      });
    });
    await answer({ ok: true });
  } catch (e) {
    await answer({ error: (e as Error).message }).catch(() => {});
    sock.close();
    conn.close();
    return;
  }
  // A refused datagram (ICMP port unreachable) is the client's business.
  sock.on("error", () => {});
  const write = orderedWriter(conn);
  sock.on("message", (msg: Uint8Array) => write(frameDatagram(msg)));
  await readDatagrams(conn, (d) => sock.send(d));
  sock.close();
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/** Forgets container `id`'s namespace; with no process in it, it goes with its veths. */
function release(kept: Kept, dir: string, id: string): void {
  const fd = kept.get(id);
  if (fd !== undefined) closeFd(fd);
  kept.delete(id);
  try {
    Deno.removeSync(`${dir}/netns/${id}`);
  } catch {
    // Already gone.
  }
}

/** Wires the namespace `netns`: one veth per link, its address, MAC and routes. */
async function wire(
  r: Rtnl,
  home: number,
  netns: number,
  links: LinkPlan[],
  firewall: string | null,
): Promise<void> {
  let inside = -1;
  try {
    enterNetns(netns, "entering the container's network namespace");
    try {
      inside = openNetlink();
    } finally {
      enterNetns(home, "returning to the shared network namespace");
    }
    const c = new Rtnl(inside);
    c.must((s) => nl.linkUp(s, 1), "bringing the container's loopback up");
    for (const l of links) {
      if (c.link(l.ifname) !== null) continue;
      const master = await ensureBridge(r, l, firewall);
      // A veth of an earlier, failed attempt would make the name clash.
      r.request((s) => nl.deleteLink(s, l.veth));
      r.must(
        (s) =>
          nl.newVethPair(s, {
            name: l.veth,
            master,
            peerName: l.ifname,
            peerMac: l.mac,
            peerNetnsFd: netns,
          }),
        `creating the veth pair "${l.veth}"`,
      );
      r.must((s) => nl.linkUp(s, r.index(l.veth)), `bringing "${l.veth}" up`);
      const index = c.index(l.ifname);
      c.must((s) => nl.newAddress(s, index, l.ip, l.prefix), `adding the address of ${l.ifname}`, [
        EEXIST,
      ]);
      c.must((s) => nl.linkUp(s, index), `bringing ${l.ifname} up`);
      // The first network with a way out gives the default route.
      if (!l.internal) {
        c.must((s) => nl.newDefaultRoute(s, index, l.gateway), "adding the default route", [
          EEXIST,
        ]);
      }
    }
  } finally {
    if (inside >= 0) closeFd(inside);
  }
}

/** Runs the holder (`trun network-holder`, started by `useHolder`): serves requests until idle. */
export async function holderMain(): Promise<number> {
  const root = runtimeRoot();
  const dir = holderDir(root);
  const containers = `${storeRoot()}/containers`;
  const home = openPath(
    "/proc/thread-self/ns/net",
    O.RDONLY | O.CLOEXEC,
    "opening the shared network namespace",
  );
  const r = new Rtnl(openNetlink());
  r.must((s) => nl.linkUp(s, 1), "bringing the loopback up");
  const firewall = await setupForwarding();
  Deno.mkdirSync(`${dir}/netns`, { recursive: true, mode: 0o700 });
  // Links of a killed holder point at nothing: they go.
  for (const e of Deno.readDirSync(`${dir}/netns`)) Deno.removeSync(`${dir}/netns/${e.name}`);
  const sock = `${dir}/holder.sock`;
  try {
    Deno.removeSync(sock);
  } catch {
    // None left.
  }
  const listener = Deno.listen({ transport: "unix", path: sock });
  const st = processStat(Deno.pid);
  if (Deno.env.get(USERNS_ENV) === "1") {
    const tmp = `${dir}/userns.${Deno.pid}`;
    try {
      Deno.removeSync(tmp);
    } catch {
      // None left.
    }
    Deno.symlinkSync(`/proc/${Deno.pid}/ns/user`, tmp);
    Deno.renameSync(tmp, holderUsernsPath(root));
  }
  const tmp = `${dir}/holder.json.${Deno.pid}`;
  Deno.writeTextFileSync(tmp, JSON.stringify({ pid: Deno.pid, startTime: st?.startTime ?? "" }));
  Deno.renameSync(tmp, `${dir}/holder.json`);
  writeFd(3, new Uint8Array([1]));
  closeFd(3);

  const kept: Kept = new Map();
  let last = Date.now();
  const idle = setInterval(() => {
    // A container removed by a trun that was killed before it told us.
    for (const id of [...kept.keys()]) {
      try {
        Deno.statSync(`${containers}/${id}`);
      } catch {
        release(kept, dir, id);
      }
    }
    if (kept.size > 0 || Date.now() - last < 2000) return;
    const lock = tryLock(dir, "use");
    if (!lock) return;
    try {
      // Idle: the files go before the lock is released, so the next trun
      // starts a new holder rather than asking this one.
      removeHolderFiles(dir);
      clearInterval(idle);
      listener.close();
    } finally {
      lock.close();
    }
  }, 1000);
  for await (const conn of listener) {
    last = Date.now();
    let answer: { ok?: true; error?: string };
    try {
      const req = JSON.parse(await readLineFrom(conn)) as HolderRequest;
      if (req.op === "connect") {
        // Served beside the requests: it lasts as long as the connection.
        if (req.proto === "udp") relayDatagramsTo(conn as Deno.UnixConn, req.ip, req.port);
        else relayTo(conn as Deno.UnixConn, req.ip, req.port);
        continue;
      }
      if (req.op === "prepare") {
        const netns = namespaceOf(kept, dir, home, req.id, req.pid);
        await wire(r, home, netns, req.links, firewall);
      } else if (req.op === "detach") {
        for (const v of req.veths) r.must((s) => nl.deleteLink(s, v), `deleting "${v}"`, [ENODEV]);
      } else if (req.op === "release") {
        release(kept, dir, req.id);
      } else if (req.op === "remove-bridge") {
        r.must((s) => nl.deleteLink(s, req.bridge), `deleting "${req.bridge}"`, [ENODEV]);
      }
      answer = { ok: true };
    } catch (e) {
      answer = { error: (e as Error).message };
    }
    last = Date.now();
    try {
      await conn.write(new TextEncoder().encode(JSON.stringify(answer) + "\n"));
    } catch {
      // The asker went away.
    }
    conn.close();
  }
  return 0;
}
