/**
 * `trun info` and `trun version`: what this host offers trun, grouped as
 * podman-info(1) does (host, user namespaces, storage, cgroups, network)
 * and followed by the problems with their fixes; and the versions, as
 * docker-version(1). Both take `--format json` (`-f json`) for scripts; the
 * JSON keys are camelCase and stable.
 *
 * The probing lives in lib/runtime/host_probe.ts; this module only parses
 * flags and renders.
 */
// lib/cli/ is where trun talks to the terminal (STYLE.md); deno.json's no-console
// rule has no per-directory exception, so this file opts out.
// deno-lint-ignore-file no-console
import { type CommandDef, defineCommand, helpText, parseArgs, UsageError } from "./args.ts";
import type { DeviceAccess, HelperReport, HostReport, IdSpan, NetworkReport } from "../host/mod.ts";
import { choosePrivateNetwork } from "../host/network.ts";
import { type VersionInfo, versionInfo, versionText } from "../version.ts";

/** The grammar of `trun info`. */
export const INFO_COMMAND = defineCommand({
  name: "info",
  usage: "[OPTIONS]",
  summary: "Display what this host offers rootless containers, and how to fix what is missing",
  flags: {
    format: { short: "f", kind: "string", value: "FORMAT", help: "Output format: json" },
    probe: {
      kind: "bool",
      help: "Also create a user namespace and mount overlay in it (spawns unshare)",
    },
  },
  maxArgs: 0,
});

/** The grammar of `trun version`. */
export const VERSION_COMMAND = defineCommand({
  name: "version",
  usage: "[OPTIONS]",
  summary: "Show the trun version information",
  flags: {
    format: { short: "f", kind: "string", value: "FORMAT", help: "Output format: json" },
  },
  maxArgs: 0,
});

/** What `trun info --format json` prints: the versions, then the host report's groups. */
export type InfoJson = { version: VersionInfo } & HostReport;

/** The JSON document of `trun info --format json`. */
export function infoJson(report: HostReport, version: VersionInfo = versionInfo()): InfoJson {
  return { version, ...report };
}

/** Whether `--format` asks for JSON; anything but json or nothing is a usage error. */
function wantsJson(def: CommandDef, format: string | undefined): boolean {
  if (format === undefined || format === "") return false;
  if (format === "json" || format === "{{json .}}") return true;
  throw new UsageError(def, `unsupported format "${format}": only json is supported`);
}

/**
 * `trun info [--format json] [--probe]`. Returns the exit status; command
 * line mistakes throw UsageError (main prints it with the usage).
 */
export async function infoCommand(argv: string[]): Promise<number> {
  const parsed = parseArgs(INFO_COMMAND, argv);
  if (parsed.help) {
    console.log(helpText(INFO_COMMAND));
    return 0;
  }
  const json = wantsJson(INFO_COMMAND, parsed.flags.format);
  // host_probe is loaded only here: it is not on the `run` path.
  const { probeHost } = await import("../host/mod.ts");
  const report = await probeHost({ active: parsed.flags.probe });
  console.log(json ? JSON.stringify(infoJson(report), null, 2) : renderInfo(report));
  return 0;
}

/** `trun version [--format json]`. */
export function versionCommand(argv: string[]): Promise<number> {
  const parsed = parseArgs(VERSION_COMMAND, argv);
  if (parsed.help) {
    console.log(helpText(VERSION_COMMAND));
    return Promise.resolve(0);
  }
  const json = wantsJson(VERSION_COMMAND, parsed.flags.format);
  console.log(json ? JSON.stringify(versionInfo(), null, 2) : versionText());
  return Promise.resolve(0);
}

const yesNo = (b: boolean) => (b ? "yes" : "no");

function spans(ranges: readonly IdSpan[]): string {
  if (ranges.length === 0) return "none";
  return ranges.map((r) => `${r.start}-${r.start + r.count - 1} (${r.count} ids)`).join(", ");
}

function helper(h: HelperReport): string {
  if (h.path === null) return "not found";
  const how = h.setuidRoot
    ? "setuid root"
    : h.fileCaps === null
    ? "no setuid bit, file capabilities unknown"
    : h.fileCaps.length > 0
    ? `file capabilities ${h.fileCaps.join(",")}`
    : "no setuid bit, no file capabilities";
  return `${h.path} (mode ${h.mode}, ${how})`;
}

/** What `--network private` (the default) resolves to, and why. */
function defaultNetwork(n: NetworkReport): string {
  const choice = choosePrivateNetwork(n);
  return choice.kind === "none"
    ? `none (loopback only): ${choice.why}`
    : `private through ${choice.kind} (${choice.why})`;
}

function device(d: DeviceAccess): string {
  if (!d.exists) return "missing";
  return `mode ${d.mode}, ${d.accessible ? "usable" : "not usable by this user"}`;
}

function located(path: string | null, fs: string | null): string {
  return path === null ? "unknown" : `${path}${fs ? ` (${fs})` : ""}`;
}

