/**
 * `trun run`: flags → `RunRequest` → plan → executor. Holds no runtime
 * logic; it parses, reads the files the flags name, and renders errors.
 */
import { boolFlag, type CommandDef, listFlag, parseArgs, stringFlag, UsageError } from "./args.ts";
import { printHelp, warn } from "./output.ts";
import { ensureRuntimeRoot } from "../runtime/runtime_dir.ts";
import { planRun, type RunRequest } from "../runtime/run_request.ts";
import { runContainer } from "../runtime/executor.ts";
import { type IdMapping, loadIdMapping } from "../runtime/idmap.ts";

/** `--userns=single`: keep only the 0 → user line of a mapping. */
function singleIdMapping(m: IdMapping): IdMapping {
  return { mode: "single", uid: m.uid.slice(0, 1), gid: m.gid.slice(0, 1) };
}

/** The grammar of `trun run`. */
export const RUN: CommandDef = {
  name: "run",
  usage:
    "[OPTIONS] IMAGE [COMMAND] [ARG...]\n        trun run [OPTIONS] --rootfs DIR COMMAND [ARG...]",
  summary: "Create and run a new container from an image or a root filesystem directory",
  interspersed: false,
  flags: [
    {
      long: "rootfs",
      kind: "bool",
      help: "The first argument is a root filesystem directory, not an image",
    },
    {
      long: "env",
      short: "e",
      kind: "list",
      value: "NAME=VALUE",
      help: "Set an environment variable",
    },
    {
      long: "env-file",
      kind: "list",
      value: "FILE",
      help: "Read environment variables from a file",
    },
    {
      long: "workdir",
      short: "w",
      kind: "string",
      value: "DIR",
      help: "Working directory inside the container",
    },
    {
      long: "user",
      short: "u",
      kind: "string",
      value: "USER[:GROUP]",
      help: "User name or uid (and group) to run as",
    },
    { long: "group-add", kind: "list", value: "GROUP", help: "Add a supplementary group" },
    {
      long: "volume",
      short: "v",
      kind: "list",
      value: "HOST:CTR[:ro]",
      help: "Bind mount a host directory or file",
    },
    { long: "hostname", short: "h", kind: "string", value: "NAME", help: "Container hostname" },
    { long: "read-only", kind: "bool", help: "Mount the container's root filesystem read-only" },
    {
      long: "userns",
      kind: "string",
      value: "MODE",
      help: "auto (subordinate ids when available) or single (only root mapped)",
    },
    { long: "network", kind: "string", value: "MODE", help: "host (default) or none" },
    {
      long: "pull",
      kind: "string",
      value: "POLICY",
      help: "Pull the image: missing (default), always or never",
    },
    { long: "platform", kind: "string", value: "OS/ARCH", help: "Platform of the image to pull" },
    { long: "entrypoint", kind: "string", value: "CMD", help: "Override the image's entrypoint" },
    {
      long: "interactive",
      short: "i",
      kind: "bool",
      help: "Keep stdin open: the container reads trun's stdin (else /dev/null)",
    },
    {
      long: "tty",
      short: "t",
      kind: "bool",
      help: "Allocate a pseudo-terminal",
    },
    { long: "rm", kind: "bool", help: "Remove the container when it exits (always, for now)" },
    { long: "debug", kind: "bool", help: "Print the container plan and start timings to stderr" },
  ],
};

/** Reads an `--env-file`, with an error naming it. */
function readEnvFile(name: string): { name: string; text: string } {
  try {
    return { name, text: Deno.readTextFileSync(name) };
  } catch (e) {
    throw new Error(`reading env file "${name}": ${e instanceof Error ? e.message : e}`);
  }
}

/** Runs `trun run`; returns the container's exit status. */
export async function main(argv: string[]): Promise<number> {
  const tCli = performance.now();
  const p = parseArgs(RUN, argv);
  if (p.help) return printHelp(RUN);
  const [target, ...args] = p.args;
  if (target === undefined) throw new UsageError(RUN, `"trun run" requires at least 1 argument`);
  const network = stringFlag(p, "network") ?? "host";
  if (network !== "host" && network !== "none") {
    throw new UsageError(RUN, `unsupported --network "${network}": use host or none`);
  }
  const runtimeDir = ensureRuntimeRoot();
  const base: Omit<RunRequest, "layers"> = {
    args,
    env: listFlag(p, "env"),
    envFiles: listFlag(p, "env-file").map(readEnvFile),
    groupAdd: listFlag(p, "group-add"),
    volumes: listFlag(p, "volume"),
    readOnly: boolFlag(p, "read-only"),
    network,
    tty: boolFlag(p, "tty"),
    interactive: boolFlag(p, "interactive"),
    runtimeDir,
    ...(stringFlag(p, "entrypoint") !== undefined
      ? { entrypoint: stringFlag(p, "entrypoint")! }
      : {}),
    ...(stringFlag(p, "hostname") !== undefined ? { hostname: stringFlag(p, "hostname")! } : {}),
    ...(stringFlag(p, "workdir") !== undefined ? { workdir: stringFlag(p, "workdir")! } : {}),
    ...(stringFlag(p, "user") !== undefined ? { user: stringFlag(p, "user")! } : {}),
  };
  let req: RunRequest;
  let imageId: string | undefined;
  let recordContainer: typeof import("../image/run_image.ts").withContainerRecord | undefined;
  if (boolFlag(p, "rootfs")) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(target);
    } catch {
      throw new Error(`rootfs "${target}" does not exist`);
    }
    if (!info.isDirectory) throw new Error(`rootfs "${target}" is not a directory`);
    req = { ...base, layers: [Deno.realPathSync(target)] };
  } else {
    const { imageRunRequest, withContainerRecord } = await import("../image/run_image.ts");
    recordContainer = withContainerRecord;
    const pull = stringFlag(p, "pull") ?? "missing";
    if (pull !== "missing" && pull !== "always" && pull !== "never") {
      throw new UsageError(RUN, `unsupported --pull "${pull}": use missing, always or never`);
    }
    const platform = stringFlag(p, "platform");
    ({ req, imageId } = await imageRunRequest(target, base, {
      pull,
      ...(platform ? { platform } : {}),
    }));
  }
  const userns = stringFlag(p, "userns") ?? "auto";
  if (userns !== "auto" && userns !== "single") {
    throw new UsageError(RUN, `unsupported --userns "${userns}": use auto or single`);
  }
  const mapping = loadIdMapping();
  const plan = planRun(
    req,
    userns === "single" && mapping.mode !== "host" ? singleIdMapping(mapping) : mapping,
  );
  const tPlan = performance.now();
  if (plan.idMapping.warning) warn(plan.idMapping.warning);
  const debug = boolFlag(p, "debug");
  if (debug) warn(`plan: ${JSON.stringify(plan, null, 2)}`);
  const start = () =>
    runContainer(plan, {
      onStarted: (t) => {
        if (debug) {
          // performance.now() counts from the start of the Deno process.
          warn(
            `started: cli loaded at ${tCli.toFixed(1)} ms, plan ${(tPlan - tCli).toFixed(1)} ms, ` +
              `clone ${t.clone.toFixed(1)} ms, id maps ${t.idMaps.toFixed(1)} ms, ` +
              `to exec ${t.exec.toFixed(1)} ms, exec'd at ${performance.now().toFixed(1)} ms`,
          );
        }
      },
    });
  return imageId && recordContainer
    ? await recordContainer(imageId, plan.id, start)
    : await start();
}
