/**
 * `trun run` and `trun create`: flags → run options → a container record
 * with its spec (`container/detached.ts`) → its monitor, and in the
 * foreground an attach until it exits. Holds no runtime logic; it parses,
 * reads the files the flags name, and renders errors.
 */
import { trace } from "../util/trace.ts";
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { ATTACH_FLAGS } from "./attach_flags.ts";
import { SECURITY_FLAGS } from "./security_flags.ts";
import { CGROUPS_FLAG, type CgroupsMode, RESOURCE_FLAGS } from "./resource_flags.ts";
import { systemErrorText } from "../util/errors.ts";
import { printHelp, println, warn } from "./output.ts";
import { ensureRuntimeRoot } from "../runtime/runtime_dir.ts";
import type { ImageProcessConfig, RunOptions } from "../spec/generate.ts";
import { findExecutable, type IdMapping, loadIdMapping } from "../runtime/idmap.ts";

/** `--userns=single`: keep only the 0 → user line of a mapping. */
function singleIdMapping(m: IdMapping): IdMapping {
  return { mode: "single", uid: m.uid.slice(0, 1), gid: m.gid.slice(0, 1) };
}

/** The grammar of `trun run`. */
export const RUN = defineCommand({
  name: "run",
  usage:
    "[OPTIONS] IMAGE [COMMAND] [ARG...]\n        trun run [OPTIONS] --rootfs DIR COMMAND [ARG...]",
  summary: "Create and run a new container from an image or a root filesystem directory",
  interspersed: false,
  flags: {
    rootfs: {
      kind: "bool",
      help: "The first argument is a root filesystem directory, not an image",
    },
    env: {
      short: "e",
      kind: "list",
      value: "NAME=VALUE",
      help: "Set an environment variable",
    },
    "env-file": {
      kind: "list",
      value: "FILE",
      help: "Read environment variables from a file",
    },
    workdir: {
      short: "w",
      kind: "string",
      value: "DIR",
      help: "Working directory inside the container",
    },
    user: {
      short: "u",
      kind: "string",
      value: "USER[:GROUP]",
      help: "User name or uid (and group) to run as",
    },
    "group-add": { kind: "list", value: "GROUP", help: "Add a supplementary group" },
    volume: {
      short: "v",
      kind: "list",
      value: "[SRC:]CTR[:OPTS]",
      help:
        "Bind mount a host path (absolute SRC), mount a named volume, or an anonymous one (CTR alone)",
    },
    mount: {
      kind: "list",
      value: "type=…,…",
      help: "Attach a mount: type=bind|volume|tmpfs, source=, target=, readonly, volume-nocopy…",
    },
    tmpfs: {
      kind: "list",
      value: "PATH[:OPTS]",
      help: "Mount a tmpfs (rw,noexec,nosuid,nodev, then OPTS such as size=64m,mode=1777)",
    },
    cidfile: { kind: "string", value: "FILE", help: "Write the container id to the file" },
    hostname: { short: "h", kind: "string", value: "NAME", help: "Container hostname" },
    "read-only": { kind: "bool", help: "Mount the container's root filesystem read-only" },
    userns: {
      kind: "string",
      value: "MODE",
      help: "auto (subordinate ids when available) or single (only root mapped)",
    },
    network: {
      kind: "list",
      value: "NETWORK",
      help: "private (default: own namespace through pasta or slirp4netns), none, host, " +
        "pasta[:OPTS], slirp4netns[:OPTS], container:NAME|ID, or a network's name (repeatable)",
    },
    "network-alias": {
      kind: "list",
      value: "ALIAS",
      help: "Another name for the container on its user-defined networks",
    },
    "add-host": {
      kind: "list",
      value: "NAME:IP",
      help: "Add a line to /etc/hosts (IP may be host-gateway: the host's address)",
    },
    dns: { kind: "list", value: "IP", help: "Set a DNS server in /etc/resolv.conf" },
    "dns-search": {
      kind: "list",
      value: "DOMAIN",
      help: 'Set a DNS search domain in /etc/resolv.conf ("." for none)',
    },
    "dns-option": {
      kind: "list",
      value: "OPTION",
      help: "Set a resolver option in /etc/resolv.conf",
    },
    domainname: { kind: "string", value: "NAME", help: "Container NIS domain name" },
    publish: {
      short: "p",
      kind: "list",
      value: "[IP:][HOSTPORT:]PORT[/PROTO]",
      help: "Publish a container's port (or range) on the host",
    },
    "publish-all": {
      short: "P",
      kind: "bool",
      help: "Publish every exposed port on a free host port",
    },
    expose: { kind: "list", value: "PORT[/PROTO]", help: "Expose a port (or range) for -P" },
    pull: {
      kind: "string",
      value: "POLICY",
      help: "Pull the image: missing (default), always or never",
    },
    platform: { kind: "string", value: "OS/ARCH", help: "Platform of the image to pull" },
    entrypoint: { kind: "string", value: "CMD", help: "Override the image's entrypoint" },
    interactive: {
      short: "i",
      kind: "bool",
      help: "Keep stdin open: the container reads trun's stdin (else /dev/null)",
    },
    tty: {
      short: "t",
      kind: "bool",
      help: "Allocate a pseudo-terminal",
    },
    rm: {
      kind: "bool",
      help: "Remove the container when it exits",
    },
    restart: {
      kind: "string",
      value: "POLICY",
      help: "no, on-failure[:N], always or unless-stopped (applied by the monitor)",
    },
    attach: {
      short: "a",
      kind: "list",
      value: "STREAM",
      help: "Attach to STDIN, STDOUT or STDERR (default: the output streams, and stdin with -i)",
    },
    init: {
      kind: "bool",
      help:
        "Run an init (the host's catatonit or tini) as PID 1: it reaps zombies and passes signals on",
    },
    detach: {
      short: "d",
      kind: "bool",
      help: "Run the container in the background and print its id",
    },
    name: { kind: "string", value: "NAME", help: "Name the container" },
    label: { short: "l", kind: "list", value: "KEY=VALUE", help: "Set a label" },
    "stop-signal": {
      kind: "string",
      value: "SIGNAL",
      help: "Signal `trun stop` sends first (default SIGTERM)",
    },
    "stop-timeout": {
      kind: "string",
      value: "SECONDS",
      help: "Seconds `trun stop` waits before SIGKILL (default 10)",
    },
    ...SECURITY_FLAGS,
    ...RESOURCE_FLAGS,
    ...CGROUPS_FLAG,
    ...ATTACH_FLAGS,
    debug: { kind: "bool", help: "Print the container plan and start timings to stderr" },
  },
});

