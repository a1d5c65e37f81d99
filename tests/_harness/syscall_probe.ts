/**
 * Builds tests/_harness/syscall_probe.c as a static binary (gcc and
 * libc6-dev, see scripts/setup_host.sh) into a world-readable directory,
 * once per test process, so containers can bind-mount it.
 */
import { findTool } from "./host.ts";

/** Where the probe is: its directory (to bind-mount) and file name, or why it is missing. */
export type SyscallProbe = { dir: string; name: string } | { missing: string };

let built: Promise<SyscallProbe> | undefined;

/** The probe, built on first use; `missing` says why it cannot be built. */
export function syscallProbe(): Promise<SyscallProbe> {
  built ??= (async (): Promise<SyscallProbe> => {
    const gcc = await findTool("gcc");
    if (gcc === null) return { missing: "gcc missing (install gcc and libc6-dev)" };
    const dir = await Deno.makeTempDir({ prefix: "trun-probe-" });
    await Deno.chmod(dir, 0o755);
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const source = new URL("./syscall_probe.c", import.meta.url).pathname;
    const out = await new Deno.Command(gcc, {
      args: ["-static", "-O2", "-o", `${dir}/syscall_probe`, source],
      stdin: "null",
    }).output();
    if (!out.success) {
      return {
        missing: `gcc -static failed (install libc6-dev): ${
          new TextDecoder().decode(out.stderr).trim().split("\n")[0]
        }`,
      };
    }
    return { dir, name: "syscall_probe" };
  })();
  return built;
}
