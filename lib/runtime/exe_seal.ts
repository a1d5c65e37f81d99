/**
 * trun's binary out of a container's reach (CVE-2019-5736). A process that
 * enters a container (`exec`'s join, the container's first process) is a
 * clone of trun until its execve: its /proc/PID/exe is trun's binary (the
 * compiled trun, or `deno` under `deno run`). The program made it
 * non-dumpable, which leaves /proc/PID/exe to a container root that has
 * CAP_SYS_PTRACE in trun's own user namespace: real root without a user
 * namespace of the container's, with `--cap-add SYS_PTRACE` or
 * `--privileged`. Such a root could open the binary (O_PATH, or through
 * /proc/PID/map_files) and reopen it for writing once no trun runs it.
 *
 * The kernel checks a write against the mount a file was opened through,
 * and /proc/PID/exe is the file as execve opened it. So in that case trun
 * runs itself again from a read-only bind mount of its binary in a mount
 * namespace of its own (runc's read-only view, without a copy): every
 * clone then has its exe on that mount and a write fails with EROFS, also
 * through a descriptor kept after trun is gone. The namespace is a slave
 * of the host's, so mounts made on the host still reach trun and the
 * containers it starts, and nothing of trun's propagates back.
 *
 * Only where needed: a re-exec costs a second start of trun. `exec`,
 * `runtime create/run/exec` re-execute themselves in place; trun's own
 * monitor and conmon are started in the sealed namespace directly (no
 * re-exec: see `exeSealSetup`).
 */
import type { ChildOp } from "../../ffi/child_program.ts";
import { Errno } from "../../ffi/errno.ts";
import {
  execInPlace,
  mountSimple,
  unshareMountNamespace,
  writeAccessErrno,
} from "../../ffi/exec_in_place.ts";
import { CAPABILITIES, CLONE, MS } from "../../ffi/syscalls.ts";

/** Set in the environment of a trun that runs from its sealed binary (stops a second re-exec). */
export const EXE_SEALED_ENV = "TRUN_EXE_SEALED";

/** CAP_SYS_PTRACE's number. */
const CAP_SYS_PTRACE = CAPABILITIES.CAP_SYS_PTRACE!;

/** One mount(2) of the seal. */
export interface SealMount {
  /** Source, or null. */
  source: string | null;
  /** Target. */
  target: string;
  /** mount(2) flags. */
  flags: number;
  /** What it does, for messages. */
  step: string;
}

/**
 * The mounts that make `exe` read-only in a fresh copy of the mount
 * namespace: the copy becomes a slave of the host's (the bind mount stays
 * in it), then `exe` is bound onto itself and the bind remounted
 * read-only (a bind mount takes MS_RDONLY only on a remount).
 */
export function sealMounts(exe: string): SealMount[] {
  return [
    {
      source: null,
      target: "/",
      flags: MS.REC | MS.SLAVE,
      step: "making trun's mount namespace a slave of the host's",
    },
    { source: exe, target: exe, flags: MS.BIND, step: `binding "${exe}" onto itself` },
    {
      source: null,
      target: exe,
      flags: MS.REMOUNT | MS.BIND | MS.RDONLY,
      step: `making "${exe}" read-only`,
    },
  ];
}

/** What decides whether a process that enters a container needs the seal. */
export interface SealQuestion {
  /** Capability numbers of any bounding set in the container (its own, the exec'd process's). */
  bounding: readonly number[];
  /** The container has a user namespace of its own (its capabilities do not count in trun's). */
  ownUserNamespace: boolean;
}

/**
 * Whether this trun must run from a sealed binary before it puts a process
 * into a container: it is root in the initial user namespace, the
 * container's root may hold CAP_SYS_PTRACE there, and the binary is not
 * read-only already (sealed, or on a read-only filesystem).
 */
export function exeSealNeeded(q: SealQuestion): boolean {
  if (q.ownUserNamespace || !q.bounding.includes(CAP_SYS_PTRACE)) return false;
  if (Deno.uid() !== 0 || !inInitialUserNamespace()) return false;
  if (Deno.env.get(EXE_SEALED_ENV) === "1") return false;
  return writeAccessErrno(Deno.execPath()) !== Errno.EROFS;
}

/** Whether this process's user namespace is the initial one (the full identity map). */
function inInitialUserNamespace(): boolean {
  try {
    const map = Deno.readTextFileSync("/proc/self/uid_map").trim().split(/\s+/);
    return map.length === 3 && map[0] === "0" && map[1] === "0" && map[2] === "4294967295";
  } catch {
    return false;
  }
}

/** Whether process `pid` has a user namespace other than this process's. */
export function hasOwnUserNamespace(pid: number): boolean {
  try {
    return Deno.readLinkSync(`/proc/${pid}/ns/user`) !== Deno.readLinkSync("/proc/self/ns/user");
  } catch {
    return true; // gone: nothing to join
  }
}

/**
 * Runs this very command again, same pid, from a read-only bind mount of
 * trun's binary in a mount namespace of its own. Call it before any side
 * effect: the command starts over. Returns only by throwing.
 */
export function reexecSealed(): never {
  const exe = Deno.execPath();
  unshareMountNamespace("giving trun a mount namespace of its own");
  for (const m of sealMounts(exe)) mountSimple(m.source, m.target, null, m.flags, m.step);
  // The command line exactly as trun was started (argv[0] and deno's own
  // flags included); descriptors that are not close-on-exec stay open.
  const argv = Deno.readTextFileSync("/proc/self/cmdline").split("\0").slice(0, -1);
  const env = Object.entries({ ...Deno.env.toObject(), [EXE_SEALED_ENV]: "1" })
    .map(([k, v]) => `${k}=${v}`);
  execInPlace(exe, argv, env, `running trun again from its read-only binary "${exe}"`);
}

/**
 * The clone flags and first ops that start a program (trun's monitor,
 * conmon) in a sealed mount namespace, when `q` needs it; undefined
 * otherwise. A program started so, and all it starts, runs trun from the
 * read-only view without a re-exec.
 */
export function exeSealSetup(q: SealQuestion): { cloneFlags: number; ops: ChildOp[] } | undefined {
  if (!exeSealNeeded(q)) return undefined;
  return {
    cloneFlags: CLONE.NEWNS,
    ops: sealMounts(Deno.execPath()).map((m) => ({
      call: "mount" as const,
      args: [m.source === null ? 0 : { str: m.source }, { str: m.target }, 0, m.flags, 0],
      step: m.step,
    })),
  };
}

/** The question for capability names (`CAP_SYS_PTRACE`…), as a spec or `capabilityList` has them. */
export function sealQuestionOfNames(
  names: readonly string[],
  ownUserNamespace: boolean,
): SealQuestion {
  const bounding = names.map((n) => CAPABILITIES[n]).filter((n): n is number => n !== undefined);
  return { bounding, ownUserNamespace };
}

/** The question for an OCI runtime spec (config.json) as parsed JSON. */
export function sealQuestionOfSpec(spec: unknown): SealQuestion {
  const s = spec as {
    process?: { capabilities?: { bounding?: unknown } };
    linux?: { namespaces?: unknown };
  } | null;
  const bounding = s?.process?.capabilities?.bounding;
  const namespaces = s?.linux?.namespaces;
  return sealQuestionOfNames(
    Array.isArray(bounding) ? bounding.filter((n) => typeof n === "string") : [],
    Array.isArray(namespaces) &&
      namespaces.some((n) => (n as { type?: unknown } | null)?.type === "user"),
  );
}