/** The grammar of `trun create`: run's flags, and it stops before the start. */
export const CREATE = defineCommand({
  ...RUN,
  name: "create",
  summary: "Create a new container",
  usage: RUN.usage.replaceAll("run", "create"),
});

/** The host's init for `--init` (catatonit, then tini), or an error saying what to install. */
function findInit(): string {
  const path = `${Deno.env.get("PATH") ?? ""}:/usr/libexec/podman:/usr/local/libexec/podman`;
  const found = findExecutable("catatonit", path) ?? findExecutable("tini-static", path) ??
    findExecutable("tini", path);
  if (!found) {
    throw Object.assign(
      new Error(
        "--init needs catatonit or tini on the host: install the catatonit (or tini) package",
      ),
      { exitCode: 125 },
    );
  }
  return found;
}

/** Parses `-l KEY=VALUE` labels (a bare KEY has an empty value, as Docker's). */
function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf("=");
    if (eq === 0) throw new UsageError(RUN, `invalid label "${l}": the key is empty`);
    out[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
  }
  return out;
}

/** How `runRecorded` goes on once the container is recorded. */
type RunMode = "detach" | "create" | "foreground";

/**
 * Every `run` and `create`: records the container with its writable layer
 * on disk, then (except `create`) starts it beside its monitor. `-d`
 * prints its id once it runs; in the foreground trun attaches before the
 * start, relays until the container exits (its status is trun's) or the
 * detach keys are typed. A container that could not start stays (exited,
 * with the error) unless `--rm`, as with Docker.
 */
