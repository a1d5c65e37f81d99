/**
 * Runs a trun helper command inside a user namespace mapped like the
 * containers (0 → the user, 1.. → subordinate ids), so it can create files
 * owned by image ids (`_apt`, `www-data`…) that the user alone cannot:
 * unpacking layers, removing a container's files. Cloned through the same
 * stub as containers (a Deno process cannot unshare a user namespace).
 */
import {
  type ChildOp,
  cloexecPipe,
  closeFd,
  startChildProgram,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { CLONE } from "../../ffi/syscalls.ts";
import { type IdMapping, writeIdMaps } from "./idmap.ts";
import { selfCommand } from "./self_exec.ts";

/** Whether helpers need a user namespace: only rootless with a subordinate mapping. */
export function needsUsernsHelper(mapping: IdMapping): boolean {
  return mapping.mode === "subordinate";
}

/**
 * Runs `trun <args>` as root of a new user namespace with `mapping`; stdio is
 * inherited. Returns the helper's exit status (128 + signal when killed).
 */
export async function runTrunInUserns(args: string[], mapping: IdMapping): Promise<number> {
  const argv = selfCommand(args);
  const env = Object.entries(Deno.env.toObject()).map(([k, v]) => `${k}=${v}`);
  const [syncRead, syncWrite] = cloexecPipe();
  const ops: ChildOp[] = [
    { call: "read", args: [syncRead, { scratch: 8 }, 1], step: "waiting for the id maps" },
    { call: "close", args: [syncRead], step: "closing the sync pipe" },
    { call: "setresgid", args: [0, 0, 0], step: "becoming root in the user namespace (gid)" },
    { call: "setresuid", args: [0, 0, 0], step: "becoming root in the user namespace (uid)" },
    {
      call: "rt_sigprocmask",
      args: [2, { savedSignalMask: true }, 0, 8],
      step: "restoring the signal mask",
    },
    {
      call: "execve",
      args: [{ str: argv[0]! }, { strs: argv }, { strs: env }],
      step: `executing "${argv[0]}"`,
    },
  ];
  const child = startChildProgram(ops, { cloneFlags: CLONE.NEWUSER, errFd: -1 });
  closeFd(syncRead);
  try {
    await writeIdMaps(child.pid, mapping);
    writeFd(syncWrite, new Uint8Array([1]));
  } finally {
    closeFd(syncWrite);
  }
  const status = await waitChild(child.pid);
  child.release();
  return status.exited ? status.code : 128 + status.signal;
}
