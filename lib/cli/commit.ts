/**
 * `trun commit` (a container's changes as a new image) and `trun import` (a
 * root file system tar as a one-layer image), with Docker's flags and
 * output: the new image's id, `sha256:…`.
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp, println } from "./output.ts";
import type { ImageRuntimeConfig } from "../oci/manifest.ts";
import type { ContainerRecord, ImageRecord, Store } from "../store/mod.ts";

/** The grammar of `trun commit`. */
export const COMMIT = defineCommand({
  name: "commit",
  usage: "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
  summary: "Create a new image from a container's changes",
  minArgs: 1,
  maxArgs: 2,
  flags: {
    author: { short: "a", kind: "string", value: "AUTHOR", help: "Author of the new image" },
    change: {
      short: "c",
      kind: "list",
      value: "INSTRUCTION",
      help: "Apply a Dockerfile instruction to the image config (CMD, ENV, LABEL, …)",
    },
    message: { short: "m", kind: "string", value: "MESSAGE", help: "Commit message" },
    pause: {
      short: "p",
      kind: "bool",
      default: true,
      help: "Freeze a running container (its own cgroup) while its layer is read",
    },
    quiet: { short: "q", kind: "bool", help: "Print nothing but the image id" },
  },
});

/** The grammar of `trun import`. */
export const IMPORT = defineCommand({
  name: "import",
  usage: "[OPTIONS] FILE|- [REPOSITORY[:TAG]]",
  summary: "Import the contents from a tarball to create a filesystem image",
  minArgs: 1,
  maxArgs: 2,
  flags: {
    change: {
      short: "c",
      kind: "list",
      value: "INSTRUCTION",
      help: "Apply a Dockerfile instruction to the image config (CMD, ENV, LABEL, …)",
    },
    message: { short: "m", kind: "string", value: "MESSAGE", help: "Commit message" },
    platform: { kind: "string", value: "OS/ARCH", help: "Set the platform of the image" },
    quiet: { short: "q", kind: "bool", help: "Print nothing but the image id" },
  },
});

/** An error with the docker CLI's exit status for its own failures. */
function failure(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 125 });
}

/**
 * The runtime config a commit gives the new image: the image's, with the
 * container's environment, working directory, user, labels and command
 * (Docker commits the container's config). The record keeps the argv only:
 * when it starts with the image's Entrypoint, that stays and the rest is
 * the Cmd; otherwise the argv is the Cmd and there is no Entrypoint.
 */
export function committedConfig(
  image: ImageRuntimeConfig,
  rec: Pick<ContainerRecord, "command" | "labels" | "stopSignal">,
  facts: { env?: string[]; workingDir?: string; user?: string },
): ImageRuntimeConfig {
  const out: ImageRuntimeConfig = structuredClone(image);
  if (facts.env) {
    // HOSTNAME is each container's own, set when it starts; a HOME at the
    // end was added from the user's passwd entry (lib/spec/env.ts), not set.
    const env = facts.env.filter((e) => !e.startsWith("HOSTNAME="));
    const imageHome = (image.Env ?? []).some((e) => e.startsWith("HOME="));
    if (!imageHome && env.at(-1)?.startsWith("HOME=")) env.pop();
    out.Env = env;
  }
  if (facts.workingDir !== undefined) out.WorkingDir = facts.workingDir;
  if (facts.user !== undefined) out.User = facts.user;
  if (Object.keys(rec.labels ?? {}).length > 0) out.Labels = { ...out.Labels, ...rec.labels };
  if (rec.stopSignal && (image.StopSignal || rec.stopSignal !== "SIGTERM")) {
    out.StopSignal = rec.stopSignal;
  }
  const ep = image.Entrypoint ?? [];
  const argv = rec.command;
  const same = argv.length === ep.length + (image.Cmd ?? []).length &&
    argv.every((a, i) => a === [...ep, ...(image.Cmd ?? [])][i]);
  if (!same) {
    if (ep.length > 0 && ep.every((a, i) => argv[i] === a)) {
      out.Cmd = argv.slice(ep.length);
    } else {
      out.Entrypoint = null;
      out.Cmd = [...argv];
    }
  }
  return out;
}

/**
 * Freezes a running container that has a cgroup of its own and is not
 * paused already, as Docker pauses one during commit; returns what thaws
 * it. Without a cgroup of its own (no delegation), the layer is read as it
 * is, as rootless Podman does without cgroups.
 */