async function runRecorded(
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
  mode: RunMode,
  what: {
    layers: string[];
    image: ImageProcessConfig;
    imageId: string;
    target: string;
    options: RunOptions;
    idMapping: IdMapping;
    tCli: number;
    cgroup?: { parent: string; parentDir: string };
    network: import("../store/containers.ts").ContainerNetwork;
    early?: EarlyConmon;
    /** trun's own monitor, started by `main` ahead of the record. */
    ownMonitor?: EarlyMonitor;
  },
): Promise<number> {
  trace("image ready");
  if (mode === "detach" && flags.attach.length > 0) {
    throw new UsageError(RUN, "conflicting options: -a and -d");
  }
  let restartPolicy;
  if (flags.restart !== undefined) {
    const { parseRestartPolicy } = await import("../container/restart.ts");
    try {
      restartPolicy = parseRestartPolicy(flags.restart);
    } catch (e) {
      throw new UsageError(RUN, (e as Error).message);
    }
    if (flags.rm && restartPolicy.name !== "no") {
      throw new UsageError(RUN, "conflicting options: --restart and --rm");
    }
  }
  const timeout = flags["stop-timeout"] === undefined ? undefined : Number(flags["stop-timeout"]);
  if (timeout !== undefined && !Number.isInteger(timeout)) {
    throw new UsageError(RUN, `invalid --stop-timeout "${flags["stop-timeout"]}"`);
  }
  let streams;
  let detachKeys;
  if (mode === "foreground") {
    const { attachStreams } = await import("../container/attach_protocol.ts");
    const { DEFAULT_DETACH_KEYS, parseDetachKeys } = await import(
      "../container/detach_keys.ts"
    );
    try {
      streams = attachStreams(flags.attach, flags.interactive);
      detachKeys = parseDetachKeys(flags["detach-keys"] ?? DEFAULT_DETACH_KEYS);
    } catch (e) {
      throw new UsageError(RUN, (e as Error).message);
    }
  }
  const { openStore } = await import("../store/mod.ts");
  const detached = await import("../container/detached.ts");
  const { newContainerId } = await import("../container/facts.ts");
  const open = () => openStore(undefined, { repair: false });
  const store = openStore();
  const id = what.early?.id ?? what.ownMonitor?.id ?? newContainerId();
  // trun's own monitor, started by `main` so that its start-up overlaps
  // the image lookup and the record's creation.
  const pending = what.ownMonitor ? takeMonitor(what.ownMonitor) : undefined;
  let rec;
  let dir;
  try {
    const volumes = await prepareVolumesOf(store, what.options, what.layers, what.idMapping);
    try {
      rec = detached.createDetached({
        store,
        id,
        layers: what.layers,
        imageId: what.imageId,
        image: what.target,
        imageConfig: what.image,
        options: what.options,
        network: what.network,
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        autoRemove: flags.rm,
        labels: parseLabels(flags.label),
        ...(flags["stop-signal"] !== undefined ? { stopSignal: flags["stop-signal"] } : {}),
        ...(timeout !== undefined ? { stopTimeout: timeout } : {}),
        idMapping: what.idMapping,
        ...(restartPolicy ? { restartPolicy } : {}),
        stdin: flags.interactive,
        stdinOnce: mode === "foreground",
        ...(volumes ? { volumes } : {}),
        ...(what.cgroup ? { cgroup: what.cgroup } : {}),
        ...(flags.debug
          ? { onSpec: (spec) => warn(`config.json: ${JSON.stringify(spec, null, 2)}`) }
          : {}),
      });
    } catch (e) {
      const { removeUnusedVolumes } = await import("../container/volumes.ts");
      removeUnusedVolumes(
        store,
        volumes?.volumes.filter((v) => v.anonymous).map((v) => v.name) ?? [],
      );
      throw e;
    }
    dir = store.containerDir(rec.id);
    if (what.early) what.early.recorded = true;
  } catch (e) {
    if (pending) detached.abandonMonitor(pending);
    throw e;
  } finally {
    store.close();
  }
  if (flags.cidfile !== undefined) writeCidfile(flags.cidfile, rec.id);
  const tCreated = performance.now();
  trace("recorded");
  if (mode === "create") {
    println(rec.id);
    return 0;
  }
  const early = what.early ? handOver(what.early) : undefined;
  if (mode === "detach") {
    const report = await detached.startDetached(rec, dir, undefined, pending, early);
    if (!report.ok) throw Object.assign(new Error(report.error), { exitCode: report.exitCode });
    println(rec.id);
    return 0;
  }
  const attach = await import("../container/attach.ts");
  let conn = -1;
  const userdata = `${dir}/userdata`;
  const report = await detached.startDetached(
    rec,
    dir,
    () => {
      conn = attach.connectAttach(userdata, rec.name);
    },
    pending,
    early,
  );
  const tStarted = performance.now();
  if (!report.ok) {
    if (conn >= 0) (await import("../../ffi/child_program.ts")).closeFd(conn);
    if (flags.rm) await (await import("../container/ops.ts")).removeAtExit(open, rec.id);
    throw Object.assign(new Error(report.error), { exitCode: report.exitCode });
  }
  const end = await attach.attachAndWait(
    open,
    {
      id: rec.id,
      dir,
      pid: report.pid,
      autoRemove: flags.rm,
    },
    conn,
    {
      userdata,
      streams: streams!,
      tty: what.options.tty,
      detachKeys: detachKeys!,
      ...(flags["sig-proxy"] && !what.options.tty ? { sigProxyPid: report.pid } : {}),
    },
  );
  if (flags.debug) {
    // performance.now() counts from the start of the Deno process.
    const t = report.timings;
    warn(
      `timings: cli loaded at ${what.tCli.toFixed(1)} ms, recorded at ${tCreated.toFixed(1)} ms, ` +
        `running at ${tStarted.toFixed(1)} ms, output ended at ${performance.now().toFixed(1)} ms` +
        (t
          ? `; in the monitor: clone ${t.clone.toFixed(1)} ms, id maps ${
            t.idMaps.toFixed(1)
          } ms, to exec ${t.exec.toFixed(1)} ms`
          : ""),
    );
  }
  return end.detached ? 0 : end.exitCode;
}

