/**
 * Runs trun commands that create or delete files owned by image ids
 * (`_apt`, `www-data`…: pulling and unpacking layers, loading archives,
 * removing images) inside a user namespace mapped like the containers
 * (0 → the user, 1.. → subordinate ids), as rootless Podman does: the user
 * alone cannot own files as other ids. The helper is trun itself, cloned
 * through the same stub as containers (a Deno process cannot unshare a user
 * namespace) and told where the caller's store is, since inside it is uid 0.
 */
import {
  type ChildOp,
  cloexecPipe,
  closeFd,
  execTail,
  signalProcess,
  startChildProgram,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { CLONE, PR, SIGNALS } from "../../ffi/syscalls.ts";
import { configRoot, runtimeRoot, storeRoot } from "../paths.ts";
import { type IdMapping, loadIdMapping, writeIdMaps } from "./idmap.ts";
import { selfCommand } from "./self_exec.ts";

/** Set in the environment of a helper that already runs inside the user namespace. */
export const IN_USERNS_ENV = "TRUN_IN_USERNS";

/** Whether this process is a helper inside trun's user namespace. */
export function insideUsernsHelper(): boolean {
  return Deno.env.get(IN_USERNS_ENV) === "1";
}

/** Options of `runTrunInUserns`. */
export interface UsernsRunOptions {
  /** Send the helper's stdout to trun's stderr (a pull started by `run`). */
  stdoutToStderr?: boolean;
  /**
   * Give the helper a mount namespace of its own (owned by its user
   * namespace), where it may mount a stopped container's overlay
   * (`trun cp`, `trun export`).
   */
  mountNamespace?: boolean;
}

/**
 * Runs `trun <args>` as root of a new user namespace with `mapping`; stdin
 * and stderr are inherited. Returns the helper's exit status (128 + signal
 * when killed).
 */
export async function runTrunInUserns(
  args: string[],
  mapping: IdMapping,
  opts: UsernsRunOptions = {},
): Promise<number> {
  const argv = selfCommand(args);
  // Inside, the helper is uid 0: pin the caller's own paths, or it would
  // pick root's (/var/lib/trun).
  const env = {
    ...Deno.env.toObject(),
    TRUN_ROOT: storeRoot(),
    TRUN_RUNROOT: runtimeRoot(),
    TRUN_CONFIG_DIR: configRoot(),
    [IN_USERNS_ENV]: "1",
  };
  const [syncRead, syncWrite] = cloexecPipe();
  const ops: ChildOp[] = [
    // The helper dies with its caller (a killed `trun pull` must not leave
    // it printing to the terminal). A caller that died before the prctl
    // is caught by the check after the sync read: its pid is gone.
    {
      call: "prctl",
      args: [PR.SET_PDEATHSIG, SIGNALS.SIGKILL, 0, 0, 0],
      step: "setting the parent-death signal",
    },
    { call: "read", args: [syncRead, { scratch: 8 }, 1], step: "waiting for the id maps" },
    { call: "kill", args: [Deno.pid, 0], step: "checking that trun still runs" },
    { call: "close", args: [syncRead], step: "closing the sync pipe" },
    { call: "setresgid", args: [0, 0, 0], step: "becoming root in the user namespace (gid)" },
    { call: "setresuid", args: [0, 0, 0], step: "becoming root in the user namespace (uid)" },
    ...(opts.stdoutToStderr
      ? [{ call: "dup2" as const, args: [2, 1], step: "sending stdout to stderr" }]
      : []),
    ...execTail({
      paths: [argv[0]!],
      argv,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    }),
  ];
  const child = startChildProgram(ops, {
    cloneFlags: CLONE.NEWUSER | (opts.mountNamespace ? CLONE.NEWNS : 0),
    errFd: -1,
  });
  closeFd(syncRead);
  try {
    await writeIdMaps(child.pid, mapping);
    writeFd(syncWrite, new Uint8Array([1]));
  } catch (e) {
    signalProcess(child.pid, SIGNALS.SIGKILL);
    await waitChild(child.pid);
    child.release();
    throw e;
  } finally {
    closeFd(syncWrite);
  }
  // Ctrl-C reaches the helper through the terminal's process group; other
  // signals are passed on.
  const forward = () => signalProcess(child.pid, SIGNALS.SIGTERM);
  Deno.addSignalListener("SIGTERM", forward);
  try {
    const status = await waitChild(child.pid);
    return status.exited ? status.code : 128 + status.signal;
  } finally {
    Deno.removeSignalListener("SIGTERM", forward);
    child.release();
  }
}

/**
 * Runs `trun <args>` where it can own files as image ids: in a user
 * namespace helper when rootless with subordinate ids (and not already in
 * one), else as a plain child process. Returns the exit status.
 */
export async function runTrunForStorage(
  args: string[],
  opts: UsernsRunOptions = {},
): Promise<number> {
  const mapping = storageUsernsMapping();
  if (mapping) return await runTrunInUserns(args, mapping, opts);
  const [exe, ...rest] = selfCommand(args);
  const out = await new Deno.Command(exe!, {
    args: rest,
    stdin: "inherit",
    stdout: opts.stdoutToStderr ? "piped" : "inherit",
    stderr: "inherit",
  }).spawn();
  if (opts.stdoutToStderr) await out.stdout.pipeTo(Deno.stderr.writable, { preventClose: true });
  const st = await out.status;
  return st.signal ? 128 + (SIGNALS[st.signal] ?? 0) : st.code;
}

/**
 * Whether a command that writes the store must move into the user
 * namespace first: rootless, with subordinate ids, not already inside.
 * Returns the mapping to use, or null to run in this process.
 */
export function storageUsernsMapping(): IdMapping | null {
  if (Deno.uid() === 0 || insideUsernsHelper()) return null;
  const mapping = loadIdMapping();
  return mapping.mode === "subordinate" ? mapping : null;
}

/**
 * How unpacked files get their owners in this process: as in the image
 * (root, or inside the user namespace helper), or squashed to the caller
 * when rootless without subordinate ids.
 */
export function ownershipMode(): { squashOwnership?: { uid: number; gid: number } } {
  if (Deno.uid() === 0) return {};
  return { squashOwnership: { uid: Deno.uid()!, gid: Deno.gid()! } };
}
