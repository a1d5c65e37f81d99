/**
 * The image side of `trun run IMAGE`: finds the image in the store (pulling
 * it first when it is missing, as Docker does, with the pull's output on
 * stderr), turns it into the root filesystem layers and image config of a
 * run request, and records the container as a user of the image while it
 * runs. Glue between the CLI, the store and the runtime.
 */
import { normalizePlatform, parsePlatform } from "../oci/manifest.ts";
import { openStore } from "../store/mod.ts";
import { runTrunForStorage } from "../runtime/userns_exec.ts";
import type { ImageProcessConfig } from "../spec/generate.ts";

/** `--pull` policies, as Docker names them. */
export type PullPolicy = "missing" | "always" | "never";

/** Options of `imageRunRequest`. */
export interface ImageRunOptions {
  /** When to pull (default `missing`). */
  pull?: PullPolicy;
  /** `--platform`. */
  platform?: string;
}

/** The layers (top first), process config and id of image `target`, pulled when missing. */
export async function imageRootfs(
  target: string,
  opts: ImageRunOptions = {},
): Promise<{ layers: string[]; image: ImageProcessConfig; imageId: string }> {
  const policy = opts.pull ?? "missing";
  let store = openStore();
  let image = policy === "always" ? undefined : store.findImage(target);
  if (image && opts.platform !== undefined && !platformMatches(image.config, opts.platform)) {
    // The local image is for another platform: the asked one is missing.
    image = undefined;
  }
  if (!image) {
    if (policy === "never") {
      throw new Error(`image "${target}" not found locally, and --pull=never`);
    }
    if (policy === "missing") {
      Deno.stderr.writeSync(new TextEncoder().encode(`Unable to find image '${target}' locally\n`));
    }
    store.close();
    const args = ["pull", ...(opts.platform ? ["--platform", opts.platform] : []), target];
    // The pull unpacks layers, which must happen where files can belong to
    // image ids: the same user-namespace helper `trun pull` uses.
    const code = await runTrunForStorage(args, { stdoutToStderr: true });
    if (code !== 0) {
      throw Object.assign(new Error(`pulling "${target}" failed (see above)`), { exitCode: 125 });
    }
    store = openStore();
    image = store.findImage(target);
    if (!image) {
      throw new Error(`image "${target}" was pulled but is not in the store "${store.root}"`);
    }
  }
  try {
    const layers = store.layerPaths(image.id).slice().reverse();
    const c = image.config.config ?? {};
    const config: ImageProcessConfig = {};
    if (c.Env) config.env = c.Env;
    if (c.Cmd) config.cmd = c.Cmd;
    if (c.Entrypoint) config.entrypoint = c.Entrypoint;
    if (c.WorkingDir) config.workingDir = c.WorkingDir;
    if (c.User) config.user = c.User;
    if (c.StopSignal) config.stopSignal = c.StopSignal;
    if (c.ExposedPorts) config.exposedPorts = Object.keys(c.ExposedPorts);
    return { layers, image: config, imageId: image.id };
  } finally {
    store.close();
  }
}

/** Whether an image config is for `--platform` `spec` (os, architecture, and the variant when both say one). */
function platformMatches(
  config: { os?: string; architecture?: string; variant?: string },
  spec: string,
): boolean {
  const want = parsePlatform(spec);
  const have = normalizePlatform({
    os: config.os ?? "linux",
    architecture: config.architecture ?? "",
    ...(config.variant ? { variant: config.variant } : {}),
  });
  return have.os === want.os && have.architecture === want.architecture &&
    (want.variant === undefined || have.variant === undefined || have.variant === want.variant);
}
