/**
 * Unit tests of lib/cli/info.ts and lib/version.ts: the JSON shape of
 * `trun info --format json` (stable camelCase keys), the grouped text, the
 * flag handling, and `trun version`.
 */
import assert from "node:assert/strict";
import { infoCommand, infoJson, renderInfo, versionCommand } from "../../lib/cli/info.ts";
import { UsageError } from "../../lib/cli/args.ts";
import { type HostReport, probeHost } from "../../lib/host/mod.ts";
import { VERSION, versionInfo, versionText } from "../../lib/version.ts";

/** The report of a host where nothing exists: every field takes its "missing" form. */
async function emptyHostReport(): Promise<HostReport> {
  const root = await Deno.makeTempDir({ prefix: "trun-info-test-" });
  try {
    return await probeHost({
      root,
      uid: 4242,
      gid: 4242,
      groups: [4242],
      pathEnv: "/usr/bin",
      paths: { uid: 4242, env: { TRUN_ROOT: `${root}/store`, TRUN_RUNROOT: `${root}/run` } },
      readFileCaps: () => null,
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Every key path of a JSON value (`storage.devFuse.mode`); array items as `[]`. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.length > 0 ? keyPaths(value[0], `${prefix}[]`) : [];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return [path, ...keyPaths(v, path)];
  });
}

const STABLE_KEYS = [
  "version",
  "version.version",
  "version.deno",
  "version.v8",
  "version.typescript",
  "version.os",
  "version.arch",
  "version.standalone",
  "host",
  "host.os",
  "host.arch",
  "host.kernel",
  "host.distribution",
  "host.user",
  "host.user.name",
  "host.user.uid",
  "host.user.gid",
  "userNamespaces",
  "userNamespaces.allowed",
  "userNamespaces.maxUserNamespaces",
  "userNamespaces.unprivilegedUsernsClone",
  "userNamespaces.apparmorRestrictUnprivilegedUserns",
  "userNamespaces.tested",
  "userNamespaces.newuidmap",
  "userNamespaces.newuidmap.path",
  "userNamespaces.newuidmap.mode",
  "userNamespaces.newuidmap.setuidRoot",
  "userNamespaces.newuidmap.fileCaps",
  "userNamespaces.newuidmap.usable",
  "userNamespaces.newgidmap",
  "userNamespaces.newgidmap.path",
  "userNamespaces.newgidmap.mode",
  "userNamespaces.newgidmap.setuidRoot",
  "userNamespaces.newgidmap.fileCaps",
  "userNamespaces.newgidmap.usable",
  "userNamespaces.subuidRanges",
  "userNamespaces.subgidRanges",
  "userNamespaces.idMapping",
  "storage",
  "storage.storeRoot",
  "storage.storeFilesystem",
  "storage.runtimeRoot",
  "storage.runtimeFilesystem",
  "storage.kernelOverlay",
  "storage.kernelOverlay.filesystem",
  "storage.kernelOverlay.kernelSupportsUserns",
  "storage.kernelOverlay.status",
  "storage.kernelOverlay.tested",
  "storage.fuseOverlayfs",
  "storage.devFuse",
  "storage.devFuse.path",
  "storage.devFuse.exists",
  "storage.devFuse.mode",
  "storage.devFuse.accessible",
  "cgroups",
  "cgroups.version",
  "cgroups.v2Mount",
  "cgroups.v2MountRoot",
  "cgroups.v1Controllers",
  "cgroups.ownCgroup",
  "cgroups.controllers",
  "cgroups.subtreeControl",
  "cgroups.writable",
  "cgroups.userServiceCgroup",
  "cgroups.delegated",
  "cgroups.containerParent",
  "cgroups.delegatedControllers",
  "network",
  "network.pasta",
  "network.slirp4netns",
  "network.devNetTun",
  "network.devNetTun.path",
  "network.devNetTun.exists",
  "network.devNetTun.mode",
  "network.devNetTun.accessible",
  "problems",
];

Deno.test("infoJson() keeps its stable camelCase keys", async () => {
  const doc = JSON.parse(JSON.stringify(infoJson(await emptyHostReport())));
  assert.deepEqual(keyPaths(doc), STABLE_KEYS);
  for (const path of STABLE_KEYS) {
    for (const key of path.split(".")) assert.match(key, /^[a-z][a-zA-Z0-9]*$/, path);
  }
});

Deno.test("probeHost() on an empty tree reports what is missing, one line each", async () => {
  const r = await emptyHostReport();
  assert.equal(r.host.kernel, null);
  assert.equal(r.host.user.name, "4242");
  assert.equal(r.cgroups.version, "none");
  const starts = r.problems.map((p) => p.slice(0, p.indexOf(":")));
  assert.deepEqual(starts, [
    "user namespaces are not available (no /proc/sys/user/max_user_namespaces)",
    "newuidmap and newgidmap not found",
    'no subordinate uid range for "4242" in /etc/subuid',
    'no subordinate gid range for "4242" in /etc/subgid',
    "the kernel version is unknown (no /proc/sys/kernel/osrelease)",
    "no cgroup file system is mounted",
    "neither pasta nor slirp4netns found",
  ]);
});

Deno.test("renderInfo() groups the report and lists the problems last", async () => {
  const report = await emptyHostReport();
  const text = renderInfo(report);
  const headings = text.split("\n").filter((l) => /^\S.*:$/.test(l));
  assert.deepEqual(headings, [
    "Host:",
    "User namespaces:",
    "Storage:",
    "Cgroups:",
    "Network:",
    `Problems (${report.problems.length}):`,
  ]);
  assert.match(text, /^ {2}newuidmap: +not found$/m);
  assert.match(text, /^ {2}\/dev\/fuse: +missing$/m);
  assert.ok(text.endsWith(`  - ${report.problems.at(-1)}`));
});

Deno.test("renderInfo() says so when there is no problem", async () => {
  const report = { ...(await emptyHostReport()), problems: [] };
  assert.ok(renderInfo(report).endsWith("\nNo problems found."));
});

/** Runs `fn` with console.log captured; returns what it printed. */
async function captureLog(fn: () => Promise<unknown>): Promise<string> {
  const lines: string[] = [];
  // deno-lint-ignore no-console
  const original = console.log;
  // deno-lint-ignore no-console
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await fn();
  } finally {
    // deno-lint-ignore no-console
    console.log = original;
  }
  return lines.join("\n");
}

