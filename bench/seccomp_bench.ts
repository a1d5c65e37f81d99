/**
 * The seccomp filter side by side with runc's (libseccomp 2.5), for the
 * same busybox bundle and profile: no filter, trun's default profile, and
 * Podman's default profile (/usr/share/containers/seccomp.json). Reports
 *
 * - the filters themselves, read back from running containers
 *   (bench/seccomp_filter_dump.c): their length and how many BPF
 *   instructions a call runs through (mean and worst over the x86-64 table,
 *   and for a few common calls), counted by the tests' interpreter;
 * - a syscall-heavy loop in the container (`dd bs=1 count=N`, two calls per
 *   byte): the best of several `time` runs, real and sys;
 * - the cost of resolving, checking and compiling the default profile.
 *
 * Run as root, with gcc (the dump helper) and runc installed:
 *
 *   deno run -A bench/seccomp_bench.ts [--count 2000000] [--repeat 7]
 *
 * Numbers are reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { busyboxRootfs } from "../tests/_harness/rootfs.ts";
import { runFilter } from "../tests/unit/_bpf_interpreter.ts";
import { AUDIT_ARCH, decodeSockFilters } from "../ffi/syscalls.ts";
import { SYSCALL_TABLE_X86_64 } from "../ffi/syscall_table_x86_64.ts";
import { DEFAULT_SECCOMP_PROFILE, resolveSeccompProfile } from "../lib/spec/seccomp_profile.ts";
import { parseDockerSeccompProfile } from "../lib/spec/seccomp_docker.ts";
import { seccompPlan } from "../lib/engine/seccomp_config.ts";
import { compiledSeccomp } from "../lib/engine/seccomp_bpf.ts";
import { DEFAULT_CAPABILITIES } from "../lib/spec/defaults.ts";

const arg = (name: string, dflt: number) =>
  Number(Deno.args[Deno.args.indexOf(name) + 1] || dflt) || dflt;
const count = arg("--count", 2_000_000);
const repeat = arg("--repeat", 7);
const main = new URL("../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

// Compile cost first, in a process that has not compiled anything yet.
{
  const t0 = performance.now();
  const spec = resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, {
    capabilities: DEFAULT_CAPABILITIES,
    arch: "amd64",
  });
  const t1 = performance.now();
  const plan = seccompPlan(JSON.parse(JSON.stringify(spec)));
  const t2 = performance.now();
  const bytes = compiledSeccomp(plan);
  const t3 = performance.now();
  console.log(
    `default profile: resolve ${(t1 - t0).toFixed(2)} ms, check ${(t2 - t1).toFixed(2)} ms, ` +
      `compile ${(t3 - t2).toFixed(2)} ms (first time in this process; ${
        bytes.length / 8
      } instructions)`,
  );
}

if (Deno.uid() !== 0) {
  console.log("(the runtime comparison needs root: runc and the filter dump)");
  Deno.exit(0);
}
const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "trun-seccomp-bench-" }));
async function sh(
  cmd: string,
  args: string[],
  quiet = false,
): Promise<{ ok: boolean; out: string; err: string }> {
  // A detached container keeps its stdio: it must not be a pipe this script waits on.
  const io = quiet ? "null" : "piped";
  const o = await new Deno.Command(cmd, { args, stdin: "null", stdout: io, stderr: io }).output();
  return {
    ok: o.success,
    out: quiet ? "" : dec.decode(o.stdout),
    err: quiet ? "" : dec.decode(o.stderr),
  };
}
try {
  const dump = `${tmp}/dump`;
  const built = await sh("gcc", [
    "-O2",
    "-o",
    dump,
    new URL("./seccomp_filter_dump.c", import.meta.url).pathname,
  ]);
  if (!built.ok) throw new Error(`gcc: ${built.err}`);
  const rootfs = await busyboxRootfs(`${tmp}/rootfs`);
  const profiles: Record<string, ((caps: string[]) => unknown) | null> = {
    none: null,
    trun: (caps) =>
      resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, { capabilities: caps, arch: "amd64" }),
    podman: (caps) =>
      resolveSeccompProfile(
        parseDockerSeccompProfile(
          Deno.readTextFileSync("/usr/share/containers/seccomp.json"),
          "podman",
        ),
        { capabilities: caps, arch: "amd64" },
      ),
  };
  const loop =
    `for i in $(seq ${repeat}); do time dd bs=1 count=${count} if=/dev/zero of=/dev/null; done`;
  /** `run [-d] --bundle B ID` of a runtime with runc's command line. */
  const runtime =
    (cmd: string, pre: string[], root: string) => (id: string, bundle: string, detach = false) =>
      sh(
        cmd,
        [...pre, "--root", root, "run", ...(detach ? ["-d"] : []), "--bundle", bundle, id],
        detach,
      );
  const runtimes = {
    runc: runtime("runc", [], `${tmp}/runc-root`),
    trun: runtime(Deno.execPath(), ["run", "-A", main, "runtime"], `${tmp}/trun-root`),
  };
  for (const [name, profile] of Object.entries(profiles)) {
    for (
      const [purpose, args] of [["loop", ["sh", "-c", loop]], ["filter", ["sleep", "60"]]] as const
    ) {
      const bundle = `${tmp}/b-${name}-${purpose}`;
      await Deno.mkdir(bundle);
      await sh("runc", ["spec", "--bundle", bundle]);
      const spec = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
      spec.root.path = rootfs;
      spec.process.terminal = false;
      spec.process.args = args;
      delete spec.process.capabilities.ambient;
      if (profile) spec.linux.seccomp = profile(spec.process.capabilities.bounding);
      await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(spec));
    }
    for (const [rt, start] of Object.entries(runtimes)) {
      const id = `${rt}-${name}`;
      const r = await start(id, `${tmp}/b-${name}-loop`);
      const times = (key: string) =>
        [...(r.out + r.err).matchAll(new RegExp(`^${key}\\s+(\\d+)m ?([\\d.]+)s`, "gm"))]
          .map((m) => Number(m[1]) * 60 + Number(m[2])).sort((a, b) => a - b);
      const real = times("real"), sys = times("sys");
      let line =
        `${rt} with ${name} filter: dd of ${count} bytes (${
          2 * count
        } calls), best of ${real.length}: ` +
        `real ${real[0]?.toFixed(2)} s, sys ${sys[0]?.toFixed(2)} s`;
      if (profile) {
        const fid = `${id}-f`;
        await start(fid, `${tmp}/b-${name}-filter`, true);
        const state = JSON.parse(
          rt === "runc"
            ? (await sh("runc", ["--root", `${tmp}/runc-root`, "state", fid])).out
            : (await sh(Deno.execPath(), [
              "run",
              "-A",
              main,
              "runtime",
              "--root",
              `${tmp}/trun-root`,
              "state",
              fid,
            ])).out,
        );
        const bin = await new Deno.Command(dump, { args: [String(state.pid)] }).output();
        if (!bin.success) throw new Error(`${rt}: reading the filter: ${dec.decode(bin.stderr)}`);
        await (rt === "runc"
          ? sh("runc", ["--root", `${tmp}/runc-root`, "delete", "-f", fid])
          : sh(Deno.execPath(), [
            "run",
            "-A",
            main,
            "runtime",
            "--root",
            `${tmp}/trun-root`,
            "delete",
            "-f",
            fid,
          ]));
        const prog = decodeSockFilters(bin.stdout);
        const steps = (nr: number) =>
          runFilter(prog, { nr, arch: AUDIT_ARCH.X86_64, args: [0x11n] }).steps;
        const all = Object.values(SYSCALL_TABLE_X86_64).map(steps);
        const some = ["read", "write", "futex", "openat", "mmap", "clone"]
          .map((c) => `${c} ${steps(SYSCALL_TABLE_X86_64[c]!)}`).join(", ");
        line += `; filter of ${prog.length} instructions, a call runs ${
          (all.reduce((a, b) => a + b, 0) / all.length).toFixed(1)
        } on average (worst ${Math.max(...all)}; ${some})`;
      }
      console.log(line);
    }
  }
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
