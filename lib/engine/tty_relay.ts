/**
 * Relays a container's pseudo-terminal (`run -t`): what the container
 * writes goes to trun's stdout; with `-i`, trun's stdin goes to the
 * container, with trun's own terminal in raw mode so keys (Ctrl-C
 * included) reach the container's line discipline untouched. The window
 * size follows trun's terminal (SIGWINCH).
 */
import { readSome, writeFd } from "../../ffi/child_program.ts";
import { setWindowSize } from "../../ffi/pty.ts";

/** A running relay. */
export interface TtyRelay {
  /** Resolves when the container's side is closed and all its output written. */
  output: Promise<void>;
  /** Stops relaying input and restores trun's terminal. */
  stop(): void;
}

/** The size of trun's terminal, or the classic 80x24 when it has none. */
export function terminalSize(): { rows: number; columns: number } {
  try {
    if (Deno.stdout.isTerminal()) {
      const size = Deno.consoleSize();
      // A terminal that reports 0x0 (script(1), some CI ptys) gets 80x24.
      if (size.rows > 0 && size.columns > 0) return size;
    }
  } catch {
    // Not a terminal after all.
  }
  return { rows: 24, columns: 80 };
}

function syncWindowSize(master: number): void {
  const { rows, columns } = terminalSize();
  setWindowSize(master, rows, columns);
}

/** Sets the pty's size from trun's terminal; call before the container starts. */
export function prepareTty(master: number): void {
  syncWindowSize(master);
}

/** Starts relaying between the pty master and trun's stdio. */
export function startTtyRelay(master: number, opts: { forwardStdin: boolean }): TtyRelay {
  const onResize = () => {
    try {
      syncWindowSize(master);
    } catch {
      // The container is gone.
    }
  };
  Deno.addSignalListener("SIGWINCH", onResize);
  const raw = opts.forwardStdin && Deno.stdin.isTerminal();
  if (raw) Deno.stdin.setRaw(true);
  let stopped = false;

  const output = (async () => {
    for (;;) {
      // EIO once every slave descriptor is closed: the container has ended.
      const chunk = await readSome(master, 65536);
      if (chunk.length === 0) return;
      for (let off = 0; off < chunk.length;) off += await Deno.stdout.write(chunk.subarray(off));
    }
  })();

  if (opts.forwardStdin) {
    void (async () => {
      const buf = new Uint8Array(4096);
      while (!stopped) {
        const n = await Deno.stdin.read(buf).catch(() => null);
        if (n === null || stopped) return;
        try {
          writeFd(master, buf.slice(0, n));
        } catch {
          return;
        }
      }
    })();
  }

  return {
    output,
    stop() {
      stopped = true;
      Deno.removeSignalListener("SIGWINCH", onResize);
      if (raw) Deno.stdin.setRaw(false);
    },
  };
}
