/**
 * Scenarios that run once with each monitor (trun's own, and Podman's
 * conmon when installed): a test registrar and a sandbox whose commands
 * use that monitor (TRUN_MONITOR).
 */
import { type TrunSandbox, trunSandbox } from "./host.ts";
import { busyboxRootfs } from "./rootfs.ts";

/** The monitors a scenario runs with. */
export const MONITORS = ["trun", "conmon"] as const;

/** One of them. */
export type Monitor = (typeof MONITORS)[number];

/** Whether conmon is on $PATH. */
export const conmonInstalled: boolean = await new Deno.Command("sh", {
  args: ["-c", "command -v conmon"],
  stdout: "null",
}).output().then((o) => o.success, () => false);

/** A sandbox whose commands use `monitor`, with a busybox root filesystem. */
export type MonitorSandbox = TrunSandbox & { rootfs: string; monitor: Monitor };

/** A sandbox for `monitor` (trunSandbox's cleanup removes the containers a test left). */
export async function monitorSandbox(monitor: Monitor): Promise<MonitorSandbox> {
  const inner = await trunSandbox();
  return {
    ...inner,
    monitor,
    rootfs: await busyboxRootfs(),
    run: (args, opts = {}) =>
      inner.run(args, { ...opts, env: { TRUN_MONITOR: monitor, ...opts.env } }),
  };
}

/**
 * Registers `name` for `monitor`, skipped with the reason when `base` (from
 * `requires`) says so or conmon is missing; `fn` gets a fresh sandbox.
 */
export function monitorTest(
  monitor: Monitor,
  base: { ignore: boolean; suffix: string },
  name: string,
  fn: (sb: MonitorSandbox) => Promise<void>,
): void {
  const skip = monitor === "conmon" && !conmonInstalled;
  Deno.test({
    name: `${monitor}: ${name}${base.suffix}${
      skip && !base.ignore ? " (skipped: conmon not installed)" : ""
    }`,
    ignore: base.ignore || skip,
    fn: async () => {
      await using sb = await monitorSandbox(monitor);
      await fn(sb);
    },
  });
}
