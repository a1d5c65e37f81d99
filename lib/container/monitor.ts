/**
 * trun's own monitor: the process that stays beside a detached container
 * (Podman's conmon does the same job). It starts the container through the
 * engine, reports to `run -d` (descriptor 3), writes the container's
 * output to its log file in the CRI format, records the start, the exit
 * status and time in the store, and removes the container at exit with
 * `--rm`. It holds no terminal of its own: it runs in a session of its own.
 */
import { cloexecPipe, closeFd, readSome, waitChild, writeFd } from "../../ffi/child_program.ts";
import { openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { containerConfig } from "../engine/config.ts";
import { ContainerStartError, exitCodeOf, launch } from "../engine/executor.ts";
import { runTrunForStorage } from "../runtime/userns_exec.ts";
import { openStore } from "../store/mod.ts";
import { containerPaths, type MonitorReport, type RootfsLayout } from "./detached.ts";
import { fileSink, LogWriter } from "./log_file.ts";
import { logPath, runningRecord } from "./status.ts";
import { restartDelay, shouldRestart } from "./restart.ts";

/** Runs the monitor of container `id`; `readyFd` receives one JSON report. Returns the exit status to exit with. */
export async function runMonitor(id: string, readyFd: number): Promise<number> {
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
  try {
    for (let n = 0;; n++) {
      const run = await runOnce(rec.id, dir, writer, report);
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
      update(rec.id, (r) => ({ ...r, restartCount: (r.restartCount ?? 0) + 1 }));
    }
  } finally {
    writer.close();
    log.close();
  }
  const finished = update(rec.id, (r) => r);
  if (finished?.autoRemove) {
    // Its writable layer holds files of subordinate ids: removed through
    // the storage user namespace, as `trun rm` does.
    await runTrunForStorage(["rm", "--force", "--volumes", rec.id], { stdoutToStderr: true });
  }
  return 0;
}

/**
 * Starts the container once and waits for it; records the start, reports
 * the first start to `run -d`. Returns its exit status and whether it
 * started at all.
 */
async function runOnce(
  id: string,
  dir: string,
  writer: LogWriter,
  report: (r: MonitorReport) => void,
): Promise<{ code: number; started: boolean }> {
  const p = containerPaths(dir);
  try {
    const spec = JSON.parse(Deno.readTextFileSync(p.spec));
    const layout = JSON.parse(Deno.readTextFileSync(p.rootfs)) as RootfsLayout;
    const config = containerConfig(spec, p.userdata);
    const [outRead, outWrite] = cloexecPipe();
    const [errRead, errWrite] = cloexecPipe();
    const nul = openPath("/dev/null", O.RDONLY | O.CLOEXEC, `opening "/dev/null"`);
    // With -t the container's terminal comes over a socket pair; its
    // output is the log's stdout (a terminal has one stream).
    const tty = config.process.terminal ? await import("../../ffi/socket.ts") : undefined;
    const pair = tty?.socketPair();
    const master = pair ? tty!.receiveFd(pair[0]) : undefined;
    let launched;
    try {
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
        stdinNull: true,
        // The container outlives a killed monitor; `ps` then still tells
        // the truth from its pid and start time.
        dieWithParent: false,
        stdio: [nul, outWrite, errWrite],
      });
    } finally {
      closeFd(outWrite);
      closeFd(errWrite);
      closeFd(nul);
      if (pair) closeFd(pair[1]);
    }
    const masterFd = master ? await master : null;
    if (pair) closeFd(pair[0]);
    launched.child.release();
    const pid = launched.pid;
    update(id, (r) => runningRecord(r, pid, "trun", Deno.pid));
    report({ ok: true, pid });
    const pump = async (fd: number, stream: "stdout" | "stderr") => {
      for (;;) {
        const chunk = await readSome(fd, 65536);
        if (chunk.length === 0) break;
        writer.write(stream, chunk);
      }
      closeFd(fd);
    };
    const [status] = await Promise.all([
      waitChild(pid),
      pump(outRead, "stdout"),
      pump(errRead, "stderr"),
      ...(masterFd !== null ? [pump(masterFd, "stdout")] : []),
    ]);
    return { code: exitCodeOf(status), started: true };
  } catch (e) {
    const exitCode = e instanceof ContainerStartError ? e.exitCode : 125;
    const error = e instanceof Error ? e.message : String(e);
    report({ ok: false, error, exitCode });
    update(
      id,
      (r) => ({ ...r, state: "exited", exitCode, error, finishedAt: new Date().toISOString() }),
    );
    return { code: exitCode, started: false };
  }
}

function update(
  id: string,
  fn: Parameters<ReturnType<typeof openStore>["updateRecord"]>[1],
) {
  const store = openStore(undefined, { repair: false });
  try {
    return store.updateRecord(id, fn);
  } finally {
    store.close();
  }
}
