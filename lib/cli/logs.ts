/**
 * `trun logs`: what a detached container wrote, from the log file its
 * monitor keeps (lib/container/log_file.ts), with Docker's flags: stdout
 * records go to stdout and stderr records to stderr; `-f` follows the file
 * until the container stops and its monitor has written the last bytes.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp } from "./output.ts";
import { type LogOutput, LogReader, parseTimeArg } from "../container/log_file.ts";
import { containerStatus, logPath, monitorAlive } from "../container/status.ts";
import { openStore } from "../store/mod.ts";

/** The grammar of `trun logs`. */
export const LOGS = defineCommand({
  name: "logs",
  usage: "[OPTIONS] CONTAINER",
  summary: "Fetch the logs of a container",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    follow: { short: "f", kind: "bool", help: "Follow log output" },
    since: {
      kind: "string",
      help:
        'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
    },
    tail: {
      short: "n",
      kind: "string",
      help: 'Number of lines to show from the end of the logs (default "all")',
    },
    timestamps: { short: "t", kind: "bool", help: "Show timestamps" },
    until: {
      kind: "string",
      help:
        'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
    },
  },
});

/** How often `-f` looks for new bytes and at the container's state. */
const POLL_MS = 100;
/** How long `-f` waits for a live monitor to write the last output of a stopped container. */
const DRAIN_MS = 2000;

const encoder = new TextEncoder();

/** `--tail`: a count, or undefined for all (`all`, or a negative number as Docker). */
function parseTail(def: CommandDef, value: string | undefined): number | undefined {
  if (value === undefined || value === "all") return undefined;
  if (!/^-?\d+$/.test(value)) {
    throw new UsageError(
      def,
      `invalid value "${value}" for flag --tail: expected a number of lines or "all"`,
    );
  }
  const n = Number(value);
  return n < 0 ? undefined : n;
}

/** A `--since` / `--until` value, or a usage error naming the flag. */
function timeFlag(
  def: CommandDef,
  flag: string,
  value: string | undefined,
  now: Date,
): Date | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTimeArg(value, now);
  } catch (e) {
    throw new UsageError(def, `invalid value for "${flag}": ${(e as Error).message}`);
  }
}

/** The container `ref` names (id, name or id prefix) and its log file; exit status 1 when none. */
function findContainer(ref: string): { id: string; path: string } {
  const store = openStore();
  try {
    const rec = store.findRecord(ref);
    if (rec === undefined) {
      throw Object.assign(new Error(`No such container: ${ref}`), { exitCode: 1 });
    }
    return { id: rec.id, path: logPath(store.containerDir(rec.id)) };
  } finally {
    store.close();
  }
}

/** Whether the log of container `id` may still grow, and whether only by the monitor's last writes. */
function writerState(id: string): "running" | "draining" | "done" {
  const store = openStore(undefined, { repair: false });
  try {
    const rec = store.findRecord(id);
    if (rec === undefined) return "done";
    const status = containerStatus(rec);
    if (status === "running") return "running";
    if (!monitorAlive(rec)) return "done";
    // A created container whose monitor lives is still starting.
    return status === "created" ? "running" : "draining";
  } finally {
    store.close();
  }
}

function writeAll(out: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
}

function print(outputs: readonly LogOutput[]): void {
  for (const o of outputs) writeAll(o.stream === "stdout" ? Deno.stdout : Deno.stderr, o.text);
}

/** The log file's bytes from where `file` stands to its end, decoded by `decoder` (`stream: true`). */
async function readNew(file: Deno.FsFile, decoder: TextDecoder): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  for (;;) {
    const n = await file.read(buf);
    if (n === null) return text;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
}

/** Opens the log file, or undefined while it does not exist. */
async function openLog(path: string): Promise<Deno.FsFile | undefined> {
  try {
    return await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot open the log file "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Follows the log of container `id`: prints what is there, then polls for
 * new bytes until the container stops and the monitor is gone (or has had
 * DRAIN_MS to write its last bytes), reads to the end and stops. After
 * `until`, nothing more can be shown and following stops too.
 */
async function follow(id: string, path: string, reader: LogReader, until?: Date): Promise<void> {
  const decoder = new TextDecoder();
  let file = await openLog(path);
  try {
    print(reader.feed(file ? await readNew(file, decoder) : ""));
    let drainUntil: number | undefined;
    for (;;) {
      // Bytes written before the state reads "done" are read by the
      // last pass below, so none is lost to the poll's timing.
      const state = writerState(id);
      if (state === "done") break;
      if (state === "draining") {
        drainUntil ??= Date.now() + DRAIN_MS;
        if (Date.now() > drainUntil) break;
      }
      if (until !== undefined && Date.now() > until.getTime()) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      file ??= await openLog(path);
      if (file) print(reader.feed(await readNew(file, decoder)));
    }
    // The container and its monitor are gone (or a removed container's
    // file is unlinked: the open descriptor still reads it).
    file ??= await openLog(path);
    if (file) print(reader.feed((await readNew(file, decoder)) + decoder.decode()));
    print(reader.end());
  } finally {
    file?.close();
  }
}

/** Runs `trun logs` (`name` names it in help and errors). */
export async function main(argv: string[], name = LOGS.name): Promise<number> {
  const def = { ...LOGS, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const now = new Date();
  const tail = parseTail(def, p.flags.tail);
  const since = timeFlag(def, "since", p.flags.since, now);
  const until = timeFlag(def, "until", p.flags.until, now);
  const { id, path } = findContainer(p.args[0]!);
  const reader = new LogReader({
    timestamps: p.flags.timestamps,
    ...(tail === undefined ? {} : { tail }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
  });
  try {
    if (p.flags.follow) {
      await follow(id, path, reader, until);
      return 0;
    }
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new Error(`Cannot read the log file "${path}": ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    print(reader.feed(text));
    print(reader.end());
    return 0;
  } catch (e) {
    // `trun logs web | head`: the reader went away, nothing left to do.
    if (e instanceof Deno.errors.BrokenPipe) return 0;
    throw e;
  }
}
