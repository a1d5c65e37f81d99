/**
 * OCI bundles and runtime command lines for tests that hold `trun runtime`
 * against runc, the reference for its behaviour.
 *
 * `runcSpecBundle()` writes a busybox rootfs and the `config.json` that
 * `runc spec` generates, then lets the test edit it, so both runtimes read
 * the very same bundle. `runtimeCli()` runs either runtime with a private
 * `--root`, so no test touches the real state of runc or trun.
 *
 * Both runtimes hand their own stdio to the container on `create`, `run
 * -d` and `exec -d`: a pipe would stay open for as long as the container
 * lives. Output therefore goes to files, read once the runtime has exited.
 *
 * See runc(8) and the OCI runtime spec (runtime.md, config.md).
 */

import { MAIN_TS } from "./host.ts";
import { busyboxRootfs } from "./rootfs.ts";

/** What one runtime invocation did. */
export interface CliResult {
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** One OCI runtime's command line with a private state root. */
export interface RuntimeCli {
  /** "runc" or "trun", for assertion messages. */
  name: "runc" | "trun";
  /** The `--root` state directory. */
  root: string;
  /** The command line before the verb: `RUNTIME --root ROOT`. */
  argv: readonly string[];
  /** Runs `RUNTIME --root ROOT ...args` with stdin from /dev/null. */
  run(args: readonly string[]): Promise<CliResult>;
}

/** A generated OCI spec (config.json), loosely typed so tests can edit any field. */
// deno-lint-ignore no-explicit-any
export type Spec = Record<string, any>;

/**
 * Makes `dir/rootfs` a busybox rootfs and `dir/config.json` the output of
 * `runc spec` (at `runc`), changed by `edit`. Returns the spec written.
 */
export async function runcSpecBundle(
  runc: string,
  dir: string,
  edit: (spec: Spec) => void,
  rootless = false,
): Promise<Spec> {
  await busyboxRootfs(`${dir}/rootfs`);
  const out = await new Deno.Command(runc, {
    args: ["spec", "--bundle", dir, ...(rootless ? ["--rootless"] : [])],
    stdin: "null",
  }).output();
  if (!out.success) {
    throw new Error(`"runc spec" failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const spec: Spec = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  edit(spec);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(spec, null, "\t") + "\n");
  return spec;
}

let calls = 0;

/**
 * The command line of runc (`runc` is its path) or of `trun runtime`, with
 * `--root root`. Output files live in `scratch` and are removed after each
 * call; every call is killed after `timeoutMs`.
 */
export function runtimeCli(
  name: "runc" | "trun",
  opts: { runc: string; root: string; scratch: string; timeoutMs?: number },
): RuntimeCli {
  const argv0 = name === "runc"
    ? [opts.runc, "--root", opts.root]
    : [Deno.execPath(), "run", "-A", "--quiet", MAIN_TS, "runtime", "--root", opts.root];
  return {
    name,
    root: opts.root,
    argv: argv0,
    run: async (args) => {
      const n = ++calls;
      const out = `${opts.scratch}/${name}-${n}.out`, err = `${opts.scratch}/${name}-${n}.err`;
      try {
        const status = await new Deno.Command("sh", {
          args: [
            "-c",
            'o=$1 e=$2; shift 2; exec "$@" >"$o" 2>"$e" </dev/null',
            "sh",
            out,
            err,
            ...argv0,
            ...args,
          ],
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "null",
          stderr: "null",
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        }).output();
        const read = (p: string) => Deno.readTextFile(p).catch(() => "");
        return { code: status.code, stdout: await read(out), stderr: await read(err) };
      } finally {
        await Deno.remove(out).catch(() => {});
        await Deno.remove(err).catch(() => {});
      }
    },
  };
}

/** `/proc/PID/cmdline` as a list of arguments, or null when the process is gone. */
export async function cmdlineOf(pid: number): Promise<string[] | null> {
  try {
    const text = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return text.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1);
  } catch {
    return null;
  }
}

/**
 * Calls `check` until it returns true, every 20 ms, for at most `limitMs`;
 * returns its last answer. For states that follow a command asynchronously
 * (a signal delivered, an execve done after `start` returned).
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  limitMs = 5000,
): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (true) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