/** The human text of `trun info`: aligned groups, then one problem per line. */
export function renderInfo(report: HostReport, version: VersionInfo = versionInfo()): string {
  const { host, userNamespaces: ns, storage, cgroups, network } = report;
  const overlay = storage.kernelOverlay;
  const overlayText = {
    works: "works in a user namespace (tested)",
    fails: "fails in a user namespace (tested)",
    expected: `expected to work (overlay ${overlay.filesystem}` +
      `${host.user.uid === 0 ? "" : ", kernel >= 5.11"}; not tested, --probe tests it)`,
    unavailable: overlay.kernelSupportsUserns
      ? `unavailable (overlay ${overlay.filesystem})`
      : "unavailable (kernel older than 5.11)",
  }[overlay.status];
  const sysctls = [
    `user.max_user_namespaces = ${ns.maxUserNamespaces ?? "absent"}`,
    ns.unprivilegedUsernsClone === null
      ? ""
      : `kernel.unprivileged_userns_clone = ${ns.unprivilegedUsernsClone}`,
    ns.apparmorRestrictUnprivilegedUserns === null
      ? ""
      : `kernel.apparmor_restrict_unprivileged_userns = ${ns.apparmorRestrictUnprivilegedUserns}`,
  ].filter((s) => s).join(", ");
  const mapping = {
    subordinate: "subordinate (root inside is you, other ids are your subordinate ids)",
    single: "single id (only root inside the container)",
    host: "none (running as root: host ids, no user namespace)",
    direct: "given ranges, written by trun itself (root in a user namespace)",
  }[ns.idMapping];
  const cgroupVersion = cgroups.version === "hybrid"
    ? `hybrid (cgroup2 at ${cgroups.v2Mount}; v1: ${cgroups.v1Controllers.join(", ") || "none"})`
    : cgroups.version === "v2"
    ? `v2 (at ${cgroups.v2Mount})`
    : cgroups.version;
  const list = (xs: readonly string[]) => (xs.length > 0 ? xs.join(" ") : "none");

  const groups: [string, [string, string][]][] = [
    ["Host", [
      ["trun", `${version.version} (Deno ${version.deno})`],
      ["Kernel", host.kernel ?? "unknown"],
      ["OS/Arch", `${host.os}/${host.arch}`],
      ["Distribution", host.distribution ?? "unknown"],
      ["User", `${host.user.name} (uid ${host.user.uid}, gid ${host.user.gid})`],
    ]],
    ["User namespaces", [
      [
        "Allowed",
        `${yesNo(ns.allowed)} (${sysctls}; ${
          ns.tested === "not tested" ? "not tested, --probe tests it" : `tested: ${ns.tested}`
        })`,
      ],
      ["newuidmap", helper(ns.newuidmap)],
      ["newgidmap", helper(ns.newgidmap)],
      ["Subordinate uids", spans(ns.subuidRanges)],
      ["Subordinate gids", spans(ns.subgidRanges)],
      ["Id mapping", mapping],
    ]],
    ["Storage", [
      ["Store", located(storage.storeRoot, storage.storeFilesystem)],
      ["Runtime", located(storage.runtimeRoot, storage.runtimeFilesystem)],
      ["Kernel overlay", overlayText],
      ["fuse-overlayfs", storage.fuseOverlayfs ?? "not found"],
      ["/dev/fuse", device(storage.devFuse)],
    ]],
    ["Cgroups", [
      ["Version", cgroupVersion],
      [
        "Own cgroup",
        cgroups.ownCgroup === null
          ? "unknown"
          : `${cgroups.ownCgroup} (${cgroups.writable ? "writable" : "not writable"})`,
      ],
      ["Controllers", list(cgroups.controllers)],
      ["Subtree control", list(cgroups.subtreeControl)],
      ["Delegated", cgroups.delegated ?? cgroups.userServiceCgroup ?? "none"],
      [
        "Limits",
        cgroups.delegated === null ? "none" : list(cgroups.delegatedControllers),
      ],
      ["Containers go to", cgroups.containerParent ?? "trun's own cgroup (no cgroup of their own)"],
    ]],
    ["Network", [
      ["pasta", network.pasta ?? "not found"],
      ["slirp4netns", network.slirp4netns ?? "not found"],
      ["/dev/net/tun", device(network.devNetTun)],
      ["Default network", defaultNetwork(network)],
    ]],
  ];
  const width = Math.max(...groups.flatMap(([, rows]) => rows.map(([k]) => k.length))) + 2;
  const lines: string[] = [];
  for (const [title, rows] of groups) {
    lines.push(`${title}:`);
    for (const [k, v] of rows) lines.push(`  ${`${k}:`.padEnd(width)}${v}`);
  }
  lines.push("");
  if (report.problems.length === 0) lines.push("No problems found.");
  else {
    lines.push(`Problems (${report.problems.length}):`);
    for (const p of report.problems) lines.push(`  - ${p}`);
  }
  return lines.join("\n");
}
