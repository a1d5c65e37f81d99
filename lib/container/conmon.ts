/**
 * Podman's monitor, conmon, beside trun's containers when it is installed:
 * it runs trun's runc-compatible runtime (`trun-runc`) to create the
 * container, holds its output in the same CRI log file trun's own monitor
 * writes, records the exit status in an exit file and then runs
 * `trun container-cleanup ID`. About 1 MB of memory where trun's own
 * monitor, a Deno process, takes about 30.
 *
 * `TRUN_MONITOR=trun|conmon` chooses; by default conmon when it is found.
 */
import { cloexecPipe, closeFd, spawnProcess, waitChild, writeFd } from "../../ffi/child_program.ts";
import { makeFifo, openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { CREATE_GATE_ENV, createGateValue } from "./create_gate.ts";
import { remove as runtimeRemove, start as runtimeStart } from "../engine/runtime.ts";
import { openStore, StoreGoneError } from "../store/mod.ts";
import { findExecutable } from "../runtime/idmap.ts";
import { selfCommand } from "../runtime/self_exec.ts";
import { exeSealSetup, type SealQuestion } from "../runtime/exe_seal.ts";
import type { ContainerRecord } from "../store/mod.ts";
import {
  type BeforeStart,
  containerPaths,
  type MonitorReport,
  readLine,
  specSealQuestion,
} from "./detached.ts";
import { exitFilePath, exitsDir, logPath, readExitFile, runningRecord } from "./status.ts";
import { restartDelay, shouldRestart } from "./restart.ts";
import {
  type NetworkHelper,
  startPortForwarder,
  stopNetworkHelper,
  takeAnnotatedHelper,
  withHelper,
} from "./network_helper.ts";

/** Where conmon may be: $PATH, then where distributions put it. */
const CONMON_DIRS = "/usr/libexec/podman:/usr/local/libexec/podman:/usr/lib/podman";

/** The conmon to use, or null for trun's own monitor. */
export function chosenConmon(env = Deno.env.toObject()): string | null {
  const choice = env.TRUN_MONITOR ?? "auto";
  if (choice === "trun") return null;
  const found = findExecutable("conmon", `${env.PATH ?? ""}:${CONMON_DIRS}`);
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

async function readPid(path: string): Promise<number> {
  for (let i = 0; i < 500; i++) {
    try {
      const n = Number(Deno.readTextFileSync(path).trim());
      if (n > 0) return n;
    } catch {
      // Not written yet.
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return 0;
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
 * Starts container `rec` (directory `dir`) under conmon: conmon runs
 * `trun-runc create`, then trun starts it as Podman does. Resolves to the
 * same report trun's own monitor gives.
 */
export async function startWithConmon(
  conmon: string,
  rec: ContainerRecord,
  dir: string,
  beforeStart?: BeforeStart,
): Promise<MonitorReport & { monitorPid?: number }> {
  const c = conmonPaths(dir);
  // A previous run whose cleanup never ran (conmon killed) left its state.
  await runtimeRemove(c.runtimeRoot, rec.id, true).catch(() => {});
  const forwarder = await prepareNetwork(rec, dir);
  const spawned = spawnConmon(conmon, factsOf(rec), dir, specSealQuestion(dir), false);
  return await awaitConmonCreate(spawned, rec, dir, forwarder, beforeStart);
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

/** Opens the gate for the recorded container and waits for its create, as startWithConmon does. */
export async function finishEarlyConmon(
  spawned: SpawnedConmon,
  rec: ContainerRecord,
  dir: string,
  beforeStart?: BeforeStart,
): Promise<MonitorReport & { monitorPid?: number }> {
  let forwarder;
  try {
    forwarder = await prepareNetwork(rec, dir);
  } catch (e) {
    await abandonEarlyConmon(spawned);
    throw e;
  }
  passGate(spawned, "1");
  return await awaitConmonCreate(spawned, rec, dir, forwarder, beforeStart);
}

/** Tells an early conmon's runtime to give up (the record could not be made), and waits for conmon. */
export async function abandonEarlyConmon(spawned: SpawnedConmon): Promise<void> {
  passGate(spawned, "0");
  try {
    await Promise.all([waitChild(spawned.child), readLine(spawned.syncRead)]);
  } finally {
    closeFd(spawned.syncRead);
    closeGate(spawned);
  }
}

// Says go or give up. The FIFO stays open here until conmon has reported
// (closeGate): a FIFO drops its bytes once no one has it open, and the
// runtime may not have opened it yet.
function passGate(spawned: SpawnedConmon, byte: "0" | "1"): void {
  if (spawned.gate >= 0) writeFd(spawned.gate, new TextEncoder().encode(byte));
}

function closeGate(spawned: SpawnedConmon): void {
  if (spawned.gate < 0) return;
  closeFd(spawned.gate);
  spawned.gate = -1;
  try {
    if (spawned.gatePath !== undefined) Deno.removeSync(spawned.gatePath);
  } catch {
    // Gone with its container already.
  }
}

function factsOf(rec: ContainerRecord): ConmonFacts {
  return {
    id: rec.id,
    name: rec.name,
    tty: rec.tty ?? false,
    stdin: rec.stdin ?? false,
    stdinOnce: rec.stdinOnce ?? false,
  };
}

// On user-defined networks the namespace the container joins is made and
// wired by the holder, and published ports listen, before the create runs.
async function prepareNetwork(
  rec: ContainerRecord,
  dir: string,
): Promise<NetworkHelper | undefined> {
  if (rec.network?.networks !== undefined) {
    await (await import("../network/endpoints.ts")).networkEndpoints(rec.id);
  }
  return await startPortForwarder(rec, `${containerPaths(dir).userdata}/network.log`);
}

function spawnConmon(
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

// Waits for conmon's report of the create, then starts the container.
async function awaitConmonCreate(
  spawned: SpawnedConmon,
  rec: ContainerRecord,
  dir: string,
  forwarder: NetworkHelper | undefined,
  beforeStart?: BeforeStart,
): Promise<MonitorReport & { monitorPid?: number }> {
  const c = conmonPaths(dir);
  const p = containerPaths(dir);
  let status;
  let created = 0;
  try {
    const [st, line] = await Promise.all([waitChild(spawned.child), readLine(spawned.syncRead)]);
    status = st;
    try {
      created = Number((JSON.parse(line) as { data?: number }).data ?? 0);
    } catch {
      // No report: conmon failed before the runtime ran.
    }
  } finally {
    closeFd(spawned.syncRead);
    closeGate(spawned);
  }
  const pid = created > 0 ? await readPid(c.pidFile) : 0;
  if (!(status.exited && status.code === 0) || pid === 0) {
    // The runtime's own error, from its --log, mapped to Docker's exit
    // codes the way Podman maps a runtime's message.
    let why = "";
    try {
      why = Deno.readTextFileSync(c.runtimeLog).trim().split("\n").at(-1) ?? "";
      Deno.removeSync(c.runtimeLog);
      why = why.replace(/^time="[^"]*" level=error msg=/, "");
      if (why.startsWith('"')) why = JSON.parse(why);
    } catch {
      // No log: conmon failed before the runtime ran.
    }
    stopNetworkHelper(rec.id, forwarder);
    const exitCode = /executable file not found|no such file or directory/.test(why)
      ? 127
      : /permission denied|operation not permitted/i.test(why)
      ? 126
      : 125;
    return {
      ok: false,
      error: why ||
        `the container could not be created under conmon (exit ${
          status.exited ? status.code : 128 + status.signal
        })`,
      exitCode,
    };
  }
  // The runtime's create started the network helper (NETWORK_ANNOTATION).
  const helper = takeAnnotatedHelper(p.userdata) ?? forwarder;
  // Recorded before the start: a container that exits at once is cleaned
  // up (its helper ended) by conmon's exit command, which reads the record.
  if (helper) recordHelper(rec.id, helper);
  await beforeStart?.();
  await runtimeStart(c.runtimeRoot, rec.id);
  await recordStart(rec.id, pid, await readPid(c.conmonPidFile), helper);
  return { ok: true, pid, monitorPid: await readPid(c.conmonPidFile) };
}

/** Counts one restart, unless the container was stopped, removed or started since it exited. */
function updateCountUnlessStopped(id: string): ContainerRecord | undefined {
  const store = openStore(undefined, { repair: false });
  try {
    const now = store.findRecord(id);
    if (!now || now.stoppedByUser || now.state !== "exited") return undefined;
    return store.updateRecord(id, (r) => ({ ...r, restartCount: (r.restartCount ?? 0) + 1 }));
  } finally {
    store.close();
  }
}

/** Records the network helper of the run about to start. */
function recordHelper(id: string, helper: NetworkHelper): void {
  const store = openStore(undefined, { repair: false });
  try {
    store.updateRecord(id, (r) => withHelper(r, helper));
  } finally {
    store.close();
  }
}

/** Records a start under conmon: the container's pid, conmon's, the time and the network helper. */
function recordStart(
  id: string,
  pid: number,
  conmonPid: number,
  helper: NetworkHelper | undefined,
): void {
  const store = openStore(undefined, { repair: false });
  try {
    store.updateRecord(id, (r) => withHelper(runningRecord(r, pid, "conmon", conmonPid), helper));
  } finally {
    store.close();
  }
}

/**
 * `trun container-cleanup ID`, conmon's exit command: records the exit
 * status from conmon's exit file, deletes the runtime's state, and with
 * `--rm` removes the container (through the storage user namespace).
 */
export async function cleanupAfterConmon(id: string): Promise<number> {
  let store;
  try {
    store = openStore(undefined, { repair: false, existing: true });
  } catch (e) {
    // The whole store was deleted meanwhile (a test's sandbox): nothing to record.
    if (e instanceof StoreGoneError) return 0;
    throw e;
  }
  let rec: ContainerRecord | undefined;
  let dir = "";
  try {
    rec = store.findRecord(id);
    if (!rec) return 0;
    dir = store.containerDir(rec.id);
    const c = conmonPaths(dir);
    // No exit file: conmon did not see the end.
    const code = readExitFile(exitFilePath(dir, rec.id));
    // The run's runtime state and helper go before the exit is recorded:
    // `wait` returns once it is, and a `start` right after must not find
    // this cleanup still removing things, which would then be its own.
    await runtimeRemove(c.runtimeRoot, rec.id, true).catch(() => {});
    stopNetworkHelper(rec.id, rec.network?.helper);
    rec = store.updateRecord(rec.id, (r) => ({
      ...r,
      state: r.state === "removing" ? "removing" : "exited",
      ...(code !== undefined && Number.isInteger(code) ? { exitCode: code } : {}),
      finishedAt: new Date().toISOString(),
    })) ?? rec;
  } finally {
    store.close();
  }
  if (
    rec &&
    shouldRestart(
      rec.restartPolicy,
      rec.exitCode ?? -1,
      rec.restartCount ?? 0,
      rec.stoppedByUser === true,
    )
  ) {
    // conmon's exit command is where a restart policy runs, as Podman's.
    await new Promise((r) => setTimeout(r, restartDelay(rec!.restartCount ?? 0)));
    // A `stop` (or `rm`) during the delay wins: read the record again.
    const again = updateCountUnlessStopped(rec.id);
    const conmon = chosenConmon() ??
      findExecutable("conmon", `${Deno.env.get("PATH") ?? ""}:${CONMON_DIRS}`);
    const { networkPeerBlocks } = await import("./network_peer.ts");
    if (again && conmon && networkPeerBlocks(again, dir) === undefined) {
      const report = await startWithConmon(conmon, again, dir);
      if (report.ok) return 0;
    }
  }
  if (rec?.autoRemove) {
    const { removeAtExit } = await import("./ops.ts");
    await removeAtExit(() => openStore(undefined, { repair: false }), rec.id);
  }
  return 0;
}
