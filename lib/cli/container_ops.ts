/**
 * `trun stop`, `kill`, `rm` and `wait`: Docker's commands on containers
 * that outlive their command. Each takes several containers and goes on
 * after a failure, printing each name as given on success, as Docker does.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { ATTACH_FLAGS } from "./attach_flags.ts";
import { printError, printHelp, println } from "./output.ts";
import type { ContainerRecord, Store } from "../store/mod.ts";

/** The grammar of `trun stop`. */
export const STOP = defineCommand({
  name: "stop",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Stop one or more running containers",
  minArgs: 1,
  flags: {
    time: {
      short: "t",
      kind: "string",
      value: "SECONDS",
      help: "Seconds to wait before killing it (default: the container's stop timeout)",
    },
    signal: { short: "s", kind: "string", value: "SIGNAL", help: "Signal to send first" },
  },
});

/** The grammar of `trun kill`. */
export const KILL = defineCommand({
  name: "kill",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Kill one or more running containers",
  minArgs: 1,
  flags: {
    signal: { short: "s", kind: "string", value: "SIGNAL", help: "Signal to send (default KILL)" },
  },
});

/** The grammar of `trun rm`. */
export const RM = defineCommand({
  name: "rm",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Remove one or more containers",
  minArgs: 1,
  flags: {
    force: { short: "f", kind: "bool", help: "Kill a running container first" },
    volumes: {
      short: "v",
      kind: "bool",
      help: "Remove the anonymous volumes associated with the container",
    },
  },
});

/** The grammar of `trun start`. */
export const START = defineCommand({
  name: "start",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Start one or more stopped containers",
  minArgs: 1,
  flags: {
    attach: { short: "a", kind: "bool", help: "Attach STDOUT/STDERR and forward signals" },
    interactive: { short: "i", kind: "bool", help: "Attach the container's STDIN" },
    ...ATTACH_FLAGS,
  },
});

/** The grammar of `trun restart`. */
export const RESTART = defineCommand({
  name: "restart",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Restart one or more containers",
  minArgs: 1,
  flags: {
    time: {
      short: "t",
      kind: "string",
      value: "SECONDS",
      help: "Seconds to wait for the stop before killing it",
    },
  },
});

/** The grammar of `trun rename`. */
export const RENAME = defineCommand({
  name: "rename",
  usage: "CONTAINER NEW_NAME",
  summary: "Rename a container",
  minArgs: 2,
  maxArgs: 2,
  flags: {},
});

/** The grammar of `trun container prune`. */
export const PRUNE = defineCommand({
  name: "container prune",
  usage: "[OPTIONS]",
  summary: "Remove all stopped containers",
  maxArgs: 0,
  flags: { force: { short: "f", kind: "bool", help: "Do not prompt for confirmation" } },
});

/** The grammar of `trun wait`. */
export const WAIT = defineCommand({
  name: "wait",
  usage: "CONTAINER [CONTAINER...]",
  summary: "Block until containers stop, then print their exit codes",
  minArgs: 1,
  flags: {},
});

/** Runs `fn` for each container reference; exit 1 when any failed (Docker's behaviour). */
async function each(refs: string[], fn: (ref: string) => Promise<void>): Promise<number> {
  let failed = false;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (e) {
      failed = true;
      printError(e instanceof Error ? e.message : String(e));
    }
  }
  return failed ? 1 : 0;
}

/**
 * Runs `fn` with each named container's record, its directory and the open
 * store (closed after `fn`), printing the name as given on success.
 */
export async function eachRecord(
  refs: string[],
  fn: (rec: ContainerRecord, dir: string, store: Store) => Promise<void> | void,
): Promise<number> {
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  return await each(refs, async (ref) => {
    const store = openStore(undefined, { repair: false });
    try {
      const rec = mustFind(store, ref);
      await fn(rec, store.containerDir(rec.id), store);
    } finally {
      store.close();
    }
    println(ref);
  });
}

/**
 * Docker's stop as the user asks it: `--time` or the container's own
 * timeout, and the container marked stopped by the user, so that no
 * restart policy starts it again.
 */
async function stopByUser(
  rec: ContainerRecord,
  store: Store,
  time: string | undefined,
  signal?: string,
): Promise<void> {
  const timeout = time === undefined ? rec.stopTimeout : Number(time);
  if (!Number.isInteger(timeout)) throw new Error(`invalid --time "${time}"`);
  store.updateRecord(rec.id, (r) => ({ ...r, stoppedByUser: true }));
  const { stopContainer } = await import("../container/ops.ts");
  await stopContainer(signal ? { ...rec, stopSignal: signal } : rec, timeout);
}

/** Starts a container beside its monitor, or throws the monitor's report. */
async function startOrThrow(rec: ContainerRecord, dir: string): Promise<void> {
  const { startDetached } = await import("../container/detached.ts");
  const report = await startDetached(rec, dir);
  if (!report.ok) throw Object.assign(new Error(report.error), { exitCode: report.exitCode });
}

