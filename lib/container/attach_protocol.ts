/**
 * The attach protocol of a container's monitor, as conmon speaks it, so that
 * trun's attach works with either monitor: a SOCK_SEQPACKET socket
 * `userdata/attach` whose messages to the client are one stream byte and
 * the data, whose messages from the client are stdin bytes, and whose EOF
 * from the client closes the container's stdin (unless it stays open for
 * later attaches); a fifo `userdata/ctl` that takes `1 ROWS COLUMNS` lines
 * to resize the terminal.
 */

/** The stream byte at the start of every message to a client. */
export const ATTACH_STREAM = { stdin: 1, stdout: 2, stderr: 3 } as const;

/** The name of one of the three streams. */
export type StreamName = keyof typeof ATTACH_STREAM;

/** The largest message a monitor sends: a stream byte and 8192 bytes (conmon's buffer). */
export const ATTACH_MESSAGE_MAX = 8193;

/** conmon's control message types on the `ctl` fifo. */
const CTL_RESIZE = 1;
const CTL_REOPEN_LOGS = 2;

/** One message to a client: the stream byte, then the data. */
export function encodeFrame(stream: StreamName, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(data.length + 1);
  out[0] = ATTACH_STREAM[stream];
  out.set(data, 1);
  return out;
}

/** A client's view of one message: which stream, and the data (null for an unknown stream byte). */
export function decodeFrame(msg: Uint8Array): { stream: StreamName; data: Uint8Array } | null {
  const stream = msg[0] === 2 ? "stdout" : msg[0] === 3 ? "stderr" : msg[0] === 1 ? "stdin" : null;
  return stream ? { stream, data: msg.subarray(1) } : null;
}

/** The `ctl` line that resizes the container's terminal. */
export function resizeMessage(rows: number, columns: number): string {
  return `${CTL_RESIZE} ${rows} ${columns}\n`;
}

/** What a `ctl` line asks for. */
export type ControlMessage =
  | { kind: "resize"; rows: number; columns: number }
  | { kind: "reopen-logs" };

/** Parses one `ctl` line; null when it is not a message conmon would take. */
export function parseControlLine(line: string): ControlMessage | null {
  const m = line.trim().match(/^(\d+) (\d+) (\d+)$/);
  if (!m) return null;
  const [type, rows, columns] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (type === CTL_RESIZE) {
    return rows > 0 && columns > 0 ? { kind: "resize", rows, columns } : null;
  }
  return type === CTL_REOPEN_LOGS ? { kind: "reopen-logs" } : null;
}

/** Which streams an attach carries (`-a`, `--no-stdin`). */
export interface AttachStreams {
  /** The client's stdin goes to the container. */
  stdin: boolean;
  /** The container's stdout comes to the client. */
  stdout: boolean;
  /** The container's stderr comes to the client. */
  stderr: boolean;
}

/**
 * The streams of `run`/`start -a` from `-a` values (`stdin`, `stdout`,
 * `stderr`, any case) and `-i`: all output streams when `-a` is not given,
 * stdin only with `-i` (or `-a stdin`), as Docker's.
 */
export function attachStreams(list: readonly string[], interactive: boolean): AttachStreams {
  if (list.length === 0) return { stdin: interactive, stdout: true, stderr: true };
  const out = { stdin: false, stdout: false, stderr: false };
  for (const s of list) {
    const k = s.toLowerCase();
    if (k !== "stdin" && k !== "stdout" && k !== "stderr") {
      throw new Error(
        `invalid argument "${s}" for "-a, --attach": valid streams are STDIN, STDOUT and STDERR`,
      );
    }
    out[k] = true;
  }
  return out;
}