/** Whether the options ask for any mount of lib/spec/mounts.ts. */
function hasMounts(o: RunOptions): boolean {
  return o.volumes.length + (o.mounts?.length ?? 0) + (o.tmpfs?.length ?? 0) > 0;
}

/** Makes the container's volumes ready (lib/container/volumes.ts), when it has mounts. */
async function prepareVolumesOf(
  store: import("../store/mod.ts").Store,
  options: RunOptions,
  layers: string[],
  idMapping: IdMapping,
): Promise<import("../container/volumes.ts").PreparedVolumes | undefined> {
  if (!hasMounts(options)) return undefined;
  const { prepareVolumes } = await import("../container/volumes.ts");
  return await prepareVolumes(store, options, layers, idMapping);
}

/** `--cidfile`: refused when the file exists, as Docker does (checked before anything is made). */
function checkCidfile(path: string): void {
  try {
    Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  throw Object.assign(
    new Error(
      `Container ID file found, make sure the other container isn't running or delete ${path}`,
    ),
    { exitCode: 125 },
  );
}

/** Writes the container id to `--cidfile` (a new file: another trun may race for it). */
function writeCidfile(path: string, id: string): void {
  try {
    Deno.writeTextFileSync(path, id, { createNew: true });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) checkCidfile(path);
    throw Object.assign(
      new Error(`writing the container id to "${path}": ${(e as Error).message}`),
      { exitCode: 125 },
    );
  }
}

/** Reads an `--env-file`, with an error naming it. */
function readEnvFile(name: string): { name: string; text: string } {
  try {
    return { name, text: Deno.readTextFileSync(name) };
  } catch (e) {
    throw new Error(`reading env file "${name}": ${systemErrorText(e)}`);
  }
}

/**
 * The network and the name flags (`--network`, `--network-alias`, `--hostname`,
 * `--domainname`, `--add-host`, `--dns*`), checked as Docker checks them,
 * before anything is pulled or made.
 */