async function freezeForCommit(rec: ContainerRecord): Promise<(() => Promise<void>) | undefined> {
  const { containerStatus } = await import("../container/status.ts");
  if (containerStatus(rec) !== "running") return undefined;
  const { containerCgroup } = await import("../cgroup/container_cgroup.ts");
  const { isFrozen, setFrozen } = await import("../cgroup/freeze.ts");
  const found = containerCgroup(rec.pid, rec.cgroup);
  if (found.dir === undefined || isFrozen(found.dir)) return undefined;
  const dir = found.dir;
  try {
    await setFrozen(dir, true);
  } catch {
    return undefined;
  }
  return () => setFrozen(dir, false);
}

/** Tags `rec` as `reference` (Docker's rules for the name), when one is given. */
function tagNew(store: Store, rec: ImageRecord, reference: string | undefined): void {
  if (reference !== undefined) store.tagImage(rec.id, reference);
}

/** `trun commit`: the container's writable layer on top of its image. */
export async function commitCommand(argv: string[], name = COMMIT.name): Promise<number> {
  const def = { ...COMMIT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const [ref, reference] = p.args as [string, string | undefined];
  const { parseReference } = await import("../oci/reference.ts");
  if (reference !== undefined) parseReference(reference);
  const { applyChanges } = await import("../build/changes.ts");
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const { containerFacts } = await import("./container_inspect.ts");
  const { containerPaths } = await import("../container/detached.ts");
  const { recordLocalImage } = await import("../image/local_image.ts");
  const store = openStore();
  try {
    const rec = mustFind(store, ref);
    if (rec.imageId === "") {
      throw failure(
        `container ${rec.id.slice(0, 12)} runs on a root directory (--rootfs), not an image: ` +
          `"trun export ${rec.name} | trun import - NAME" makes an image of its whole file system`,
      );
    }
    const image = store.listImages().find((i) => i.id === rec.imageId);
    if (image === undefined) {
      throw failure(`the image of container ${rec.id.slice(0, 12)} (${rec.image}) is gone`);
    }
    const facts = containerFacts(store, rec);
    const config = applyChanges(
      committedConfig(image.config.config ?? {}, rec, facts),
      p.flags.change,
    );
    const { upperLayer } = await import("../container/writable_layer.ts");
    const thaw = p.flags.pause ? await freezeForCommit(rec) : undefined;
    const layer = await upperLayer(containerPaths(store.containerDir(rec.id)).upper, rec)
      .catch(async (e) => {
        await thaw?.();
        throw e;
      });
    let made: ImageRecord;
    try {
      made = await recordLocalImage(store, {
        parent: image,
        layer: layer.stream,
        runtimeConfig: config,
        history: {
          createdBy: rec.command.join(" "),
          ...(p.flags.message ? { comment: p.flags.message } : {}),
          ...(p.flags.author ? { author: p.flags.author } : {}),
        },
        ...(p.flags.author ? { author: p.flags.author } : {}),
      });
      await layer.done;
    } finally {
      layer.close();
      await thaw?.();
    }
    tagNew(store, made, reference);
    println(made.id);
  } finally {
    store.close();
  }
  return 0;
}

/** `trun import`: a root file system tar (plain, gzip or zstd; a file or stdin) as an image. */
export async function importCommand(argv: string[], name = IMPORT.name): Promise<number> {
  const def = { ...IMPORT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const [source, reference] = p.args as [string, string | undefined];
  const { parseReference } = await import("../oci/reference.ts");
  if (reference !== undefined) parseReference(reference);
  const { applyChanges } = await import("../build/changes.ts");
  const { parsePlatform, hostPlatform, normalizePlatform } = await import("../oci/manifest.ts");
  const platform = p.flags.platform !== undefined
    ? normalizePlatform(parsePlatform(p.flags.platform))
    : hostPlatform();
  const config = applyChanges({}, p.flags.change);
  if (/^[a-z]+:\/\//i.test(source)) {
    throw failure(`importing from a URL ("${source}") is not supported: download it first`);
  }
  let file: Deno.FsFile | undefined;
  let input: AsyncIterable<Uint8Array>;
  if (source === "-") {
    input = Deno.stdin.readable;
  } else {
    try {
      file = await Deno.open(source, { read: true });
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
      throw failure(`opening "${source}": ${why}`);
    }
    input = file.readable;
  }
  const { decompressedTar } = await import("../oci/layer_tar.ts");
  const { recordLocalImage } = await import("../image/local_image.ts");
  const { openStore } = await import("../store/mod.ts");
  const store = openStore();
  try {
    const made = await recordLocalImage(store, {
      layer: decompressedTar(input),
      runtimeConfig: config,
      history: {
        createdBy: "",
        comment: p.flags.message ?? `Imported from ${source}`,
      },
      platform,
    });
    tagNew(store, made, reference);
    println(made.id);
  } finally {
    store.close();
    try {
      file?.close();
    } catch {
      // The stream closed it.
    }
  }
  return 0;
}
