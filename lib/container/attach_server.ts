/**
 * The attach side of trun's own monitor: the same `attach` socket and
 * `ctl` fifo conmon offers (see attach_protocol.ts), so `trun attach`,
 * `run` and `start -a` work the same with either monitor. Every client
 * gets the container's output; what clients send goes to the container's
 * stdin (when it has one open); a client's EOF closes that stdin unless it
 * stays open for later attaches (`run -d -i`).
 */
import {
  acceptConnection,
  listenSeqpacket,
  receivePacket,
  sendPacket,
  shutdownWrite,
} from "../../ffi/socket.ts";
import { closeFd, readSome, writeAll } from "../../ffi/child_program.ts";
import { makeFifo, openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { setWindowSize } from "../../ffi/pty.ts";
import {
  ATTACH_MESSAGE_MAX,
  encodeFrame,
  parseControlLine,
  type StreamName,
} from "./attach_protocol.ts";

/** The attach socket and control fifo of one container, for its monitor's lifetime. */
export class AttachServer {
  #clients = new Set<number>();
  #stdin: number | null = null;
  #stdinOnce = false;
  #terminal: number | null = null;

  /** Listens at `userdata/attach` and reads `userdata/ctl`; both live as long as the monitor. */
  constructor(userdata: string) {
    const sock = listenSeqpacket(userdata, "attach");
    const ctl = `${userdata}/ctl`;
    try {
      Deno.removeSync(ctl);
    } catch {
      // No old fifo.
    }
    makeFifo(ctl, 0o600);
    // Read and write: the fifo never reads EOF when a writer goes away.
    const ctlFd = openPath(ctl, O.RDWR | O.CLOEXEC, `opening "${ctl}"`);
    void this.#acceptLoop(sock);
    void this.#controlLoop(ctlFd);
  }

  /**
   * The container's new run: where stdin goes (a pipe's write end or the
   * pty master; null without `-i`), whether the first client's EOF closes
   * it, and the pty master to resize (null without `-t`).
   */
  attachRun(stdin: number | null, stdinOnce: boolean, terminal: number | null): void {
    this.#stdin = stdin;
    this.#stdinOnce = stdinOnce;
    this.#terminal = terminal;
  }

  /** Sends container output to every client; one that cannot take it is dropped. */
  async broadcast(stream: StreamName, data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length; off += ATTACH_MESSAGE_MAX - 1) {
      const frame = encodeFrame(stream, data.subarray(off, off + ATTACH_MESSAGE_MAX - 1));
      for (const c of [...this.#clients]) {
        if (!(await sendPacket(c, frame))) this.#drop(c);
      }
    }
  }

  /**
   * The run ended: its stdin is closed and every client reads EOF, after
   * all output (the exit file is written before this, as conmon does).
   */
  endRun(): void {
    this.#closeStdin();
    this.#terminal = null;
    for (const c of [...this.#clients]) this.#drop(c);
  }

  #drop(c: number): void {
    if (!this.#clients.delete(c)) return;
    shutdownWrite(c);
    closeFd(c);
  }

  #closeStdin(): void {
    // A pty master is closed by the relay that owns it; a pipe here.
    if (this.#stdin !== null && this.#stdin !== this.#terminal) closeFd(this.#stdin);
    this.#stdin = null;
  }

  async #acceptLoop(sock: number): Promise<void> {
    for (;;) {
      const c = await acceptConnection(sock);
      if (c < 0) continue;
      this.#clients.add(c);
      void this.#clientLoop(c);
    }
  }

  async #clientLoop(c: number): Promise<void> {
    for (;;) {
      const data = await receivePacket(c, 32768);
      if (data.length === 0) break;
      if (this.#stdin === null) continue;
      // A failed write: the container closed its stdin.
      if (!(await writeAll(this.#stdin, new Uint8Array(data)))) this.#closeStdin();
    }
    // The client is done sending: with run -i (stdin once), so is stdin.
    if (this.#stdinOnce) this.#closeStdin();
  }

  async #controlLoop(fd: number): Promise<void> {
    let pending = "";
    for (;;) {
      const chunk = await readSome(fd, 4096);
      if (chunk.length === 0) return;
      pending += new TextDecoder().decode(chunk);
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const msg = parseControlLine(line);
        if (msg?.kind === "resize" && this.#terminal !== null) {
          try {
            setWindowSize(this.#terminal, msg.rows, msg.columns);
          } catch {
            // The terminal is gone with its container.
          }
        }
      }
    }
  }
}