/** `trun stop`. */
export async function stopCommand(argv: string[], name = STOP.name): Promise<number> {
  const def = { ...STOP, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  return await eachRecord(
    p.args,
    (rec, _dir, store) => stopByUser(rec, store, p.flags.time, p.flags.signal),
  );
}

/** `trun kill`. */
export async function killCommand(argv: string[], name = KILL.name): Promise<number> {
  const def = { ...KILL, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const ops = await import("../container/ops.ts");
  return await eachRecord(p.args, (rec) => ops.killContainer(rec, p.flags.signal ?? "KILL"));
}

/** `trun rm`. */
export async function rmCommand(argv: string[], name = RM.name): Promise<number> {
  const def = { ...RM, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { openStore } = await import("../store/mod.ts");
  const { noSuchContainer, removeHere } = await import("../container/ops.ts");
  const open = () => openStore(undefined, { repair: false });
  return await each(p.args, async (ref) => {
    const opts = { force: p.flags.force, volumes: p.flags.volumes };
    if (!(await removeHere(open, ref, opts))) throw noSuchContainer(ref);
    println(ref);
  });
}

/** `trun start`: a created or exited container runs again, on the same writable layer. */
export async function startCommand(argv: string[], name = START.name): Promise<number> {
  const def = { ...START, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { containerStatus } = await import("../container/status.ts");
  if (p.flags.attach || p.flags.interactive) {
    if (p.args.length > 1) {
      throw new UsageError(def, "you cannot start and attach multiple containers at once");
    }
    const { attachToContainer, detachKeysFlag } = await import("./attach.ts");
    const { findContainer } = await import("./_container_common.ts");
    const detachKeys = await detachKeysFlag(def, p.flags["detach-keys"]);
    const { rec, dir } = await findContainer(p.args[0]!);
    const running = containerStatus(rec) === "running";
    return await attachToContainer(rec, dir, {
      streams: { stdin: p.flags.interactive && rec.stdin === true, stdout: true, stderr: true },
      detachKeys,
      sigProxy: p.flags["sig-proxy"],
      start: !running,
    });
  }
  return await eachRecord(p.args, async (rec, dir) => {
    if (containerStatus(rec) !== "running") await startOrThrow(rec, dir);
  });
}

/** `trun wait`. */
export async function waitCommand(argv: string[], name = WAIT.name): Promise<number> {
  const def = { ...WAIT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { openStore } = await import("../store/mod.ts");
  const ops = await import("../container/ops.ts");
  return await each(p.args, async (ref) => {
    println(String(await ops.waitContainer(() => openStore(undefined, { repair: false }), ref)));
  });
}

/** `trun restart`: stop (as `trun stop`, without marking it stopped for good), then start. */
export async function restartCommand(argv: string[], name = RESTART.name): Promise<number> {
  const def = { ...RESTART, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const ops = await import("../container/ops.ts");
  return await eachRecord(p.args, async (rec, dir, store) => {
    // Stopped by the user, so that a restart policy does not race this start.
    await stopByUser(rec, store, p.flags.time);
    await ops.waitRecorded(store, rec.id);
    await startOrThrow(ops.mustFind(store, rec.id), dir);
  });
}

/** `trun rename`. */
export async function renameCommand(argv: string[], name = RENAME.name): Promise<number> {
  const def = { ...RENAME, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const { validateName } = await import("../container/names.ts");
  const [ref, wanted] = p.args as [string, string];
  const newName = validateName(wanted);
  const store = openStore(undefined, { repair: false });
  try {
    const rec = mustFind(store, ref);
    if (store.findRecord(newName)?.name === newName) {
      throw Object.assign(
        new Error(`the container name "${newName}" is already in use; choose another name`),
        { exitCode: 1 },
      );
    }
    store.updateRecord(rec.id, (r) => ({ ...r, name: newName }));
  } finally {
    store.close();
  }
  return 0;
}

/** `trun container prune`: removes every container that is not running; prints Docker's report. */
export async function pruneCommand(argv: string[], name = PRUNE.name): Promise<number> {
  const def = { ...PRUNE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  if (!p.flags.force) {
    Deno.stdout.writeSync(
      new TextEncoder().encode(
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
      ),
    );
    const buf = new Uint8Array(64);
    const n = Deno.stdin.readSync(buf) ?? 0;
    if (!/^y(es)?$/i.test(new TextDecoder().decode(buf.subarray(0, n)).trim())) return 0;
  }
  const { openStore } = await import("../store/mod.ts");
  const { humanSize } = await import("./format.ts");
  const store = openStore(undefined, { repair: false });
  try {
    const report = await pruneContainers(store);
    printContainerPrune(report);
    println(`Total reclaimed space: ${humanSize(report.reclaimed)}`);
  } finally {
    store.close();
  }
  return 0;
}

/** What {@link pruneContainers} removed: the ids, and the bytes of their writable layers. */
export interface ContainerPruneReport {
  /** Full ids of the containers removed. */
  deleted: string[];
  /** Bytes their writable layers held. */
  reclaimed: number;
}

/** Removes every container that is not running (`container prune`, `system prune`). */
export async function pruneContainers(store: Store): Promise<ContainerPruneReport> {
  const ops = await import("../container/ops.ts");
  const { containerStatus } = await import("../container/status.ts");
  const { treeSize } = await import("./ps.ts");
  const report: ContainerPruneReport = { deleted: [], reclaimed: 0 };
  for (const rec of store.listRecords()) {
    if (containerStatus(rec) === "running") continue;
    report.reclaimed += treeSize(`${store.containerDir(rec.id)}/upper`);
    await ops.removeContainer(store, rec, false);
    report.deleted.push(rec.id);
  }
  return report;
}

/** Prints the ids a container prune removed, as Docker does (nothing when none). */
export function printContainerPrune(report: ContainerPruneReport): void {
  if (report.deleted.length > 0) println(["Deleted Containers:", ...report.deleted, ""].join("\n"));
}
