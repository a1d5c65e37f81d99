// The create gate between `run` and the runtime conmon starts ahead of the
// record: go, give up, and a `run` that died.

import assert from "node:assert/strict";
import { createGateValue, waitAtCreateGate } from "../../lib/container/create_gate.ts";
import { makeFifo, openPath } from "../../ffi/fs.ts";
import { closeFd, writeFd } from "../../ffi/child_program.ts";
import { O } from "../../ffi/syscalls.ts";

async function withGate(fn: (path: string, fd: number) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "trun-gate-test-" });
  const path = `${dir}/create-gate`;
  makeFifo(path, 0o600);
  const fd = openPath(path, O.RDWR | O.NONBLOCK | O.CLOEXEC);
  try {
    await fn(path, fd);
  } finally {
    closeFd(fd);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("waitAtCreateGate() goes on at 1, also when it was written before the runtime opened the gate", async () => {
  await withGate(async (path, fd) => {
    writeFd(fd, new TextEncoder().encode("1"));
    await waitAtCreateGate(createGateValue(path));
  });
});

Deno.test("waitAtCreateGate() waits for the byte, and gives up at 0", async () => {
  await withGate(async (path, fd) => {
    let done = false;
    const waiting = waitAtCreateGate(createGateValue(path)).finally(() => done = true);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(done, false, "still waiting without a byte");
    writeFd(fd, new TextEncoder().encode("0"));
    await assert.rejects(waiting, /gave it up/);
  });
});

Deno.test("waitAtCreateGate() gives up when the run that holds the gate is gone", async () => {
  await withGate(async (path) => {
    // A process that has exited stands for a `run` that died.
    const child = new Deno.Command("true").spawn();
    const pid = child.pid;
    await child.status;
    await assert.rejects(
      waitAtCreateGate(`${path}:${pid}:12345`),
      /ended before it was recorded/,
    );
  });
});
