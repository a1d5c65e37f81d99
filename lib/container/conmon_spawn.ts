/**
 * Spawning conmon for a container, apart from the rest of lib/container/
 * conmon.ts: `run` starts conmon (and so its runtime, a Deno process)
 * first thing, and this module's few imports are all it waits for.
 */
import { cloexecPipe, closeFd, spawnProcess, writeFd } from "../../ffi/child_program.ts";
import { makeFifo, openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { CREATE_GATE_ENV, createGateValue } from "./create_gate.ts";
import { findExecutable } from "../runtime/idmap.ts";
import { selfCommand } from "../runtime/self_exec.ts";
import { exeSealSetup, type SealQuestion } from "../runtime/exe_seal.ts";
import { containerPaths } from "./container_paths.ts";
import { exitFilePath, exitsDir, logPath } from "./status.ts";

/** Where conmon may be: $PATH, then where distributions put it. */
const CONMON_DIRS = "/usr/libexec/podman:/usr/local/libexec/podman:/usr/lib/podman";

/** conmon's path, looked for in `path` and then where distributions put it; null when absent. */
export function findConmon(path: string): string | null {
  return findExecutable("conmon", `${path}:${CONMON_DIRS}`);
}

/** The conmon to use, or null for trun's own monitor. */
export function chosenConmon(env = Deno.env.toObject()): string | null {
  const choice = env.TRUN_MONITOR ?? "auto";
  if (choice === "trun") return null;
  const found = findConmon(env.PATH ?? "");
  if (choice === "conmon" && !found) {
    throw Object.assign(
      new Error("TRUN_MONITOR=conmon but conmon is not installed: install the conmon package"),
      { exitCode: 125 },
    );
  }
  return found;
}

/** The files of a container run by conmon, in its `userdata`. */
export interface ConmonPaths {
  /** `trun runtime --root`. */
  runtimeRoot: string;
  /**
   * The runtime's `--log` (its errors), beside the exit file: a container
   * that fails to start with `--rm` is removed by conmon's exit command
   * while trun still has to read why.
   */
  runtimeLog: string;
  /** The `trun-runc` conmon runs. */
  runtime: string;
  /** The container's pid (written by the runtime). */
  pidFile: string;
  /** conmon's pid. */
  conmonPidFile: string;
  /** conmon's `--exit-dir` (beside the containers' directories: see exitFilePath). */
  exitDir: string;
}

/** The files of a container run by conmon, in its directory. */
export function conmonPaths(dir: string): ConmonPaths {
  const userdata = containerPaths(dir).userdata;
  return {
    runtimeRoot: `${userdata}/runtime`,
    runtimeLog: `${exitFilePath(dir, dir.slice(dir.lastIndexOf("/") + 1))}.runtime.log`,
    runtime: `${userdata}/trun-runc`,
    pidFile: `${userdata}/pidfile`,
    conmonPidFile: `${userdata}/conmon.pid`,
    exitDir: exitsDir(dir),
  };
}

/**
 * The runtime conmon runs: a compiled trun through a link named
 * `trun-runc`, or a two-line script running main.ts's `runtime` command.
 */
function writeRuntime(path: string): void {
  const self = selfCommand(["runtime"]);
  try {
    Deno.removeSync(path);
  } catch {
    // Not there yet.
  }
  if (self.length === 2) {
    Deno.symlinkSync(self[0]!, path);
    return;
  }
  const quoted = self.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  Deno.writeTextFileSync(path, `#!/bin/sh\nexec ${quoted} "$@"\n`, { mode: 0o755 });
}

/** What conmon needs to know of a container before its record exists. */
export interface ConmonFacts {
  /** The container's id. */
  id: string;
  /** Its name, for conmon's own messages (the id until the record names it). */
  name: string;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
}

/** conmon running for a container, its runtime's create maybe waiting at a gate. */
export interface SpawnedConmon {
  readonly child: number;
  readonly syncRead: number;
  /** The write end of the create gate (lib/container/create_gate.ts), or -1. */
  gate: number;
  /** The gate's FIFO, removed with it. */
  gatePath?: string;
}

/**
 * Starts conmon for a new container before its record and bundle exist
 * (`run`): its runtime starts at once and waits at the create gate, so
 * that its start-up (a Deno process: about 120 ms) overlaps the record's
 * making. Finish with {@link finishEarlyConmon}, or give up with
 * {@link abandonEarlyConmon}.
 */
export function spawnEarlyConmon(
  conmon: string,
  facts: ConmonFacts,
  dir: string,
  seal: SealQuestion,
): SpawnedConmon {
  return spawnConmon(conmon, facts, dir, seal, true);
}

/** Tells an early conmon's runtime to go on (`1`) or give up (`0`). */
export function passGate(spawned: SpawnedConmon, byte: "0" | "1"): void {
  if (spawned.gate >= 0) writeFd(spawned.gate, new TextEncoder().encode(byte));
}

/** Closes and removes the create gate of `spawned`, once. */
export function closeGate(spawned: SpawnedConmon): void {
  if (spawned.gate < 0) return;
  closeFd(spawned.gate);
  spawned.gate = -1;
  try {
    if (spawned.gatePath !== undefined) Deno.removeSync(spawned.gatePath);
  } catch {
    // Gone with its container already.
  }
}

/**
 * Spawns conmon for container `facts.id` in `dir`, its runtime gated when
 * `gated` (lib/container/create_gate.ts).
 */
export function spawnConmon(
  conmon: string,
  facts: ConmonFacts,
  dir: string,
  seal: SealQuestion,
  gated: boolean,
): SpawnedConmon {
  const c = conmonPaths(dir);
  const p = containerPaths(dir);
  Deno.mkdirSync(c.exitDir, { recursive: true, mode: 0o700 });
  Deno.mkdirSync(p.userdata, { recursive: true, mode: 0o700 });
  writeRuntime(c.runtime);
  for (const f of [c.pidFile, c.conmonPidFile, c.runtimeLog, exitFilePath(dir, facts.id)]) {
    try {
      Deno.removeSync(f);
    } catch {
      // Not there: a first start.
    }
  }
  const cleanup = selfCommand(["container-cleanup", facts.id]);
  const args = [
    "--api-version",
    "1",
    "-c",
    facts.id,
    "-u",
    facts.id,
    "-r",
    c.runtime,
    "-b",
    p.userdata,
    "-p",
    c.pidFile,
    "-n",
    facts.name,
    "--exit-dir",
    c.exitDir,
    "--full-attach",
    "-l",
    `k8s-file:${logPath(dir)}`,
    "--log-level",
    "warning",
    "--conmon-pidfile",
    c.conmonPidFile,
    "--runtime-arg",
    "--root",
    "--runtime-arg",
    c.runtimeRoot,
    "--runtime-arg",
    "--log",
    "--runtime-arg",
    c.runtimeLog,
    "--exit-command",
    cleanup[0]!,
    ...cleanup.slice(1).flatMap((a) => ["--exit-command-arg", a]),
    // conmon's stdin modes, as Podman and CRI-O pick them: a terminal
    // takes input as it comes; -i a pipe, closed at the first client's EOF
    // unless it stays open for later attaches.
    ...(facts.tty
      ? ["-t"]
      : facts.stdin
      ? ["-i", ...(facts.stdinOnce ? [] : ["--leave-stdin-open"])]
      : []),
  ];
  // conmon hands its environment on to the exit command, which may start
  // this container again (a restart policy): the gate of the run that
  // first started it must not come along.
  const env = Object.entries(Deno.env.toObject()).filter(([k]) => k !== CREATE_GATE_ENV)
    .map(([k, v]) => `${k}=${v}`);
  let gate = -1;
  const gatePath = `${p.userdata}/create-gate`;
  if (gated) {
    makeFifo(gatePath, 0o600);
    // Read and write: opening never blocks, and the runtime sees the end
    // of the FIFO if this process dies before it says anything.
    gate = openPath(gatePath, O.RDWR | O.NONBLOCK | O.CLOEXEC, `opening "${gatePath}"`);
    env.push(`${CREATE_GATE_ENV}=${createGateValue(gatePath)}`);
  }
  // conmon forks itself away and reports on its sync pipe, as it does to
  // Podman: {"data": PID} once the runtime's create has run, or -1.
  const [syncRead, syncWrite] = cloexecPipe();
  try {
    const child = spawnProcess(
      conmon,
      ["conmon", ...args],
      [...env, "_OCI_SYNCPIPE=3"],
      undefined,
      syncWrite,
      // conmon runs trun's create, which clones the container's first
      // process: from a read-only view of trun's binary when needed.
      exeSealSetup(seal),
    );
    return { child, syncRead, gate, ...(gated ? { gatePath } : {}) };
  } catch (e) {
    closeFd(syncRead);
    if (gate >= 0) closeFd(gate);
    throw e;
  } finally {
    // Each end is closed exactly once: a number closed twice may by then
    // belong to something else (Deno's own signal pipe, once a listener
    // exists), which the second close would break.
    closeFd(syncWrite);
  }
}
