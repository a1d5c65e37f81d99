/**
 * `trun stats` (`container stats`): each container's CPU %, memory usage
 * and limit, network and block I/O and pids, with Docker's columns, units
 * and `--format` fields, refreshed every second (in place on a terminal)
 * or once with `--no-stream`. The rows are built by pure functions from
 * usage samples (lib/cgroup/stats.ts); `main` takes the samples.
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printError, printHelp } from "./output.ts";
import { binarySize, humanSize, type OutputFormat, parseTime, renderItems } from "./format.ts";
import { formatFlag, messageOf } from "./_image_common.ts";
import { cpuPercent, type UsageSample } from "../cgroup/stats.ts";
import type { ContainerRecord } from "../store/mod.ts";

/** The grammar of `trun stats` and `trun container stats`. */
export const STATS = defineCommand({
  name: "stats",
  usage: "[OPTIONS] [CONTAINER...]",
  summary: "Display a live stream of container(s) resource usage statistics",
  flags: {
    all: { short: "a", kind: "bool", help: "Show all containers (default shows just running)" },
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.Name}}\\t{{.CPUPerc}}'",
    },
    "no-stream": { kind: "bool", help: "Disable streaming stats and only pull the first result" },
    "no-trunc": { kind: "bool", help: "Do not truncate output" },
  },
});

/** One container in a frame: how it was named, and its usage now (absent when not running). */
export interface StatsItem {
  /** The stored record. */
  rec: ContainerRecord;
  /** As the user named it (the short id when listing all), Docker's `Container` field. */
  ref: string;
  /** This frame's sample, when it runs. */
  sample?: UsageSample;
  /** The previous frame's sample, for the CPU % between the two. */
  prev?: UsageSample;
}

const percent = (v: number) => `${v.toFixed(2)}%`;

/**
 * One row as Docker's stats formatter fields (`docker stats --format
 * json`): zeros for a container that does not run, `--` for what could
 * not be read, and, beyond Docker's keys, `Notes` naming where values
 * came from /proc instead of the container's cgroup.
 */
export function statsJson(item: StatsItem, noTrunc: boolean): Record<string, unknown> {
  const { rec, sample: s } = item;
  const id = noTrunc ? rec.id : rec.id.slice(0, 12);
  const base = { Container: item.ref, ID: id, Name: rec.name };
  if (s === undefined) {
    return {
      BlockIO: "0B / 0B",
      CPUPerc: percent(0),
      ...base,
      MemPerc: percent(0),
      MemUsage: "0B / 0B",
      NetIO: "0B / 0B",
      PIDs: "0",
    };
  }
  const cpu = cpuPercent(s, item.prev, parseTime(rec.startedAt));
  const pair = (v: { a: number; b: number } | undefined, f: (n: number) => string) =>
    v === undefined ? "--" : `${f(v.a)} / ${f(v.b)}`;
  const io = (n: number) => humanSize(n, 3);
  const out: Record<string, unknown> = {
    BlockIO: pair(s.block && { a: s.block.read, b: s.block.write }, io),
    CPUPerc: cpu === undefined ? "--" : percent(cpu),
    ...base,
    MemPerc: s.memory === undefined || !s.memoryLimit
      ? "--"
      : percent(s.memory / s.memoryLimit * 100),
    MemUsage: s.memory === undefined
      ? "--"
      : `${binarySize(s.memory)} / ${
        s.memoryLimit === undefined ? "--" : binarySize(s.memoryLimit)
      }`,
    NetIO: pair(s.net && { a: s.net.rx, b: s.net.tx }, io),
    PIDs: s.pids === undefined ? "--" : String(s.pids),
  };
  if (s.notes.length > 0) out.Notes = s.notes;
  return out;
}

