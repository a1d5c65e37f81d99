/**
 * The real join program of `exec`, held right before its exec tail: the
 * latest point at which the process entering a container is still a copy
 * of trun. For tests that attack it from inside the container.
 */
import assert from "node:assert/strict";
import {
  cloexecPipe,
  closeFd,
  FORK_RECORD_MARK,
  readFd,
  startChildProgram,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { processConfig } from "../../lib/engine/config.ts";
import { namespacesToJoin } from "../../lib/engine/join.ts";
import { joinProgram } from "../../lib/engine/program.ts";

/** A join held before its exec tail. */
export interface HeldJoin {
  /** The joining process's host pid. */
  pid: number;
  /** Lets it go on to execve `sleep 30`. */
  release(): Promise<void>;
}

/**
 * Starts the real join program of `exec` into the container whose first
 * process is `pid` (its spec at `specPath`), stopped right before its exec
 * tail (a read of one byte on its stdin, a pipe).
 */
export async function holdJoin(pid: number, specPath: string): Promise<HeldJoin> {
  const spec = JSON.parse(await Deno.readTextFile(specPath));
  const proc = { ...processConfig(spec.process), args: ["sleep", "30"], terminal: false };
  let setgroups = true;
  try {
    setgroups = Deno.readTextFileSync(`/proc/${pid}/setgroups`).trim() !== "deny";
  } catch {
    // No user namespace of its own.
  }
  const [errRead, errWrite] = cloexecPipe();
  const [pauseRead, pauseWrite] = cloexecPipe();
  const namespaces = namespacesToJoin(pid).map((j) => ({
    type: j.type,
    fd: openPath(j.path, O.RDONLY | O.CLOEXEC, `opening ${j.path}`),
  }));
  const ops = joinProgram({
    process: proc,
    executables: ["/bin/sleep"],
    namespaces,
    errFd: errWrite,
    setgroups,
    stdinFd: pauseRead,
  });
  // The exec tail begins with the signal resets (or the close_range when
  // trun catches no signal): pause just before it.
  const tail = ops.findIndex((o) =>
    o.call === "rt_sigaction" || (o.call === "close_range" && o.args[2] !== 0)
  );
  assert.ok(tail > 0);
  ops.splice(tail, 0, {
    call: "read",
    args: [0, { scratch: 8 }, 1],
    step: "pausing before the exec tail (test)",
  });
  const child = startChildProgram(ops, { cloneFlags: 0, errFd: errWrite });
  for (const fd of [errWrite, pauseRead, ...namespaces.map((n) => n.fd)]) closeFd(fd);
  const first = await readFd(errRead, 16);
  await waitChild(child.pid);
  const view = new DataView(first.buffer, first.byteOffset, first.length);
  if (first.length !== 16 || view.getBigInt64(0, true) !== FORK_RECORD_MARK) {
    child.release();
    closeFd(errRead);
    closeFd(pauseWrite);
    const f = first.length === 16 ? child.decodeFailure(first) : null;
    throw new Error(`the join failed: ${f ? `${f.op.step}: errno ${f.errno}` : "no record"}`);
  }
  const joined = Number(view.getBigInt64(8, true));
  return {
    pid: joined,
    release: async () => {
      writeFd(pauseWrite, new Uint8Array([1]));
      closeFd(pauseWrite);
      const rest = await readFd(errRead, 16); // EOF: exec'd
      closeFd(errRead);
      child.release();
      assert.equal(rest.length, 0, "the paused join went on to execve");
    },
  };
}
