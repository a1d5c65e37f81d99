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
      seccomp: {
        enabled: true,
        actions: [
          "SCMP_ACT_ALLOW",
          "SCMP_ACT_ERRNO",
          "SCMP_ACT_KILL",
          "SCMP_ACT_KILL_PROCESS",
          "SCMP_ACT_KILL_THREAD",
          "SCMP_ACT_LOG",
          "SCMP_ACT_TRACE",
          "SCMP_ACT_TRAP",
        ],
        operators: [
          "SCMP_CMP_EQ",
          "SCMP_CMP_GE",
          "SCMP_CMP_GT",
          "SCMP_CMP_LE",
          "SCMP_CMP_LT",
          "SCMP_CMP_MASKED_EQ",
          "SCMP_CMP_NE",
        ],
        archs: ["SCMP_ARCH_X86_64"],
        knownFlags: [
          "SECCOMP_FILTER_FLAG_LOG",
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
          "SECCOMP_FILTER_FLAG_TSYNC",
        ],
        supportedFlags: [
          "SECCOMP_FILTER_FLAG_LOG",
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
          "SECCOMP_FILTER_FLAG_TSYNC",
        ],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { "org.trun.engine": "trun" },
  };
}
