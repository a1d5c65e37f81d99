/**
 * The create gate: `run` starts conmon, and so `trun runtime create` (a
 * Deno process that needs about 120 ms to start), before the container's
 * record and bundle exist; the runtime waits at this gate, a FIFO, until
 * `run` has written them. One byte: `1` goes on, `0` gives up. A `run`
 * that dies first gives up too: the runtime watches its process.
 */
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
  // the FIFO while this end is open, whenever `run` closes its own.
  using gate = await Deno.open(path, { read: true, write: true });
  const byte = new Uint8Array(1);
  const read = gate.read(byte);
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      read,
      new Promise<"watch">((r) => timer = setTimeout(() => r("watch"), WATCH_MS)),
    ]);
    clearTimeout(timer);
    if (n !== "watch") {
      if (n === 1 && byte[0] === 0x31) return;
      throw new Error("the trun run that started this container gave it up");
    }
    if (!isAlive(run)) {
      throw new Error("the trun run that started this container ended before it was recorded");
    }
  }
}
