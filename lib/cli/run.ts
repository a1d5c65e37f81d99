/**
 * `trun run`: flags → run options → (spec generation → engine, in
 * `container/run.ts`). Holds no runtime logic; it parses, reads the files
 * the flags name, and renders errors.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println, warn } from "./output.ts";
import { ensureRuntimeRoot } from "../runtime/runtime_dir.ts";
import { newContainerId, runInProcess } from "../container/run.ts";
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
      value: "HOST:CTR[:ro]",
      help: "Bind mount a host directory or file",
    },
    hostname: { short: "h", kind: "string", value: "NAME", help: "Container hostname" },
    "read-only": { kind: "bool", help: "Mount the container's root filesystem read-only" },
    userns: {
      kind: "string",
      value: "MODE",
      help: "auto (subordinate ids when available) or single (only root mapped)",
    },
    network: { kind: "string", value: "MODE", help: "host (default) or none" },
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
      help: "Remove the container when it exits (always in the foreground, for now)",
    },
    restart: {
      kind: "string",
      value: "POLICY",
      help: "With -d: no, on-failure[:N], always or unless-stopped (applied by the monitor)",
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
    name: { kind: "string", value: "NAME", help: "Name the container (with -d)" },
    label: { short: "l", kind: "list", value: "KEY=VALUE", help: "Set a label (with -d)" },
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

/**
 * `run -d`: records the container with its writable layer on disk, starts
 * its monitor and prints its id once it runs. A container that could not
 * start stays (exited, with the error) unless `--rm`, as with Docker.
 */
async function runDetached(
  flags: ReturnType<typeof parseArgs<typeof RUN.flags>>["flags"],
  start: boolean,
  what: {
    layers: string[];
    image: ImageProcessConfig;
    imageId: string;
    target: string;
    options: RunOptions;
    idMapping: IdMapping;
  },
): Promise<number> {
  if (flags.interactive) {
    throw new UsageError(RUN, "-i with -d needs attach, which trun does not have yet");
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
  const { openStore } = await import("../store/mod.ts");
  const { createDetached, startDetached } = await import("../container/detached.ts");
  const store = openStore();
  let rec;
  let dir;
  try {
    rec = createDetached({
      store,
      layers: what.layers,
      imageId: what.imageId,
      image: what.target,
      imageConfig: what.image,
      options: what.options,
      ...(flags.name !== undefined ? { name: flags.name } : {}),
      autoRemove: flags.rm,
      labels: parseLabels(flags.label),
      ...(flags["stop-signal"] !== undefined ? { stopSignal: flags["stop-signal"] } : {}),
      ...(timeout !== undefined ? { stopTimeout: timeout } : {}),
      idMapping: what.idMapping,
      ...(restartPolicy ? { restartPolicy } : {}),
    });
    dir = store.containerDir(rec.id);
  } finally {
    store.close();
  }
  if (start) {
    const report = await startDetached(rec, dir);
    if (!report.ok) throw Object.assign(new Error(report.error), { exitCode: report.exitCode });
  }
  println(rec.id);
  return 0;
}

/** Reads an `--env-file`, with an error naming it. */
function readEnvFile(name: string): { name: string; text: string } {
  try {
    return { name, text: Deno.readTextFileSync(name) };
  } catch (e) {
    throw new Error(`reading env file "${name}": ${e instanceof Error ? e.message : e}`);
  }
}

/** Runs `trun run`; returns the container's exit status. */
export async function main(argv: string[], name = RUN.name): Promise<number> {
  const tCli = performance.now();
  const creating = name.endsWith("create");
  const def = { ...(creating ? CREATE : RUN), name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const [target, ...args] = p.args;
  if (target === undefined) throw new UsageError(RUN, `"trun run" requires at least 1 argument`);
  const network = p.flags.network ?? "host";
  if (network !== "host" && network !== "none") {
    throw new UsageError(RUN, `unsupported --network "${network}": use host or none`);
  }
  const runtimeDir = ensureRuntimeRoot();
  const options: RunOptions = {
    args,
    env: p.flags.env,
    envFiles: p.flags["env-file"].map(readEnvFile),
    groupAdd: p.flags["group-add"],
    volumes: p.flags.volume,
    readOnly: p.flags["read-only"],
    network,
    tty: p.flags.tty,
    // Set in the container before it runs, so its first `stty size` is right.
    ...(p.flags.tty
      ? { consoleSize: (await import("../engine/tty_relay.ts")).terminalSize() }
      : {}),
    ...(p.flags.init ? { init: findInit() } : {}),
    ...(p.flags.entrypoint !== undefined ? { entrypoint: p.flags.entrypoint } : {}),
    ...(p.flags.hostname !== undefined ? { hostname: p.flags.hostname } : {}),
    ...(p.flags.workdir !== undefined ? { workdir: p.flags.workdir } : {}),
    ...(p.flags.user !== undefined ? { user: p.flags.user } : {}),
  };
  let layers: string[];
  let image: ImageProcessConfig = {};
  let imageId: string | undefined;
  let recordContainer:
    | typeof import("../container/image_rootfs.ts").withContainerRecord
    | undefined;
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
    const { imageRootfs, withContainerRecord } = await import("../container/image_rootfs.ts");
    recordContainer = withContainerRecord;
    const pull = p.flags.pull ?? "missing";
    if (pull !== "missing" && pull !== "always" && pull !== "never") {
      throw new UsageError(RUN, `unsupported --pull "${pull}": use missing, always or never`);
    }
    const platform = p.flags.platform;
    ({ layers, image, imageId } = await imageRootfs(target, {
      pull,
      ...(platform ? { platform } : {}),
    }));
  }
  const userns = p.flags.userns ?? "auto";
  if (userns !== "auto" && userns !== "single") {
    throw new UsageError(RUN, `unsupported --userns "${userns}": use auto or single`);
  }
  const loaded = loadIdMapping();
  const idMapping = userns === "single" && loaded.mode !== "host"
    ? singleIdMapping(loaded)
    : loaded;
  if (idMapping.warning) warn(idMapping.warning);
  if (p.flags.restart !== undefined && !p.flags.detach && !creating) {
    throw new UsageError(def, "--restart needs -d: the monitor beside the container restarts it");
  }
  if (p.flags.detach || creating) {
    return await runDetached(p.flags, !creating, {
      layers,
      image,
      imageId: imageId ?? "",
      target,
      options,
      idMapping,
    });
  }
  const debug = p.flags.debug;
  let tSpec = 0;
  const id = newContainerId();
  const start = () =>
    runInProcess({
      id,
      layers,
      image,
      options,
      interactive: p.flags.interactive,
      idMapping,
      runtimeDir,
      onSpec: (g) => {
        tSpec = performance.now();
        if (debug) warn(`config.json: ${JSON.stringify(g.spec, null, 2)}`);
      },
      onStarted: (t) => {
        if (debug) {
          // performance.now() counts from the start of the Deno process.
          warn(
            `started: cli loaded at ${tCli.toFixed(1)} ms, spec ${(tSpec - tCli).toFixed(1)} ms, ` +
              `clone ${t.clone.toFixed(1)} ms, id maps ${t.idMaps.toFixed(1)} ms, ` +
              `to exec ${t.exec.toFixed(1)} ms, exec'd at ${performance.now().toFixed(1)} ms`,
          );
        }
      },
    });
  return imageId && recordContainer ? await recordContainer(imageId, id, start) : await start();
}
