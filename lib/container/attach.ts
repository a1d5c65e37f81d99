/**
 * The client side of attaching to a container (`run`, `start -a`,
 * `attach`): it connects to the monitor's attach socket, puts the caller's
 * terminal in raw mode when the container has one (always restoring it),
 * passes stdin on until the detach keys, writes the container's stdout and
 * stderr to its own (two streams without `-t`), follows the window size,
 * and passes signals on (`--sig-proxy`, without `-t`).
 */
import { trace } from "../util/trace.ts";
import { closeFd, signalProcess, writeFd } from "../../ffi/child_program.ts";
import { openPath } from "../../ffi/fs.ts";
import { O, SIGNALS } from "../../ffi/syscalls.ts";
import { connectSeqpacket, receivePacket, sendPacket, shutdownWrite } from "../../ffi/socket.ts";
import {
  ATTACH_MESSAGE_MAX,
  type AttachStreams,
  decodeFrame,
  resizeMessage,
} from "./attach_protocol.ts";
import { DetachScanner } from "./detach_keys.ts";
import { terminalSize } from "../engine/tty_relay.ts";
import type { Store } from "../store/mod.ts";
import { containerStatus, exitFilePath, monitorAlive, readExitFile } from "./status.ts";
import { recordExit, removeAtExit } from "./ops.ts";

/** Connects to the attach socket in a container's `userdata`, with an error saying what to do. */
export function connectAttach(userdata: string, name: string): number {
  try {
    return connectSeqpacket(userdata, "attach");
  } catch (e) {
    throw Object.assign(
      new Error(
        `cannot attach to container ${name}: its monitor does not answer (${
          e instanceof Error ? e.message : e
        }); is it running?`,
      ),
      { exitCode: 125 },
    );
  }
}

/** What a relay does. */
export interface RelayOptions {
  /** The container's `userdata` (for the `ctl` fifo). */
  userdata: string;
  /** Which streams to carry. */
  streams: AttachStreams;
  /** The container has a terminal: raw mode here, window size followed. */
  tty: boolean;
  /** The detach sequence (empty: none). */
  detachKeys: Uint8Array;
  /** Pass SIGINT, SIGTERM and the like on to this process (the container's), without `-t`. */
  sigProxyPid?: number;
}

/** Signals `--sig-proxy` passes on, as Docker's CLI does for the common ones. */
const PROXIED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/** Asks the monitor to resize the container's terminal to ours (errors: the monitor is gone). */
function sendWindowSize(userdata: string): void {
  let fd = -1;
  try {
    fd = openPath(`${userdata}/ctl`, O.WRONLY | O.NONBLOCK | O.CLOEXEC);
    const { rows, columns } = terminalSize();
    const msg = new TextEncoder().encode(resizeMessage(rows, columns));
    writeFd(fd, msg);
  } catch {
    // No monitor reading: nothing to resize.
  } finally {
    if (fd >= 0) closeFd(fd);
  }
}

async function writeAllTo(
  w: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
) {
  for (let off = 0; off < data.length;) off += await w.write(data.subarray(off));
}

/**
 * Relays between the caller's stdio and connection `conn` until the
 * container's output ends (it exited: `detached` false) or the detach keys
 * are typed (`detached` true). Closes `conn`.
 */
