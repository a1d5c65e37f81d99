/**
 * The example `config.json` of `trun runtime spec` (runc's `spec`): a
 * container running `sh` with a terminal from the bundle's `rootfs`, with
 * Docker's default capabilities, mounts and masked paths; `--rootless`
 * adds a user namespace mapping root to the caller and binds /sys instead
 * of mounting sysfs, as runc's rootless template does.
 */
import { DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS, standardMounts } from "./defaults.ts";
import { OCI_VERSION, type Spec } from "./types.ts";

/** The template; `rootless` maps root to `uid`/`gid`. */
export function specTemplate(opts: { rootless: boolean; uid: number; gid: number }): Spec {
  const caps = [...DEFAULT_CAPABILITIES];
  const namespaces: NonNullable<NonNullable<Spec["linux"]>["namespaces"]> = [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    { type: opts.rootless ? "user" : "network" },
  ];
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "trun",
    mounts: standardMounts({ ownNetwork: !opts.rootless, ttyGroupMapped: !opts.rootless }),
    linux: {
      namespaces,
      ...(opts.rootless
        ? {
          uidMappings: [{ containerID: 0, hostID: opts.uid, size: 1 }],
          gidMappings: [{ containerID: 0, hostID: opts.gid, size: 1 }],
        }
        : {}),
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}