for (const argv of [["--format", "json"], ["-f", "json"], ["--format=json"], ["-fjson"]]) {
  Deno.test(`infoCommand() prints the JSON document for ${argv.join(" ")}`, async () => {
    let status = -1;
    const out = await captureLog(async () => status = await infoCommand(argv));
    assert.equal(status, 0);
    const doc = JSON.parse(out);
    assert.deepEqual(Object.keys(doc), [
      "version",
      "host",
      "userNamespaces",
      "storage",
      "cgroups",
      "network",
      "problems",
    ]);
    assert.equal(doc.version.version, VERSION);
  });
}

const USAGE_ERRORS: [string[], RegExp][] = [
  [["--format", "yaml"], /unsupported format "yaml": only json is supported/],
  [["--nope"], /unknown flag: --nope/],
  [["extra"], /accepts no arguments/],
];
for (const [argv, message] of USAGE_ERRORS) {
  Deno.test(`infoCommand() rejects ${argv.join(" ")} as a usage error`, async () => {
    await assert.rejects(infoCommand(argv), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("versionText() names trun, Deno, V8, TypeScript and the platform", () => {
  const text = versionText();
  assert.ok(text.startsWith(`trun version ${VERSION}\n`));
  assert.match(text, new RegExp(`^ Deno: +${Deno.version.deno.replaceAll(".", "\\.")}$`, "m"));
  assert.match(text, /^ V8: +\S+$/m);
  assert.match(text, /^ TypeScript: +\S+$/m);
  assert.match(text, /^ OS\/Arch: +linux\/(amd64|arm64)$/m);
});

Deno.test("versionCommand() prints versionInfo() as JSON with --format json", async () => {
  const out = await captureLog(() => versionCommand(["--format", "json"]));
  assert.deepEqual(JSON.parse(out), versionInfo());
});

Deno.test("VERSION matches deno.json's version", () => {
  // Tests may read the source tree; the binary never does (hence the constant).
  const config = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)));
  assert.equal(VERSION, config.version);
});
