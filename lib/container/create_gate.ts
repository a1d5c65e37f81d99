/**
 * The create gate: `run` starts conmon, and so `trun runtime create` (a
 * Deno process that needs about 120 ms to start), before the container's
 * record and bundle exist; the runtime waits at this gate, a FIFO, until
 * `run` has written them. One byte: `1` goes on, `0` gives up. A `run`
 * that dies first gives up too: the runtime watches its process.
 */
import { closeFd } from "../../ffi/child_program.ts";
import { openPath, readNow, waitReadable } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { isAlive, processStat } from "../engine/state.ts";

/** The environment variable naming the gate and the `run` behind it (`PATH:PID:STARTTIME`). */
export const CREATE_GATE_ENV = "TRUN_CREATE_GATE";

/** How often the waiting runtime looks whether its `run` still lives. */
const WATCH_MS = 100;

/** The value of {@link CREATE_GATE_ENV} for a gate at `path` kept by this process. */
export function createGateValue(path: string): string {
  return `${path}:${Deno.pid}:${processStat(Deno.pid)?.startTime ?? ""}`;
}

/** Waits at the gate `value` names; throws when the container was given up. */
export async function waitAtCreateGate(value: string): Promise<void> {
  const [startTime, pid, ...rest] = value.split(":").reverse();
  const path = rest.reverse().join(":");
  const run = { pid: Number(pid), startTime: startTime ?? "" };
  // Read and write: the open never blocks, and the byte `run` wrote stays in
  // the FIFO while this end is open, whenever `run` closes its own. Raw
  // calls, not Deno.open: the byte is often there already, and a sync read
  // takes it at once (Deno's async file read took ~25 ms to first answer).
  const fd = openPath(path, O.RDWR | O.NONBLOCK | O.CLOEXEC, `opening the create gate "${path}"`);
  try {
    for (;;) {
      const byte = readNow(fd, 1);
      if (byte !== null) {
        if (byte.length === 1 && byte[0] === 0x31) return;
        throw new Error("the trun run that started this container gave it up");
      }
      if (await waitReadable(fd, WATCH_MS)) continue;
      if (!isAlive(run)) {
        throw new Error("the trun run that started this container ended before it was recorded");
      }
    }
  } finally {
    closeFd(fd);
  }
}
