/**
 * `--sysctl NAME=VALUE`: only the sysctls a container's own namespaces
 * hold, with Docker's list (IPC: kernel.msg*, kernel.sem, kernel.shm*,
 * fs.mqueue.*; network: net.*, which needs the container's own network
 * namespace, as runc checks).
 */

/** Docker's IPC-namespace sysctls. */
const IPC_SYSCTLS: readonly string[] = [
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
];

/**
 * Parses the `--sysctl` values into `linux.sysctl`; `ownNetwork` says
 * whether the container has a network namespace of its own.
 */
export function parseSysctls(
  list: readonly string[],
  ownNetwork: boolean,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of list) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new Error(`invalid sysctl "${arg}": use NAME=VALUE`);
    // Docker accepts kernel/shmmax as well as kernel.shmmax.
    const name = arg.slice(0, eq).replaceAll("/", ".");
    const value = arg.slice(eq + 1);
    if (name.startsWith("net.")) {
      if (!ownNetwork) {
        throw new Error(
          `sysctl "${name}" is not allowed in the host's network namespace: ` +
            "use --network none to give the container its own",
        );
      }
    } else if (!IPC_SYSCTLS.includes(name) && !name.startsWith("fs.mqueue.")) {
      throw new Error(
        `sysctl "${name}" is not allowed: only namespaced sysctls can be set ` +
          "(kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)",
      );
    }
    out[name] = value;
  }
  return out;
}
