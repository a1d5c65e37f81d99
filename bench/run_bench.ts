/**
 * Start-up benchmark: `trun run --rootfs <busybox> true` end to end, median
 * of N, beside `unshare -U -r -m -p -f --mount-proc true`, with where the time
 * goes (Deno start and module load, clone, id maps, mounts to exec).
 *
 *   deno task bench [--runs 20] [--rootfs DIR]
 *
 * Run it as the unprivileged user the containers are for. Numbers are
 * reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { busyboxRootfs } from "../tests/_harness/rootfs.ts";

const args = Deno.args;
const runs = Number(args[args.indexOf("--runs") + 1] || 20) || 20;
const rootfsArg = args.indexOf("--rootfs") >= 0 ? args[args.indexOf("--rootfs") + 1] : undefined;
const main = new URL("../main.ts", import.meta.url).pathname;
const deno = Deno.execPath();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function time(cmd: string, cmdArgs: string[]): Promise<{ ms: number; stderr: string }> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, {
    args: cmdArgs,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${cmdArgs.join(" ")} failed: ${stderr}`);
  return { ms, stderr };
}

async function series(label: string, cmd: string, cmdArgs: string[]): Promise<number[]> {
  await time(cmd, cmdArgs); // warm caches
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push((await time(cmd, cmdArgs)).ms);
  console.log(
    `${label.padEnd(48)} median ${median(xs).toFixed(1)} ms  (min ${
      Math.min(...xs).toFixed(1)
    }, max ${Math.max(...xs).toFixed(1)})`,
  );
  return xs;
}

const rootfs = rootfsArg ?? await busyboxRootfs();
const tmp = await Deno.makeTempDir({ prefix: "trun-bench-" });
Deno.env.set("TRUN_ROOT", `${tmp}/root`);
Deno.env.set("TRUN_RUNROOT", `${tmp}/run`);
console.log(`uid ${Deno.uid()}, ${runs} runs each, rootfs ${rootfs}`);
await series("deno run main.ts version (Deno start + CLI)", deno, ["run", "-A", main, "version"]);
await series("trun run --rootfs … true", deno, [
  "run",
  "-A",
  main,
  "run",
  "--rootfs",
  rootfs,
  "true",
]);
if (Deno.uid() !== 0) {
  await series("trun run --userns=single --rootfs … true", deno, [
    "run",
    "-A",
    main,
    "run",
    "--userns=single",
    "--rootfs",
    rootfs,
    "true",
  ]);
}
await series("unshare -U -r -m -p -f --mount-proc true", "unshare", [
  "-U",
  "-r",
  "-m",
  "-p",
  "-f",
  "--mount-proc",
  "true",
]);

// Where the time goes inside trun: --debug prints the step timings (the
// client's, and the monitor's own start of the container).
const steps = {
  cli: [] as number[],
  recorded: [] as number[],
  running: [] as number[],
  ended: [] as number[],
  clone: [] as number[],
  idMaps: [] as number[],
  exec: [] as number[],
};
for (let i = 0; i < runs; i++) {
  const { stderr } = await time(deno, [
    "run",
    "-A",
    main,
    "run",
    "--rm",
    "--debug",
    "--rootfs",
    rootfs,
    "true",
  ]);
  const m = stderr.match(
    /cli loaded at ([\d.]+) ms, recorded at ([\d.]+) ms, running at ([\d.]+) ms, output ended at ([\d.]+) ms; in the monitor: clone ([\d.]+) ms, id maps ([\d.]+) ms, to exec ([\d.]+) ms/,
  );
  if (!m) continue;
  const keys = Object.keys(steps) as (keyof typeof steps)[];
  keys.forEach((k, j) => steps[k].push(Number(m[j + 1])));
}
const med = (xs: number[]) => median(xs).toFixed(1);
console.log(
  `inside trun run --rm (medians; "at" is ms since the client's time origin): CLI loaded at ${
    med(steps.cli)
  }, recorded at ${med(steps.recorded)}, running at ${med(steps.running)}, output ended at ${
    med(steps.ended)
  }; in the monitor: clone ${med(steps.clone)} ms, id maps ${med(steps.idMaps)} ms, ` +
    `mounts→exec ${med(steps.exec)} ms`,
);
await Deno.remove(tmp, { recursive: true }).catch(() => {});