async function nameOptions(
  def: typeof RUN,
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
): Promise<{
  network: RunOptions["network"];
  networks: { name: string; aliases: string[] }[];
  options: Partial<RunOptions>;
}> {
  const { parseNetworkMode } = await import("../spec/network_mode.ts");
  const etc = await import("../spec/etc_files.ts");
  const modes = flags.network.map((v) => {
    try {
      return parseNetworkMode(v);
    } catch (e) {
      throw new UsageError(def, (e as Error).message);
    }
  });
  // User-defined networks (--network NAME, once per network) or one mode.
  const names = [...new Set(modes.flatMap((m) => m.kind === "network" ? [m.name] : []))];
  const aliases = flags["network-alias"];
  if (names.length > 0 && modes.some((m) => m.kind !== "network")) {
    throw new UsageError(
      def,
      "--network: a user-defined network cannot be combined with another mode",
    );
  }
  if (names.length === 0 && aliases.length > 0) {
    throw new UsageError(
      def,
      "--network-alias: network-scoped aliases need a user-defined network",
    );
  }
  if (names.length === 0 && modes.length > 1) throw new UsageError(def, "--network: give one mode");
  // Without --network: the private default (resolved at create time).
  const network: RunOptions["network"] = modes[0] ?? { kind: "private" };
  const networks = names.map((name) => ({ name, aliases: [...aliases] }));
  const checked = (flag: string, values: string[], check: (v: string) => unknown) => {
    for (const v of values) {
      try {
        check(v);
      } catch (e) {
        throw new UsageError(
          def,
          `invalid argument "${v}" for "--${flag}" flag: ${(e as Error).message}`,
        );
      }
    }
    return values;
  };
  const options: Partial<RunOptions> = {
    ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
    ...(flags.domainname !== undefined ? { domainname: flags.domainname } : {}),
    ...(flags["add-host"].length
      ? {
        // Kept as Docker keeps them: NAME:ADDRESS, brackets dropped.
        addHosts: checked("add-host", flags["add-host"], etc.parseExtraHost).map((v) => {
          const e = etc.parseExtraHost(v);
          return `${e.name}:${e.address}`;
        }),
      }
      : {}),
    ...(flags.dns.length
      ? { dns: checked("dns", flags.dns, etc.checkDnsServer).map((v) => v.trim()) }
      : {}),
    ...(flags["dns-search"].length
      ? { dnsSearch: checked("dns-search", flags["dns-search"], etc.checkDnsSearch) }
      : {}),
    ...(flags["dns-option"].length ? { dnsOptions: flags["dns-option"] } : {}),
  };
  if (network.kind === "container") {
    const conflict = etc.containerModeConflict(options);
    if (conflict) throw Object.assign(new Error(conflict), { exitCode: 125 });
  }
  return { network, networks, options };
}

