/**
 * The OCI runtime side by side: `trun runtime run` of a prepared busybox
 * bundle against `runc run` (and `crun run`, where Debian's crun starts on
 * this host) of the same bundle, in one hyperfine run. Run as root (runc
 * and crun need it for a bundle without a user namespace).
 *
 *   deno task bench:runtime [--runs 20]
 *
 * Numbers are reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { busyboxRootfs } from "../tests/_harness/rootfs.ts";

const runs = Number(Deno.args[Deno.args.indexOf("--runs") + 1] || 20) || 20;
const main = new URL("../main.ts", import.meta.url).pathname;
const deno = Deno.execPath();
const tmp = await Deno.makeTempDir({ prefix: "trun-rtbench-" });

async function ok(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    if (!out.success) {
      console.log(`(${cmd} unusable here: ${new TextDecoder().decode(out.stderr).trim()})`);
    }
    return out.success;
  } catch {
    console.log(`(${cmd} not installed)`);
    return false;
  }
}

try {
  const bundle = `${tmp}/bundle`;
  await Deno.mkdir(bundle);
  await new Deno.Command("cp", { args: ["-a", await busyboxRootfs(), `${bundle}/rootfs`] })
    .output();
  await new Deno.Command(deno, { args: ["run", "-A", main, "runtime", "spec", "--bundle", bundle] })
    .output();
  const spec = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
  spec.process.terminal = false;
  spec.process.args = ["true"];
  // crun 1.8 refuses versions newer than it knows; all three accept 1.0.2.
  spec.ociVersion = "1.0.2";
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(spec));
  const commands: [string, string][] = [
    ["trun", `${deno} run -A ${main} runtime --root ${tmp}/trun run --bundle ${bundle} b`],
  ];
  if (await ok("runc", ["--root", `${tmp}/runc`, "run", "--bundle", bundle, "probe"])) {
    commands.push(["runc", `runc --root ${tmp}/runc run --bundle ${bundle} b`]);
  }
  if (await ok("crun", ["--root", `${tmp}/crun`, "run", "--bundle", bundle, "probe"])) {
    commands.push(["crun", `crun --root ${tmp}/crun run --bundle ${bundle} b`]);
  }
  const args = [
    "-N",
    "-w",
    "3",
    "-r",
    String(runs),
    ...(Deno.env.get("BENCH_SHOW") ? ["--show-output"] : []),
  ];
  for (const [name, cmd] of commands) args.push("-n", name, cmd);
  const out = await new Deno.Command("hyperfine", { args, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!out.success) Deno.exitCode = 1;
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