export async function relayAttach(
  conn: number,
  opts: RelayOptions,
): Promise<{ detached: boolean }> {
  const raw = opts.tty && opts.streams.stdin && Deno.stdin.isTerminal();
  const listeners: [Deno.Signal, () => void][] = [];
  const listen = (sig: Deno.Signal, fn: () => void) => {
    Deno.addSignalListener(sig, fn);
    listeners.push([sig, fn]);
  };
  let resolveDetach: (v: { detached: boolean }) => void = () => {};
  const detach = new Promise<{ detached: boolean }>((r) => (resolveDetach = r));
  if (raw) {
    Deno.stdin.setRaw(true);
    // A signal that ends trun must not leave the terminal raw.
    for (const sig of ["SIGTERM", "SIGHUP"] as const) {
      listen(sig, () => {
        Deno.stdin.setRaw(false);
        Deno.exit(128 + SIGNALS[sig]);
      });
    }
  }
  try {
    if (opts.tty) {
      sendWindowSize(opts.userdata);
      listen("SIGWINCH", () => sendWindowSize(opts.userdata));
    } else if (opts.sigProxyPid !== undefined) {
      const pid = opts.sigProxyPid;
      for (const sig of PROXIED) listen(sig, () => signalProcess(pid, SIGNALS[sig]));
    }
    const output = (async () => {
      for (;;) {
        const msg = await receivePacket(conn, ATTACH_MESSAGE_MAX);
        if (msg.length === 0) return { detached: false };
        const f = decodeFrame(msg);
        if (f?.stream === "stdout" && opts.streams.stdout) await writeAllTo(Deno.stdout, f.data);
        if (f?.stream === "stderr" && opts.streams.stderr) await writeAllTo(Deno.stderr, f.data);
      }
    })();
    if (opts.streams.stdin) {
      void pumpStdin(conn, opts.detachKeys, () => resolveDetach({ detached: true }));
    }
    return await Promise.race([output, detach]);
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
    if (raw) Deno.stdin.setRaw(false);
    closeFd(conn);
  }
}

/** Sends the caller's stdin to the container until EOF (then shuts down the sending side) or the detach keys. */
async function pumpStdin(conn: number, keys: Uint8Array, onDetach: () => void): Promise<void> {
  const scanner = new DetachScanner(keys);
  const buf = new Uint8Array(8192);
  for (;;) {
    const n = await Deno.stdin.read(buf).catch(() => null);
    if (n === null) {
      // EOF: with `run -i` the monitor closes the container's stdin.
      shutdownWrite(conn);
      return;
    }
    const { forward, detached } = scanner.feed(buf.subarray(0, n));
    if (forward.length > 0 && !(await sendPacket(conn, new Uint8Array(forward)))) return;
    if (detached) {
      onDetach();
      return;
    }
  }
}

/** How an attach ended. */
export type AttachEnd = { detached: true } | { detached: false; exitCode: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The exit status of run `pid` of container `id` (directory `dir`) once
 * its output has ended: the monitor's exit file, written before attach
 * clients are let go (recorded in the store here if the monitor has not
 * yet, as Podman's client does, unless `record` is false); else, with the
 * monitor gone without writing one, what the store knows (-1: unknown, as
 * `wait` says).
 */
export async function exitStatusAfterAttach(
  open: () => Store,
  id: string,
  dir: string,
  pid: number,
  record = true,
): Promise<number> {
  const file = exitFilePath(dir, id);
  for (let i = 0;; i++) {
    const code = readExitFile(file);
    if (code !== undefined && !record) return code;
    if (code !== undefined || i % 25 === 24) {
      const store = open();
      try {
        if (code !== undefined) {
          recordExit(store, id, pid, code);
          return code;
        }
        const rec = store.findRecord(id);
        if (!rec) return readExitFile(file) ?? -1;
        if (containerStatus(rec) !== "running" && !monitorAlive(rec)) {
          return readExitFile(file) ?? rec.exitCode ?? -1;
        }
      } finally {
        store.close();
      }
    }
    await sleep(10);
  }
}

/** The container an attach is for. */
export interface AttachTarget {
  /** Its id. */
  id: string;
  /** Its directory. */
  dir: string;
  /** The pid of the run attached to. */
  pid: number;
  /** `--rm`: removed once it has exited. */
  autoRemove: boolean;
}

/**
 * Relays connection `conn` to container `t` until it exits or the user
 * detaches; returns how it ended, with the exit status. An exited `--rm`
 * container is removed before this returns, as `docker run --rm` does.
 */
export async function attachAndWait(
  open: () => Store,
  t: AttachTarget,
  conn: number,
  opts: RelayOptions,
): Promise<AttachEnd> {
  const { detached } = await relayAttach(conn, opts);
  trace("output ended");
  if (detached) return { detached: true };
  // An `--rm` container's record goes next: its exit is not written first
  // (a commit, about 7 ms of fsync, on the way to the prompt). Should the
  // removal fail, the monitor records the exit, as it always does.
  const exitCode = await exitStatusAfterAttach(open, t.id, t.dir, t.pid, !t.autoRemove);
  trace("exit status read");
  if (t.autoRemove) await removeAtExit(open, t.id);
  trace("removed");
  return { detached: false, exitCode };
}
