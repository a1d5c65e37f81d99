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
import { trace } from "../util/trace.ts";
import { closeFd, waitChild } from "../../ffi/child_program.ts";
import {
  chosenConmon,
  closeGate,
  type ConmonFacts,
  conmonPaths,
  findConmon,
  passGate,
  spawnConmon,
  type SpawnedConmon,
} from "./conmon_spawn.ts";
export {
  chosenConmon,
  type ConmonFacts,
  type ConmonPaths,
  conmonPaths,
  spawnEarlyConmon,
  type SpawnedConmon,
} from "./conmon_spawn.ts";
import { remove as runtimeRemove, start as runtimeStart } from "../engine/runtime.ts";
import { openStore, StoreGoneError } from "../store/mod.ts";
import type { ContainerRecord } from "../store/mod.ts";
import {
  type BeforeStart,
  containerPaths,
  type MonitorReport,
  readLine,
  specSealQuestion,
} from "./detached.ts";
import { exitFilePath, readExitFile, runningRecord } from "./status.ts";
import { restartDelay, shouldRestart } from "./restart.ts";
import {
  type NetworkHelper,
  startPortForwarder,
  stopNetworkHelper,
  takeAnnotatedHelper,
  withHelper,
} from "./network_helper.ts";

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
  trace("create gate opened");
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
  trace("conmon reported create");
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
  trace("helper recorded");
  await beforeStart?.();
  trace("attached");
  await runtimeStart(c.runtimeRoot, rec.id);
  trace("started");
  await recordStart(rec.id, pid, await readPid(c.conmonPidFile), helper);
  trace("start recorded");
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
    const conmon = chosenConmon() ?? findConmon(Deno.env.get("PATH") ?? "");
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