/** Runs `trun run`; returns the container's exit status. */
export async function main(argv: string[], name = RUN.name): Promise<number> {
  const tCli = performance.now();
  const creating = name.endsWith("create");
  const def = { ...(creating ? CREATE : RUN), name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  // The monitor (and with conmon, its runtime, which then waits at the
  // create gate) starts first: its start-up overlaps this command's work.
  const conmon = creating ? undefined : await monitorFor(p.flags);
  const ownMonitor = conmon === null ? await startEarlyMonitor(p.flags) : undefined;
  const early = conmon ? await startEarlyConmon(p.flags, conmon) : undefined;
  trace("monitor started");
  try {
    return await runParsed(def, p, creating, tCli, early, ownMonitor);
  } catch (e) {
    if (early) await giveUpEarly(early);
    if (ownMonitor && !ownMonitor.taken) {
      ownMonitor.taken = true;
      (await import("../container/detached.ts")).abandonMonitor(ownMonitor.pending);
    }
    throw e;
  }
}

// The rest of main(), with conmon maybe running.
async function runParsed(
  def: typeof RUN,
  p: ReturnType<typeof parseArgs<typeof RUN.flags>>,
  creating: boolean,
  tCli: number,
  early: EarlyConmon | undefined,
  ownMonitor: EarlyMonitor | undefined,
): Promise<number> {
  const [target, ...args] = p.args;
  if (target === undefined) throw new UsageError(RUN, `"trun run" requires at least 1 argument`);
  const names = await nameOptions(def, p.flags);
  const { networks } = names;
  const { parseExpose, parsePublish } = await import("../spec/ports.ts");
  let publish;
  try {
    publish = p.flags.publish.map(parsePublish);
    for (const e of p.flags.expose) parseExpose(e);
  } catch (e) {
    throw new UsageError(def, (e as Error).message);
  }
  if (names.network.kind === "container") {
    const conflict = (await import("../spec/etc_files.ts")).containerModeConflict({
      publish: p.flags.publish,
      publishAll: p.flags["publish-all"],
      expose: p.flags.expose,
    });
    if (conflict) throw Object.assign(new Error(conflict), { exitCode: 125 });
  }
  ensureRuntimeRoot();
  const { resolveNetwork } = await import("../container/network_helper.ts");
  let resolved;
  try {
    resolved = resolveNetwork(names.network);
  } catch (e) {
    throw Object.assign(e as Error, { exitCode: 125 });
  }
  if (resolved.warning) warn(resolved.warning);
  const network = resolved.mode;
  const options: RunOptions = {
    args,
    env: p.flags.env,
    envFiles: p.flags["env-file"].map(readEnvFile),
    groupAdd: p.flags["group-add"],
    volumes: p.flags.volume,
    mounts: p.flags.mount,
    tmpfs: p.flags.tmpfs,
    readOnly: p.flags["read-only"],
    network,
    ...(networks.length > 0 ? { networks } : {}),
    ...(resolved.hostGateway ? { hostGateway: resolved.hostGateway } : {}),
    ...(resolved.dnsServers ? { dnsServers: resolved.dnsServers } : {}),
    tty: p.flags.tty,
    // Set in the container before it runs, so its first `stty size` is right.
    ...(p.flags.tty
      ? { consoleSize: (await import("../engine/tty_relay.ts")).terminalSize() }
      : {}),
    ...(p.flags.init ? { init: findInit() } : {}),
    ...(p.flags.entrypoint !== undefined ? { entrypoint: p.flags.entrypoint } : {}),
    ...names.options,
    ...(p.flags.workdir !== undefined ? { workdir: p.flags.workdir } : {}),
    ...(p.flags.user !== undefined ? { user: p.flags.user } : {}),
  };
  if (hasMounts(options)) {
    // Mistakes in the mount flags are found before any pull.
    const { mountRequests } = await import("../spec/mounts.ts");
    try {
      mountRequests(options);
    } catch (e) {
      throw new UsageError(def, (e as Error).message);
    }
  }
  const userns = p.flags.userns ?? "auto";
  if (userns !== "auto" && userns !== "single") {
    throw new UsageError(RUN, `unsupported --userns "${userns}": use auto or single`);
  }
  const loaded = loadIdMapping();
  const idMapping = userns === "single" && loaded.mode !== "host"
    ? singleIdMapping(loaded)
    : loaded;
  // Mistakes in the security flags are found before any pull too.
  const { securityOptions } = await import("./security_flags.ts");
  try {
    Object.assign(options, await securityOptions(p.flags, network, idMapping.mode !== "host"));
  } catch (e) {
    throw Object.assign(e as Error, { exitCode: 125 });
  }
  // The limits and where the container's cgroup goes, decided (and
  // warned about once) before any pull.
  let cgroupsMode: CgroupsMode;
  try {
    cgroupsMode = (await import("./resource_flags.ts")).cgroupsMode(p.flags.cgroups);
  } catch (e) {
    throw new UsageError(def, (e as Error).message);
  }
  const cgroup = await containerCgroup(p.flags, cgroupsMode, options);
  if (p.flags.cidfile !== undefined) checkCidfile(p.flags.cidfile);
  let layers: string[];
  let image: ImageProcessConfig = {};
  let imageId: string | undefined;
  if (p.flags.rootfs && args.length === 0) {
    // A directory has no Entrypoint or Cmd to fall back on.
    throw new UsageError(
      def,
      `No command specified: give the command to run after the root filesystem directory`,
    );
  }
  if (p.flags.rootfs) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(target);
    } catch {
      throw new Error(`rootfs "${target}" does not exist`);
    }
    if (!info.isDirectory) throw new Error(`rootfs "${target}" is not a directory`);
    layers = [Deno.realPathSync(target)];
  } else {
    const { imageRootfs } = await import("../container/image_rootfs.ts");
    const pull = p.flags.pull ?? "missing";
    if (pull !== "missing" && pull !== "always" && pull !== "never") {
      throw new UsageError(RUN, `unsupported --pull "${pull}": use missing, always or never`);
    }
    const platform = p.flags.platform;
    if (platform !== undefined) {
      // Checked here too: an image already present would not be pulled.
      const { parsePlatform } = await import("../oci/manifest.ts");
      try {
        parsePlatform(platform);
      } catch (e) {
        throw new UsageError(def, (e as Error).message);
      }
    }
    ({ layers, image, imageId } = await imageRootfs(target, {
      pull,
      ...(platform ? { platform } : {}),
    }));
  }
  if (idMapping.warning) warn(idMapping.warning);
  const net = await publishedNetwork(network, publish, p.flags, image.exposedPorts ?? []);
  return await runRecorded(
    p.flags,
    creating ? "create" : p.flags.detach ? "detach" : "foreground",
    {
      layers,
      image,
      imageId: imageId ?? "",
      target,
      options,
      idMapping,
      tCli,
      ...(cgroup ? { cgroup } : {}),
      network: net,
      ...(early ? { early } : {}),
      ...(ownMonitor ? { ownMonitor } : {}),
    },
  );
}

