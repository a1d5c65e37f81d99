/**
 * `features` (runtime-spec features.md): what trun's engine implements, as
 * runc reports it, so engines can ask before they generate a spec. Derived
 * from the tables the engine itself uses.
 */
import { CAPABILITIES } from "../../ffi/syscalls.ts";
import { OCI_VERSION } from "../spec/types.ts";

/** The features document. */
export function featuresDocument(): Record<string, unknown> {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: OCI_VERSION,
    hooks: ["prestart", "createRuntime", "poststart", "poststop"],
    mountOptions: [
      "async",
      "atime",
      "bind",
      "defaults",
      "dev",
      "diratime",
      "exec",
      "noatime",
      "nodev",
      "nodiratime",
      "noexec",
      "nomand",
      "norelatime",
      "nostrictatime",
      "nosuid",
      "private",
      "rbind",
      "relatime",
      "ro",
      "rprivate",
      "rshared",
      "rslave",
      "runbindable",
      "rw",
      "shared",
      "slave",
      "strictatime",
      "suid",
      "unbindable",
    ],
    linux: {
      namespaces: ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
      capabilities: Object.keys(CAPABILITIES),
      cgroup: { v1: false, v2: false, systemd: false, systemdUser: false },
      seccomp: { enabled: false },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { "org.trun.engine": "trun" },
  };
}
