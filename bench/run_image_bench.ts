/**
 * `trun run --rm IMAGE true` end to end, with a busybox image pulled from a
 * local registry into a private store first: the `run` path with the
 * image store in it (`bench/run_bench.ts` times `--rootfs`). `--main`
 * points at another checkout's main.ts to compare two versions in one run.
 *
 *   deno run -A bench/run_image_bench.ts [--runs 20] [--main PATH]...
 *
 * Run it as the unprivileged user the containers are for. Numbers are
 * reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { startFixtureRegistry } from "../tests/_harness/registry.ts";

const args = Deno.args;
const runs = Number(args[args.indexOf("--runs") + 1] || 20) || 20;
const mains = args.flatMap((a, i) => a === "--main" ? [args[i + 1]!] : []);
if (mains.length === 0) mains.push(new URL("../main.ts", import.meta.url).pathname);
const deno = Deno.execPath();
const tmp = await Deno.makeTempDir({ prefix: "trun-imgbench-" });
const reg = await startFixtureRegistry({ images: ["trun-fixtures/busybox:latest"] });
try {
  const ref = `${reg.host}/trun-fixtures/busybox:latest`;
  const hyperfine = ["-N", "-w", "3", "-r", String(runs)];
  for (const [i, main] of mains.entries()) {
    const env = `TRUN_ROOT=${tmp}/root${i} TRUN_RUNROOT=${tmp}/run${i}`;
    const pull = await new Deno.Command(deno, {
      args: ["run", "-A", main, "pull", "-q", ref],
      env: { TRUN_ROOT: `${tmp}/root${i}`, TRUN_RUNROOT: `${tmp}/run${i}` },
      stdout: "null",
    }).output();
    if (!pull.success) throw new Error(`pull with ${main} failed`);
    hyperfine.push(
      "-n",
      main,
      `env ${env} ${deno} run -A ${main} run --rm ${ref} true`,
    );
  }
  console.log(`uid ${Deno.uid()}, ${runs} runs each`);
  const out = await new Deno.Command("hyperfine", {
    args: hyperfine,
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (!out.success) Deno.exitCode = 1;
} finally {
  await reg.stop();
  // Layers hold files of subordinate ids: trun removes them through its
  // storage user namespace.
  for (const [i, main] of mains.entries()) {
    await new Deno.Command(deno, {
      args: ["run", "-A", main, "image", "prune", "-a", "-f"],
      env: { TRUN_ROOT: `${tmp}/root${i}`, TRUN_RUNROOT: `${tmp}/run${i}` },
      stdout: "null",
      stderr: "null",
    }).output();
  }
  await new Deno.Command("rm", { args: ["-rf", tmp] }).output();
}