/**
 * conmon for a new container, started before its record (see
 * lib/container/create_gate.ts): its runtime's start-up overlaps the
 * image lookup and the record's making. None with trun's own monitor.
 */
interface EarlyConmon {
  id: string;
  dir: string;
  spawned: import("../container/conmon_spawn.ts").SpawnedConmon;
  /** The record was made (the container then stays, as after `create`). */
  recorded: boolean;
  /** startDetached() took it over. */
  taken: boolean;
}

/**
 * The exe-seal question (lib/runtime/exe_seal.ts) of the container `run`
 * is about to make: its spec does not exist yet, so the capability list
 * it will hold, from the flags.
 */
async function sealQuestionOfFlags(
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
): Promise<import("../runtime/exe_seal.ts").SealQuestion> {
  const [{ capabilityList }, seal] = await Promise.all([
    import("../spec/capabilities.ts"),
    import("../runtime/exe_seal.ts"),
  ]);
  return seal.sealQuestionOfNames(
    capabilityList({
      ...(flags["cap-add"].length ? { add: flags["cap-add"] } : {}),
      ...(flags["cap-drop"].length ? { drop: flags["cap-drop"] } : {}),
      ...(flags.privileged ? { privileged: true } : {}),
    }),
    loadIdMapping().mode !== "host",
  );
}

async function startEarlyConmon(
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
  conmon: string,
): Promise<EarlyConmon> {
  const [{ spawnEarlyConmon }, { newContainerId }, paths, seal] = await Promise.all([
    import("../container/conmon_spawn.ts"),
    import("../container/container_id.ts"),
    import("../paths.ts"),
    sealQuestionOfFlags(flags),
  ]);
  const id = newContainerId();
  const dir = `${paths.storeRoot()}/containers/${id}`;
  const spawned = spawnEarlyConmon(
    conmon,
    {
      id,
      name: flags.name ?? id,
      tty: flags.tty,
      stdin: flags.interactive,
      stdinOnce: !flags.detach,
    },
    dir,
    seal,
  );
  return { id, dir, spawned, recorded: false, taken: false };
}

/** trun's own monitor for a new container, started before its record. */
interface EarlyMonitor {
  id: string;
  pending: import("../container/monitor_spawn.ts").PendingMonitor;
  /** runRecorded took it over. */
  taken: boolean;
}

/**
 * Which monitor a new container gets: conmon's path, or null for trun's
 * own. `TRUN_MONITOR=trun|conmon` says; by default conmon when installed,
 * except for a run in the foreground with neither -i nor -t: it cannot
 * detach, so its monitor lives about as long as the command, and trun's
 * own monitor creates, starts and records the exit in the one process,
 * where conmon needs trun started twice more (its runtime's create and
 * its exit command): about 110 ms less per run, for about 30 MB beside
 * the container while it runs. That case is decided without looking for
 * conmon, so the monitor is spawned a few milliseconds sooner.
 */
async function monitorFor(
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
): Promise<string | null> {
  const forced = Deno.env.get("TRUN_MONITOR");
  if (forced === "trun") return null;
  if (forced !== "conmon" && !flags.detach && !flags.interactive && !flags.tty) return null;
  const { chosenConmon } = await import("../container/conmon_spawn.ts");
  return chosenConmon();
}

async function startEarlyMonitor(
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
): Promise<EarlyMonitor> {
  const [{ spawnMonitor }, { newContainerId }, paths, seal] = await Promise.all([
    import("../container/monitor_spawn.ts"),
    import("../container/container_id.ts"),
    import("../paths.ts"),
    sealQuestionOfFlags(flags),
  ]);
  const id = newContainerId();
  const pending = spawnMonitor(id, `${paths.storeRoot()}/containers/${id}`, !flags.detach, seal);
  return { id, pending, taken: false };
}

function takeMonitor(m: EarlyMonitor): EarlyMonitor["pending"] {
  m.taken = true;
  return m.pending;
}

function handOver(early: EarlyConmon): EarlyConmon["spawned"] {
  early.taken = true;
  return early.spawned;
}

