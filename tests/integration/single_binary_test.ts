// Compile-readiness: trun bundled into one file runs from a temporary
// directory after the source tree it came from is gone, so nothing reads
// the source tree at run time (what `deno compile` needs).
import assert from "node:assert/strict";
import { hostCapabilities, REPO_ROOT, requires, sandboxProcessesGone } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const dec = new TextDecoder();

async function run(args: string[], cwd: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd, env, stdin: "null" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

const gate = requires(caps, "userns", "busybox");
Deno.test({
  name: `single binary: the bundled CLI runs without the source tree${gate.suffix}`,
  ignore: gate.ignore,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "trun-bundle-" });
    try {
      const src = `${tmp}/src`, out = `${tmp}/out`;
      for (const d of ["lib", "ffi"]) await copyTree(`${REPO_ROOT}/${d}`, `${src}/${d}`);
      for (const f of ["main.ts", "deno.json", "deno.lock"]) {
        await Deno.copyFile(`${REPO_ROOT}/${f}`, `${src}/${f}`);
      }
      await Deno.mkdir(out);
      const b = await run([
        "bundle",
        "--quiet",
        "--platform",
        "deno",
        "-o",
        `${out}/trun.js`,
        "main.ts",
      ], src);
      assert.equal(b.code, 0, b.stderr);
      await Deno.remove(src, { recursive: true });

      const bundle = await Deno.readTextFile(`${out}/trun.js`);
      assert.match(
        bundle,
        /CLONE_STUB_X86_64_HEX|5341544155415641/,
        "the stub's bytes are inside the bundle",
      );

      const env = { TRUN_ROOT: `${tmp}/store`, TRUN_RUNROOT: `${tmp}/run` };
      const v = await run(["run", "-A", "--quiet", "trun.js", "version"], out, env);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /trun version \d+\.\d+\.\d+/);
      const r = await run(
        [
          "run",
          "-A",
          "--quiet",
          "trun.js",
          "run",
          "--rootfs",
          await busyboxRootfs(),
          "sh",
          "-c",
          "echo from-bundle $$",
        ],
        out,
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "from-bundle 1\n");
      // conmon's exit command records the exit and ends the network helper
      // after `run` has returned: the store must still be there for it.
      await sandboxProcessesGone({ env });
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
