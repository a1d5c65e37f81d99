/**
 * trun's own monitor: the process that stays beside a detached container
 * (Podman's conmon does the same job). It starts the container through the
 * engine, reports to `run -d` (descriptor 3), writes the container's
 * output to its log file in the CRI format, records the start, the exit
 * status and time in the store (and in the exit file, as conmon does),
 * offers the attach socket (attach_server.ts), and removes the container
 * at exit with `--rm`. It holds no terminal of its own: it runs in a
 * session of its own.
 *
 * Descriptor 3 is a socket to whoever started it. With `--wait-record` it
 * starts before the record is made and waits for `record`. With `--wait-attach`
 * (`run` in the foreground, `start -a`) the monitor first says
 * `{"listening":true}` once the attach socket is there, and starts the
 * container only when told `go` (or when the starter went away), so that
 * no output is lost before the client is attached.
 */
import { cloexecPipe, closeFd, readSome, waitChild, writeFd } from "../../ffi/child_program.ts";
import { sessionKeyringName } from "../engine/program.ts";
import { AttachServer } from "./attach_server.ts";
import { openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { containerConfig } from "../engine/config.ts";
import { ContainerStartError, exitCodeOf, launch, type StartTimings } from "../engine/executor.ts";
import { type ContainerRecord, openStore, type Store, StoreGoneError } from "../store/mod.ts";
import type { MonitorReport, RootfsLayout } from "./detached.ts";
import { containerPaths } from "./container_paths.ts";
import { readLine } from "./monitor_spawn.ts";
import { fileSink, LogWriter } from "./log_file.ts";
import { exitFilePath, exitsDir, logPath, runningRecord } from "./status.ts";
import { restartDelay, shouldRestart } from "./restart.ts";
import {
  helperKind,
  type NetworkHelper,
  startNetworkHelper,
  startPortForwarder,
  stopNetworkHelper,
  withHelper,
} from "./network_helper.ts";

/**
 * Runs the monitor of container `id`; `readyFd` receives one JSON report
 * (after the attach handshake with `waitAttach`). Returns the exit status
 * to exit with.
 */
export async function runMonitor(
  id: string,
  readyFd: number,
  opts: { waitRecord?: boolean; waitAttach?: boolean } = {},
): Promise<number> {
  // Started before the record was made: wait until it is (or was not).
  if (opts.waitRecord && !(await readLine(readyFd))) return 0;
  let reported = false;
  const report = (r: MonitorReport) => {
    if (reported) return;
    reported = true;
    try {
      writeFd(readyFd, new TextEncoder().encode(JSON.stringify(r) + "\n"));
    } catch {
      // run -d went away: nobody to tell.
    }
    closeFd(readyFd);
  };
  const store = openStore(undefined, { repair: false });
  const rec = store.findRecord(id);
  const dir = rec ? store.containerDir(rec.id) : "";
  store.close();
  if (!rec) {
    report({ ok: false, error: `No such container: ${id}`, exitCode: 125 });
    return 125;
  }
  const log = await Deno.open(logPath(dir), { create: true, append: true, mode: 0o600 });
  const writer = new LogWriter(fileSink(log));
  Deno.mkdirSync(exitsDir(dir), { recursive: true, mode: 0o700 });
  let server: AttachServer;
  try {
    server = new AttachServer(containerPaths(dir).userdata);
  } catch (e) {
    report({ ok: false, error: `the attach socket: ${(e as Error).message}`, exitCode: 125 });
    return 125;
  }
  if (opts.waitAttach) await handshake(readyFd);
  try {
    for (let n = 0;; n++) {
      const run = await runOnce(rec, dir, writer, server, report);
      const after = update(rec.id, (r) => ({
        ...r,
        state: r.state === "removing" ? "removing" : "exited",
        exitCode: r.exitCode ?? run.code,
        finishedAt: r.finishedAt ?? new Date().toISOString(),
      }));
      // A container that could not start is not restarted (Docker's rule).
      if (!run.started || !after) break;
      if (
        !shouldRestart(
          after.restartPolicy,
          run.code,
          after.restartCount ?? 0,
          after.stoppedByUser === true,
        )
      ) {
        break;
      }
      await new Promise((r) => setTimeout(r, restartDelay(n)));
      // A `stop` or `rm` during the delay wins.
      const now = current(rec.id);
      if (!now || now.stoppedByUser || now.state !== "exited") break;
      // The network joined may have moved to another process, or be gone.
      const { networkPeerBlocks } = await import("./network_peer.ts");
      const blocked = networkPeerBlocks(rec, dir);
      if (blocked !== undefined) {
        update(rec.id, (r) => ({ ...r, error: blocked }));
        break;
      }
      update(rec.id, (r) => ({ ...r, restartCount: (r.restartCount ?? 0) + 1 }));
    }
  } finally {
    writer.close();
    log.close();
  }
  const finished = update(rec.id, (r) => r);
  if (finished?.autoRemove) {
    // Loaded only here: removal pulls in half of trun, which the
    // monitor's start (on every `run`'s path) need not wait for.
    const { removeAtExit } = await import("./ops.ts");
    await removeAtExit(() => openStore(undefined, { repair: false }), rec.id);
  }
  return 0;
}

/** Says the attach socket is listening, then waits for `go` (or the starter's end). */
async function handshake(fd: number): Promise<void> {
  try {
    writeFd(fd, new TextEncoder().encode(JSON.stringify({ listening: true }) + "\n"));
  } catch {
    return;
  }
  await readLine(fd);
}

/**
 * Starts the container once and waits for it; records the start, reports
 * the first start to `run -d`. Returns its exit status and whether it
 * started at all. The exit file is written before attach clients are let
 * go, so they find the status once their connection ends.
 */
async function runOnce(
  rec: ContainerRecord,
  dir: string,
  writer: LogWriter,
  server: AttachServer,
  report: (r: MonitorReport) => void,
): Promise<{ code: number; started: boolean }> {
  const id = rec.id;
  const p = containerPaths(dir);
  const exitFile = exitFilePath(dir, id);
  try {
    Deno.removeSync(exitFile);
  } catch {
    // No previous run's status.
  }
  const finish = (code: number) => {
    Deno.writeTextFileSync(exitFile, `${code}`);
    server.endRun();
  };
  try {
    const spec = JSON.parse(Deno.readTextFileSync(p.spec));
    const layout = JSON.parse(Deno.readTextFileSync(p.rootfs)) as RootfsLayout;
    const config = containerConfig(spec, p.userdata);
    const [outRead, outWrite] = cloexecPipe();
    const [errRead, errWrite] = cloexecPipe();
    // -i without -t: a pipe the attach clients write to.
    const stdinPipe = rec.stdin && !config.process.terminal ? cloexecPipe() : undefined;
    const nul = stdinPipe
      ? stdinPipe[0]
      : openPath("/dev/null", O.RDONLY | O.CLOEXEC, `opening "/dev/null"`);
    // With -t the container's terminal comes over a socket pair; its
    // output is the log's stdout (a terminal has one stream).
    const tty = config.process.terminal ? await import("../../ffi/socket.ts") : undefined;
    const pair = tty?.socketPair();
    const master = pair ? tty!.receiveFd(pair[0]) : undefined;
    let launched;
    let timings: StartTimings | undefined;
    // On user-defined networks: the namespace the container joins is made
    // and wired by the holder first.
    if (rec.network?.networks !== undefined) {
      await (await import("../network/endpoints.ts")).networkEndpoints(id);
    }
    let helper: NetworkHelper | undefined;
    try {
      // Its published ports there: the forwarder listens before it starts.
      helper = await startPortForwarder(rec, `${p.userdata}/network.log`);
      launched = await launch({
        ...(pair ? { consoleSocket: pair[1] } : {}),
        config,
        rootfs: {
          kind: "layered",
          lowers: layout.lowers,
          upper: p.upper,
          work: p.work,
          lowerdirAppend: layout.lowerdirAppend,
        },
        stdinNull: !stdinPipe,
        // The container outlives a killed monitor; `ps` then still tells
        // the truth from its pid and start time.
        dieWithParent: false,
        onStarted: (t) => (timings = t),
        // The network helper attaches to the namespaces once they exist,
        // before the container runs anything of its own.
        ...(helperKind(rec.network)
          ? {
            beforeMounts: async (pid: number) => {
              helper = await startNetworkHelper(
                rec.id,
                rec.network,
                pid,
                `${p.userdata}/network.log`,
              );
            },
          }
          : {}),
        sessionKeyring: sessionKeyringName(id),
        stdio: [nul, outWrite, errWrite],
        // Its own cgroup, entered before it runs anything of its own.
        ...(config.cgroupsPath ? { cgroupName: id } : {}),
      });
      // What could not be applied was told to the user by `run` already;
      // the details go to this monitor's log.
      for (const w of launched.placement.warnings) {
        Deno.stderr.writeSync(new TextEncoder().encode(`trun: warning: ${w}\n`));
      }
    } catch (e) {
      stopNetworkHelper(id, helper);
      throw e;
    } finally {
      closeFd(outWrite);
      closeFd(errWrite);
      closeFd(nul);
      if (pair) closeFd(pair[1]);
    }
    const masterFd = master ? await master : null;
    if (pair) closeFd(pair[0]);
    server.attachRun(
      stdinPipe ? stdinPipe[1] : masterFd,
      rec.stdinOnce === true,
      masterFd,
    );
    launched.child.release();
    const pid = launched.pid;
    update(id, (r) => withHelper(runningRecord(r, pid, "trun", Deno.pid), helper));
    report({ ok: true, pid, ...(timings ? { timings } : {}) });
    const pump = async (fd: number, stream: "stdout" | "stderr") => {
      for (;;) {
        const chunk = await readSome(fd, 65536);
        if (chunk.length === 0) break;
        writer.write(stream, chunk);
        await server.broadcast(stream, chunk);
      }
      closeFd(fd);
    };
    const [status] = await Promise.all([
      waitChild(pid),
      pump(outRead, "stdout"),
      pump(errRead, "stderr"),
      ...(masterFd !== null ? [pump(masterFd, "stdout")] : []),
    ]);
    const code = exitCodeOf(status);
    // Its cgroup goes with it (a restart makes a new one).
    if (launched.placement.dir) {
      const { removeCgroup } = await import("../engine/cgroup.ts");
      await removeCgroup(launched.placement.dir);
    }
    stopNetworkHelper(id, helper);
    finish(code);
    return { code, started: true };
  } catch (e) {
    const exitCode = e instanceof ContainerStartError ? e.exitCode : 125;
    const error = e instanceof Error ? e.message : String(e);
    report({ ok: false, error, exitCode });
    update(
      id,
      (r) => ({ ...r, state: "exited", exitCode, error, finishedAt: new Date().toISOString() }),
    );
    finish(exitCode);
    return { code: exitCode, started: false };
  }
}

/**
 * A store to read or write the record in once the container has run; null
 * when the whole store was deleted meanwhile (nothing is left to record).
 */
function storeAfterRun(): Store | null {
  try {
    return openStore(undefined, { repair: false, existing: true });
  } catch (e) {
    if (e instanceof StoreGoneError) return null;
    throw e;
  }
}

/** The record as it is now (read only). */
function current(id: string) {
  const store = storeAfterRun();
  if (store === null) return undefined;
  try {
    return store.findRecord(id);
  } finally {
    store.close();
  }
}

function update(
  id: string,
  fn: Parameters<ReturnType<typeof openStore>["updateRecord"]>[1],
) {
  const store = storeAfterRun();
  if (store === null) return undefined;
  try {
    return store.updateRecord(id, fn);
  } finally {
    store.close();
  }
}
