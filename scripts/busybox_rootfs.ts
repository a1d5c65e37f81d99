/**
 * Writes a small busybox root filesystem (from Debian's busybox-static) into
 * a directory and prints its path: a rootfs to try `trun run --rootfs` on.
 *
 *   deno run -A scripts/busybox_rootfs.ts [DIR]    (default /tmp/trun-busybox)
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { busyboxRootfs } from "../tests/_harness/rootfs.ts";

const dir = Deno.args[0] ?? "/tmp/trun-busybox";
await Deno.remove(dir, { recursive: true }).catch(() => {});
console.log(await busyboxRootfs(dir));