const STATS_LABELS: Record<string, string> = {
  Container: "CONTAINER",
  ID: "CONTAINER ID",
  Name: "NAME",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

/** The lines of one frame: Docker's table, JSON lines or the template per container. */
export function renderStats(
  items: readonly StatsItem[],
  opts: { format: OutputFormat; noTrunc: boolean },
): string[] {
  const json = (i: StatsItem) => statsJson(i, opts.noTrunc);
  const cols = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"];
  return renderItems(opts.format, items, {
    headers: cols.map((c) => STATS_LABELS[c]!),
    row: (i) => {
      const j = json(i);
      return cols.map((c) => String(j[c]));
    },
    json,
    labels: STATS_LABELS,
  });
}

/**
 * A frame drawn over the previous one on a terminal, as Docker's CLI does:
 * cursor home, each line with the rest of it cleared, the rest of the
 * screen cleared (no flicker from clearing first).
 */
export function redrawFrame(lines: readonly string[]): string {
  return `\x1b[H${lines.map((l) => `${l}\x1b[K\n`).join("")}\x1b[J`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `trun stats`. */
export async function main(argv: string[], name = STATS.name): Promise<number> {
  const def = { ...STATS, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const format = formatFlag(def, p.flags.format);
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const { containerStatus } = await import("../container/status.ts");
  const { containerCgroup, cgroupPids } = await import("../cgroup/container_cgroup.ts");
  const { sampleUsage, hostMemory } = await import("../cgroup/stats.ts");
  const { processesInPidNamespace } = await import("../engine/state.ts");
  const total = hostMemory();
  const named = p.args.length > 0;
  const prevs = new Map<string, UsageSample>();
  const noted = new Set<string>();
  const encoder = new TextEncoder();
  const terminal = !p.flags["no-stream"] && Deno.stdout.isTerminal();
  let failed = false;
  for (let frame = 0;; frame++) {
    const items: StatsItem[] = [];
    const store = openStore(undefined, { repair: false });
    try {
      const records: { rec: ContainerRecord; ref: string }[] = [];
      if (named) {
        for (const ref of p.args) {
          try {
            records.push({ rec: mustFind(store, ref), ref });
          } catch (e) {
            // Docker names a missing container once and stops streaming it.
            if (frame === 0) printError(messageOf(e));
            failed = true;
          }
        }
      } else {
        for (const rec of store.listRecords().reverse()) {
          records.push({ rec, ref: rec.id.slice(0, 12) });
        }
      }
      for (const { rec, ref } of records) {
        const running = containerStatus(rec) === "running";
        if (!named && !p.flags.all && !running) continue;
        const item: StatsItem = { rec, ref };
        if (running) {
          const found = containerCgroup(rec.pid, rec.cgroup);
          const sample = sampleUsage({
            pid: rec.pid,
            ...(found.dir !== undefined ? { cgroup: found.dir } : {}),
            processes: () =>
              found.dir !== undefined ? cgroupPids(found.dir) : processesInPidNamespace(rec.pid),
          }, total);
          item.sample = sample;
          const prev = prevs.get(rec.id);
          if (prev) item.prev = prev;
          prevs.set(rec.id, sample);
        }
        items.push(item);
      }
    } finally {
      store.close();
    }
    if (named && items.length === 0) return 1;
    const lines = renderStats(items, { format, noTrunc: p.flags["no-trunc"] });
    if (format.kind !== "json") {
      // Where values came from /proc, say so once, beside the table (stderr keeps stdout parseable).
      for (const note of items.flatMap((i) => i.sample?.notes ?? [])) {
        if (noted.has(note)) continue;
        noted.add(note);
        if (!terminal) printError(`note: ${note}`);
      }
    }
    const text = terminal
      ? redrawFrame([...lines, ...[...noted].map((n) => `note: ${n}`)])
      : lines.map((l) => `${l}\n`).join("");
    Deno.stdout.writeSync(encoder.encode(text));
    if (p.flags["no-stream"]) return failed ? 1 : 0;
    await sleep(1000);
  }
}
