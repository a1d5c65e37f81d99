/**
 * Where the time of `trun run --rm IMAGE true` goes, across all of trun's
 * processes: runs it N times with `TRUN_TRACE` (lib/util/trace.ts) and
 * prints, for each milestone of each process (the CLI, the runtime conmon
 * starts, the exit command), its median time since the CLI's process
 * started, beside the median wall time of the whole command.
 *
 *   deno run -A bench/run_timeline.ts [--runs 15] [-- EXTRA RUN FLAGS]
 *
 * Run it as the user the containers are for, with TMPDIR on a fresh file
 * system (scripts/bench_fs.sh), as the other benches. Reported, not asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { startFixtureRegistry } from "../tests/_harness/registry.ts";

const args = Deno.args;
const dash = args.indexOf("--");
const extra = dash >= 0 ? args.slice(dash + 1) : [];
const own = dash >= 0 ? args.slice(0, dash) : args;
const runsAt = own.indexOf("--runs");
const runs = runsAt >= 0 ? Number(own[runsAt + 1]) || 15 : 15;

const main = new URL("../main.ts", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "trun-timeline-" });
const env = { TRUN_ROOT: `${tmp}/root`, TRUN_RUNROOT: `${tmp}/run` };
const reg = await startFixtureRegistry({ images: ["trun-fixtures/busybox:latest"] });

/** Runs trun with `argv`; throws with its stderr when it fails. */
async function trun(argv: string[], trace?: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...argv],
    env: { ...env, ...(trace ? { TRUN_TRACE: trace } : {}) },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`trun ${argv.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

try {
  const ref = `${reg.host}/trun-fixtures/busybox:latest`;
  await trun(["pull", "-q", ref]);
  const command = ["run", "--rm", ...extra, ref, "true"];
  for (let i = 0; i < 2; i++) await trun(command); // warm the caches
  const marks = new Map<string, number[]>();
  const order: string[] = [];
  const walls: number[] = [];
  for (let i = 0; i < runs; i++) {
    const file = `${tmp}/trace-${i}`;
    const t0 = performance.timeOrigin + performance.now();
    await trun(command, file);
    walls.push(performance.timeOrigin + performance.now() - t0);
    const lines = Deno.readTextFileSync(file).trim().split("\n").map((l) => {
      const [wall, pid, own, ...label] = l.split(" ");
      return { wall: Number(wall), pid: Number(pid), own: Number(own), label: label.join(" ") };
    }).sort((a, b) => a.wall - b.wall);
    const cli = lines[0]!;
    const start = cli.wall - cli.own;
    // Each process is named by its first line ("main run", "main runtime"…).
    const role = new Map<number, string>();
    const seen = new Map<string, number>();
    for (const l of lines) {
      if (!role.has(l.pid)) {
        // The command's name, without its arguments (ids).
        const base = l.label.replace(/^main /, "").split(" ")[0]!;
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        role.set(l.pid, n === 0 ? base : `${base} #${n + 1}`);
        const key = `${role.get(l.pid)}: process start`;
        if (!marks.has(key)) order.push(key);
        marks.set(key, [...(marks.get(key) ?? []), l.wall - l.own - start]);
      }
      const key = `${role.get(l.pid)}: ${l.label}`;
      if (!marks.has(key)) order.push(key);
      marks.set(key, [...(marks.get(key) ?? []), l.wall - start]);
    }
  }
  console.log(
    `trun ${command.join(" ")}: ${runs} runs, median wall ${median(walls).toFixed(1)} ms`,
  );
  const rows = order.map((k) => [median(marks.get(k)!), k] as const).sort((a, b) => a[0] - b[0]);
  for (const [ms, k] of rows) {
    console.log(`${ms.toFixed(1).padStart(8)} ms  ${k} (${marks.get(k)!.length}/${runs})`);
  }
} finally {
  await reg.stop();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
