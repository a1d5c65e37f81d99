/**
 * The security flags `run` and `create` share (`--cap-add`, `--cap-drop`,
 * `--privileged`, `--security-opt`, `--ulimit`, `--sysctl`, `--device`):
 * their grammar, and turning them into run options. Reads what the flags
 * name on the host (a seccomp profile, device nodes); the decisions are in
 * lib/spec.
 */
import type { FlagDefs, FlagValues } from "./args.ts";
import type { RunOptions } from "../spec/generate.ts";

/** The flags' grammar, spread into RUN's. */
export const SECURITY_FLAGS = {
  "cap-add": { kind: "list", value: "CAP", help: "Add a Linux capability (ALL for all)" },
  "cap-drop": { kind: "list", value: "CAP", help: "Drop a Linux capability (ALL for all)" },
  privileged: {
    kind: "bool",
    help: "All capabilities, no seccomp filter, no masked paths, the host's devices",
  },
  "security-opt": {
    kind: "list",
    value: "OPT",
    help:
      "no-new-privileges[=BOOL], seccomp=unconfined|PROFILE.json, mask=PATHS, unmask=PATHS|ALL, apparmor=unconfined",
  },
  ulimit: {
    kind: "list",
    value: "NAME=SOFT[:HARD]",
    help: "Set a resource limit (nofile, nproc…)",
  },
  sysctl: { kind: "list", value: "NAME=VALUE", help: "Set a namespaced kernel parameter" },
  device: {
    kind: "list",
    value: "HOST[:CTR[:PERMS]]",
    help: "Give the container a host device (rootless: a bind of the host's node)",
  },
} as const satisfies FlagDefs;

/** The values of those flags, as parsed. */
export type SecurityFlagValues = FlagValues<typeof SECURITY_FLAGS>;

/**
 * The run options the security flags give, with every value checked (a
 * mistake is reported before any pull). `rootless` says whether the
 * container gets a user namespace (devices are then bound, not made).
 */
export async function securityOptions(
  flags: SecurityFlagValues,
  network: RunOptions["network"],
  rootless: boolean,
): Promise<Partial<RunOptions>> {
  const { parseSecurityOpts } = await import("../spec/security_opt.ts");
  const { capabilityList } = await import("../spec/capabilities.ts");
  const { parseUlimits } = await import("../spec/ulimit.ts");
  const { parseSysctls } = await import("../spec/sysctl.ts");
  const sec = parseSecurityOpts(flags["security-opt"]);
  const { ownBoundingSet } = await import("../container/facts.ts");
  const available = ownBoundingSet();
  capabilityList({
    add: flags["cap-add"],
    drop: flags["cap-drop"],
    ...(available ? { available } : {}),
  });
  parseUlimits(flags.ulimit);
  parseSysctls(flags.sysctl, network.kind !== "host");
  const out: Partial<RunOptions> = {};
  if (flags["cap-add"].length) out.capAdd = flags["cap-add"];
  if (flags["cap-drop"].length) out.capDrop = flags["cap-drop"];
  if (flags.privileged) out.privileged = true;
  if (sec.noNewPrivileges !== undefined) out.noNewPrivileges = sec.noNewPrivileges;
  if (sec.mask.length) out.mask = sec.mask;
  if (sec.unmask.length) out.unmask = sec.unmask;
  if (flags.ulimit.length) out.ulimits = flags.ulimit;
  if (flags.sysctl.length) out.sysctls = flags.sysctl;
  if (sec.seccomp?.kind === "unconfined") out.seccomp = { kind: "unconfined" };
  else if (sec.seccomp?.kind === "file") {
    const path = sec.seccomp.path;
    try {
      out.seccomp = { kind: "profile", path, text: Deno.readTextFileSync(path) };
    } catch (e) {
      throw new Error(`opening seccomp profile "${path}" failed: ${(e as Error).message}`);
    }
  }
  const devices = await deviceRequests(flags, rootless);
  if (devices.length) out.devices = devices;
  return out;
}

/** `--device` values and, with `--privileged`, the host's devices, their nodes looked at. */
async function deviceRequests(
  flags: SecurityFlagValues,
  rootless: boolean,
): Promise<NonNullable<RunOptions["devices"]>> {
  if (flags.device.length === 0 && !flags.privileged) return [];
  const { parseDeviceFlag } = await import("../spec/devices.ts");
  const { deviceNode, hostDevices, rootlessDeviceProblem } = await import("../host/devices.ts");
  const { supplementaryGroups } = await import("../host/access.ts");
  // The engine gives every container these (runc's defaults), and /dev/ptmx.
  const { DEFAULT_DEVICES } = await import("../engine/config.ts");
  const own = new Set([...DEFAULT_DEVICES.map((d) => d.path), "/dev/ptmx"]);
  const out: NonNullable<RunOptions["devices"]> = [];
  if (flags.privileged) {
    for (const d of hostDevices()) {
      // As rootless Podman: the terminals stay the container's own.
      if (own.has(d.path) || (rootless && d.path.startsWith("/dev/tty"))) {
        continue;
      }
      out.push({ hostPath: d.path, containerPath: d.path, permissions: "rwm", node: d.node });
    }
  }
  const who = { uid: Deno.uid() ?? 0, groups: [Deno.gid() ?? 0, ...supplementaryGroups()] };
  for (const arg of flags.device) {
    const req = parseDeviceFlag(arg);
    let node;
    try {
      node = deviceNode(req.hostPath);
    } catch (e) {
      throw new Error(
        `error gathering device information while adding custom device "${req.hostPath}": ${
          (e as Error).message
        }`,
      );
    }
    if (node === null) throw new Error(`"${req.hostPath}" is not a device node`);
    if (rootless) {
      const problem = rootlessDeviceProblem(req.hostPath, node, req.permissions, who);
      if (problem) throw new Error(problem);
    }
    out.push({ ...req, node });
  }
  return out;
}
