/**
 * Spawning trun's own monitor (`trun container-monitor`), apart from the
 * rest of lib/container/detached.ts: `run` starts it first thing, before
 * its record exists, and this module's few imports are all it waits for.
 * Also the line protocol of its descriptor 3, which the monitor reads
 * without loading the starter's side.
 */
import { closeFd, readSome, spawnDetached } from "../../ffi/child_program.ts";
import { socketPair } from "../../ffi/socket.ts";
import { selfCommand } from "../runtime/self_exec.ts";
import { exeSealSetup, type SealQuestion } from "../runtime/exe_seal.ts";
import { containerPaths } from "./container_paths.ts";
import { exitsDir } from "./status.ts";

/**
 * trun's own monitor, started (`trun container-monitor ID`, in a session
 * of its own) before its container's record exists, so that its start-up
 * overlaps the record's creation: it waits for `record` on its socket.
 */
export interface PendingMonitor {
  /** Our end of the monitor's descriptor 3. */
  sock: number;
  /** Where its own messages go. */
  log: string;
}

/**
 * Starts trun's monitor for container `id` (directory `dir`), to be driven
 * by `startMonitor`. The container's first process is cloned from the
 * monitor: when `seal` says its root could reach trun's binary, the
 * monitor runs from a read-only view of it (lib/runtime/exe_seal.ts).
 */
export function spawnMonitor(
  id: string,
  dir: string,
  waitAttach: boolean,
  seal: SealQuestion,
): PendingMonitor {
  const log = containerPaths(dir).monitorLog;
  Deno.mkdirSync(exitsDir(dir), { recursive: true, mode: 0o700 });
  const [mine, theirs] = socketPair();
  try {
    const argv = selfCommand([
      "container-monitor",
      id,
      "--ready-fd",
      "3",
      "--wait-record",
      ...(waitAttach ? ["--wait-attach"] : []),
    ]);
    const env = Object.entries(Deno.env.toObject()).map(([k, v]) => `${k}=${v}`);
    spawnDetached(argv[0]!, argv, env, {
      stderrPath: log,
      passFd: theirs,
      setup: exeSealSetup(seal),
    });
  } catch (e) {
    closeFd(mine);
    throw e;
  } finally {
    closeFd(theirs);
  }
  return { sock: mine, log };
}

/**
 * Reads one line from `fd` (the socket between a monitor and its starter);
 * "" when it closes first.
 */
export async function readLine(fd: number): Promise<string> {
  let got = "";
  while (!got.includes("\n")) {
    const chunk = await readSome(fd, 65536);
    if (chunk.length === 0) return "";
    got += new TextDecoder().decode(chunk);
  }
  return got.trim();
}