// A run that failed before conmon was handed its container: its runtime
// gives up at the gate, and without a record the directory goes too.
async function giveUpEarly(early: EarlyConmon): Promise<void> {
  if (early.taken) return;
  early.taken = true;
  const { abandonEarlyConmon } = await import("../container/conmon.ts");
  await abandonEarlyConmon(early.spawned).catch(() => {});
  if (!early.recorded) {
    try {
      Deno.removeSync(early.dir, { recursive: true });
    } catch {
      // Not made, or gone.
    }
  }
}

/**
 * The resource flags into `options.resources` (Docker's checks and
 * messages, exit 125), and where the container's cgroup goes: the host's
 * cgroup v2 delegation as lib/host/cgroup.ts finds it, with one warning
 * when a limit cannot be enforced (an error with `--cgroups=required`).
 */
async function containerCgroup(
  flags: { [K in keyof typeof RESOURCE_FLAGS]: string | undefined },
  mode: CgroupsMode,
  options: RunOptions,
): Promise<{ parent: string; parentDir: string } | undefined> {
  const { resourceFlagValues } = await import("./resource_flags.ts");
  const { flagOfFile, hasResources, resourcesFromFlags, withDefaultSwap } = await import(
    "../spec/resources.ts"
  );
  const given = resourceFlagValues(flags);
  let resources;
  try {
    resources = withDefaultSwap(resourcesFromFlags(given, navigator.hardwareConcurrency));
  } catch (e) {
    throw Object.assign(e as Error, { exitCode: 125 });
  }
  if (hasResources(resources)) options.resources = resources;
  const { resourceFiles } = await import("../engine/cgroup.ts");
  const { decideCgroup, probeCgroups } = await import("../host/cgroup.ts");
  const { readMountInfo } = await import("../host/mountinfo.ts");
  const { supplementaryGroups } = await import("../host/access.ts");
  const { currentUserName } = await import("../runtime/idmap.ts");
  const uid = Deno.uid() ?? 0;
  const who = { uid, groups: [Deno.gid() ?? 0, ...supplementaryGroups()] };
  // `--pids-limit -1` asks for no limit: nothing to enforce.
  const files = resourceFiles(resources).files
    .filter(([f, v]) => !(f === "pids.max" && v === "max")).map(([f]) => f);
  const decision = decideCgroup(
    probeCgroups("", who, readMountInfo()),
    mode,
    files,
    (f) => flagOfFile(f, given),
    currentUserName(uid),
    uid,
  );
  if (decision.error) throw Object.assign(new Error(decision.error), { exitCode: 125 });
  if (decision.warning) warn(decision.warning);
  return decision.parent !== undefined
    ? { parent: decision.parent, parentDir: decision.parentDir! }
    : undefined;
}

/**
 * The record's network: the mode, and the published ports (`-p`, and with
 * `-P` every exposed port) with their host ports chosen and checked free,
 * so a busy port fails before anything is made.
 */
async function publishedNetwork(
  mode: import("../spec/network_mode.ts").NetworkMode,
  publish: import("../spec/ports.ts").PublishRequest[],
  flags: { "publish-all": boolean; expose: string[] },
  imageExposed: string[],
): Promise<import("../store/containers.ts").ContainerNetwork> {
  const { publishAllBindings, publishBindings } = await import("../spec/ports.ts");
  const { allocateHostPorts, containerNetwork } = await import(
    "../container/network_helper.ts"
  );
  const exposed = [...new Set([...imageExposed, ...flags.expose])];
  let wanted = publishBindings(publish);
  if (flags["publish-all"]) wanted = [...wanted, ...publishAllBindings(exposed, wanted)];
  if (wanted.length > 0 && mode.kind === "host") {
    warn("Published ports are discarded when using host network mode");
    wanted = [];
  }
  if (
    wanted.length > 0 && mode.kind !== "pasta" && mode.kind !== "slirp4netns" &&
    mode.kind !== "network"
  ) {
    throw Object.assign(
      new Error(
        `conflicting options: port publishing and the ${mode.kind} network mode ` +
          "(published ports need pasta, slirp4netns or a user-defined network)",
      ),
      { exitCode: 125 },
    );
  }
  // slirp4netns forwards IPv4 only: "every address" is 0.0.0.0 there.
  if (mode.kind === "slirp4netns") {
    wanted = wanted.map((b) => (b.hostIp === "" ? { ...b, hostIp: "0.0.0.0" } : b));
  }
  return containerNetwork(mode, await allocateHostPorts(wanted), exposed);
}
