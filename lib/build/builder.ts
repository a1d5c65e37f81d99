/**
 * `trun build`'s one linear orchestrator: the stages the target needs, in
 * order; in each, every step either found in the cache (its parent image,
 * instruction and inputs unchanged) or made: RUN in a container started as
 * `trun run` starts one, then committed; COPY, ADD, WORKDIR and metadata
 * steps straight into the store (lib/build/store_steps.ts). Each step's
 * result is an image, as Docker's classic builder keeps them, which is
 * what the cache points at. Progress is printed the classic builder's way.
 */
import { createHash } from "node:crypto";
import { parseDockerfile } from "./dockerfile.ts";
import { type CopyStep, evaluateStage, type RunStep, type Step } from "./evaluate.ts";
import {
  findStage,
  metaArgValues,
  requiredStages,
  splitStages,
  type Stage,
  targetStage,
} from "./stages.ts";
import type { StoreStepRequest } from "./store_steps.ts";
import { parseRunMount } from "./run_mounts.ts";
import type { ImageRuntimeConfig } from "../oci/manifest.ts";
import { hostPlatform } from "../oci/manifest.ts";
import { DEFAULT_PATH } from "../spec/env.ts";
import type { HistoryEntry } from "../image/local_image.ts";
import {
  type BuildContext,
  hashEntries,
  openContext,
  resolveSource,
  walkContext,
} from "./context.ts";

/** What to build, and how. */
export interface BuildRequest {
  /** The context directory. */
  contextDir: string;
  /** The Dockerfile's text. */
  dockerfile: string;
  /** A `.dockerignore` to use instead of the context's (`Dockerfile.dockerignore`). */
  ignoreFile?: string;
  /** `--build-arg`s. */
  buildArgs: Record<string, string>;
  /** `--target`. */
  target?: string;
  /** `--no-cache`. */
  noCache: boolean;
  /** `--pull`. */
  pull: "always" | "missing" | "never";
  /** `--label`s for the final image. */
  labels: Record<string, string>;
  /** `--network` for RUN. */
  network?: string;
  /** `-q`: no progress, RUN output discarded. */
  quiet: boolean;
  /** `--secret`s by id: a file, or an environment variable's value. */
  secrets?: Record<string, { src?: string; env?: string }>;
}

/** What the builder needs from the rest of trun (the CLI gives real ones; tests may not). */
export interface BuildBackend {
  /** The id and config of base image `ref`, pulled per the policy. */
  baseImage(
    ref: string,
    pull: BuildRequest["pull"],
  ): Promise<{ id: string; config: ImageRuntimeConfig }>;
  /** The cached image of step `key`, if any. */
  cached(key: string): string | undefined;
  /** Remembers that step `key` made `id`. */
  remember(key: string, id: string): void;
  /** Runs a store step; returns the new image id. */
  storeStep(req: StoreStepRequest): Promise<string>;
  /** Runs RUN's command in a container of image `image`; returns its exit code and the container. */
  runStep(image: string, step: RunStep, opts: {
    /** `--network`. */
    network?: string;
    /** More `trun run` flags (the mounts). */
    flags: string[];
    /** Discard the output. */
    quiet: boolean;
  }): Promise<{ code: number; container: string }>;
  /** The store directory of cache mount `id` (made if missing). */
  cacheMountDir(id: string): string;
  /** Removes a step's container. */
  removeContainer(container: string): Promise<void>;
  /** Progress and warnings. */
  print(line: string): void;
  /** Warnings. */
  warn(line: string): void;
}

/** A failed build step, naming the Dockerfile line. */
export class BuildError extends Error {
  /** Docker's exit status for a failed build is 1. */
  readonly exitCode = 1;
  /** Prefixed with the line. */
  constructor(line: number, message: string) {
    super(`Dockerfile:${line}: ${message}`);
    this.name = "BuildError";
  }
}

interface State {
  /** The current image; undefined for an empty scratch stage. */
  image?: string;
  /** Its config. */
  config: ImageRuntimeConfig;
}

/** Builds; returns the final image id (`sha256:…`). */
export async function build(req: BuildRequest, be: BuildBackend): Promise<string> {
  const df = parseDockerfile(req.dockerfile);
  for (const w of df.warnings) be.warn(w);
  const staged = splitStages(df, req.buildArgs);
  const target = targetStage(staged, req.target);
  const stages = requiredStages(staged, target, req.buildArgs);
  const meta = metaArgValues(staged, req.buildArgs);
  const total = stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
  const context = openContext(req.contextDir, req.ignoreFile);
  const results = new Map<number, State>();
  const declared = new Set(meta.keys());
  const platform = hostPlatform();
  const automaticArgs: Record<string, string> = {
    TARGETPLATFORM: `${platform.os}/${platform.architecture}`,
    TARGETOS: platform.os,
    TARGETARCH: platform.architecture,
    TARGETVARIANT: platform.variant ?? "",
    BUILDPLATFORM: `${platform.os}/${platform.architecture}`,
    BUILDOS: platform.os,
    BUILDARCH: platform.architecture,
    BUILDVARIANT: platform.variant ?? "",
  };
  let n = 0;
  const step = (text: string) => !req.quiet && be.print(`Step ${++n}/${total} : ${text}`);
  const done = (id: string) => !req.quiet && be.print(` ---> ${id.slice(7, 19)}`);
  let final: State | undefined;
  for (const stage of stages) {
    step(stage.from.original);
    let state = await baseOf(stage, staged.stages, results, req, be);
    if (state.image) done(state.image);
    if (!(state.config.Env ?? []).some((e) => e.startsWith("PATH="))) {
      // Docker's builder gives a base without PATH the default one.
      state = {
        ...state,
        config: { ...state.config, Env: [`PATH=${DEFAULT_PATH}`, ...(state.config.Env ?? [])] },
      };
    }
    const evaluated = evaluateStage({
      stage: withTriggers(stage, state.config),
      stages: staged.stages,
      base: { ...state.config, OnBuild: null },
      meta,
      buildArgs: req.buildArgs,
      automaticArgs,
      escape: staged.escape,
    });
    for (const a of evaluated.declaredArgs) declared.add(a);
    for (const s of evaluated.steps) {
      step(s.ins.original);
      state = await runStep(s, state, {
        req,
        be,
        context,
        results,
        stage,
        author: evaluated.author,
      });
      done(state.image!);
    }
    if (!state.image) {
      // FROM scratch and nothing else: an empty image.
      state = { ...state, image: await be.storeStep(configRequest(state, "", undefined)) };
    }
    results.set(stage.index, state);
    final = state;
  }
  if (Object.keys(req.labels).length > 0) {
    const config = { ...final!.config, Labels: { ...final!.config.Labels, ...req.labels } };
    final = {
      config,
      image: await be.storeStep({ ...configRequest(final!, "", undefined), config }),
    };
  }
  const unused = Object.keys(req.buildArgs).filter((a) =>
    !declared.has(a) && !(a in automaticArgs)
  );
  if (unused.length > 0) {
    be.warn(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed`);
  }
  return final!.image!;
}

/** The base of a stage: an image (pulled as asked), an earlier stage's result, or nothing. */
async function baseOf(
  stage: Stage,
  stages: Stage[],
  results: Map<number, State>,
  req: BuildRequest,
  be: BuildBackend,
): Promise<State> {
  if (stage.platform !== undefined) {
    const want = stage.platform.split("/");
    const host = hostPlatform();
    if (want[0] !== host.os || (want[1] !== undefined && want[1] !== host.architecture)) {
      throw new BuildError(
        stage.from.line,
        `FROM --platform=${stage.platform}: trun builds for this host's platform ` +
          `(${host.os}/${host.architecture}) only`,
      );
    }
  }
  if (stage.base.toLowerCase() === "scratch") return { config: {} };
  const earlier = findStage(stages, stage.base, stage.index);
  if (earlier) return results.get(earlier.index)!;
  try {
    const { id, config } = await be.baseImage(stage.base, req.pull);
    return { image: id, config };
  } catch (e) {
    throw new BuildError(stage.from.line, (e as Error).message);
  }
}

/** ONBUILD triggers of the base run first, as Docker runs them. */
function withTriggers(stage: Stage, base: ImageRuntimeConfig): Stage {
  const triggers = base.OnBuild ?? [];
  if (triggers.length === 0) return stage;
  const df = parseDockerfile(`FROM scratch\n${triggers.join("\n")}`);
  const ins = df.instructions.slice(1).map((i) => ({ ...i, line: stage.from.line }));
  return { ...stage, instructions: [...ins, ...stage.instructions] };
}

interface StepContext {
  req: BuildRequest;
  be: BuildBackend;
  context: BuildContext;
  results: Map<number, State>;
  stage: Stage;
  author: string | undefined;
}

function configRequest(
  state: State,
  createdBy: string,
  author: string | undefined,
): StoreStepRequest {
  const history: HistoryEntry = { createdBy, emptyLayer: true };
  return {
    kind: "config",
    ...(state.image ? { parent: state.image } : {}),
    config: state.config,
    history,
    ...(author ? { author } : {}),
  };
}

/** A cache key: the parent, the step's kind and everything it depends on. */
function cacheKey(parent: string | undefined, parts: unknown): string {
  return `sha256:${
    createHash("sha256").update(JSON.stringify([parent ?? "scratch", parts])).digest("hex")
  }`;
}

/** Runs one step (or finds it in the cache); returns the new state. Errors name the line. */
async function runStep(s: Step, state: State, x: StepContext): Promise<State> {
  try {
    return await runStepUnnamed(s, state, x);
  } catch (e) {
    if (e instanceof BuildError) throw e;
    throw new BuildError(s.ins.line, `${s.ins.keyword.toUpperCase()}: ${(e as Error).message}`);
  }
}

async function runStepUnnamed(s: Step, state: State, x: StepContext): Promise<State> {
  const { be, req } = x;
  const config = s.config ?? state.config;
  const nop = `/bin/sh -c #(nop) ${s.ins.original}`;
  let key: string;
  let make: () => Promise<string>;
  let after: (() => void) | undefined;
  const base = {
    ...(state.image ? { parent: state.image } : {}),
    config,
    ...(x.author ? { author: x.author } : {}),
  };
  switch (s.kind) {
    case "config":
      key = cacheKey(state.image, ["config", config, nop]);
      make = () =>
        be.storeStep({ kind: "config", ...base, history: { createdBy: nop, emptyLayer: true } });
      break;
    case "workdir":
      key = cacheKey(state.image, ["workdir", s.path, config, nop]);
      make = () =>
        be.storeStep({ kind: "workdir", ...base, path: s.path, history: { createdBy: nop } });
      break;
    case "copy": {
      const { request, inputs, cleanup } = await copyRequest(s, x, base, nop);
      after = cleanup;
      key = cacheKey(state.image, ["copy", inputs, config, nop]);
      make = () => be.storeStep(request);
      break;
    }
    case "run": {
      const args = s.args.length > 0 ? `|${s.args.length} ${s.args.join(" ")} ` : "";
      const createdBy = `${args}${s.argv.join(" ")}`;
      const network = runNetwork(s, req);
      const mounts = runMountFlags(s, x);
      key = cacheKey(state.image, [
        "run",
        s.argv,
        s.env,
        s.user,
        s.workdir,
        network,
        mounts.key,
        config,
      ]);
      make = async () => {
        if (!state.image) {
          throw new BuildError(
            s.ins.line,
            "RUN needs a base image: FROM scratch has no shell to run",
          );
        }
        if (!req.quiet) be.print(" ---> Running in a new container");
        const { code, container } = await be.runStep(state.image, s, {
          ...(network ? { network } : {}),
          flags: mounts.flags,
          quiet: req.quiet,
        });
        try {
          if (code !== 0) {
            throw new BuildError(
              s.ins.line,
              `The command '${s.argv.join(" ")}' returned a non-zero code: ${code}`,
            );
          }
          return await be.storeStep({
            kind: "commit",
            ...base,
            container,
            mountPoints: mounts.targets,
            history: { createdBy },
          });
        } finally {
          await be.removeContainer(container);
        }
      };
      break;
    }
  }
  try {
    const hit = req.noCache ? undefined : be.cached(key);
    if (hit) {
      if (!req.quiet) be.print(" ---> Using cache");
      return { image: hit, config };
    }
    const id = await make();
    be.remember(key, id);
    return { image: id, config };
  } finally {
    after?.();
  }
}

/**
 * RUN's `--mount`s as `trun run` flags, the mount points to keep out of
 * the layer, and what the cache key depends on (a bind mount's content; a
 * cache's id; never a secret's value, as BuildKit).
 */
function runMountFlags(s: RunStep, x: StepContext): {
  flags: string[];
  targets: string[];
  key: unknown[];
} {
  const flags: string[] = [];
  const targets: string[] = [];
  const key: unknown[] = [];
  for (const value of s.mounts) {
    const m = parseRunMount(value, s.workdir);
    if ("from" in m && m.from !== undefined) {
      throw new Error(
        `--mount from=${m.from}: mounting from a stage or image is not supported yet`,
      );
    }
    if (m.type === "bind") {
      const entries = resolveSource(x.context, m.source);
      const e = entries[0]!;
      const all = e.info.isDirectory ? [e, ...walkContext(x.context, e.rel)] : [e];
      flags.push("-v", `${x.context.dir}/${e.rel}:${m.target}:ro`);
      key.push(["bind", m.target, hashEntries(x.context, all)]);
    } else if (m.type === "cache") {
      flags.push("-v", `${x.be.cacheMountDir(m.id)}:${m.target}`);
      key.push(["cache", m.id, m.target]);
    } else if (m.type === "tmpfs") {
      flags.push("--tmpfs", m.size ? `${m.target}:size=${m.size}` : m.target);
      key.push(["tmpfs", m.target]);
    } else {
      const secret = x.req.secrets?.[m.id];
      if (!secret) {
        if (m.required) {
          throw new Error(`secret "${m.id}" not found: give it with --secret id=${m.id},src=FILE`);
        }
        continue;
      }
      let file = secret.src;
      if (file === undefined) {
        const value = Deno.env.get(secret.env!) ?? "";
        file = Deno.makeTempFileSync({ prefix: "trun-secret-" });
        Deno.writeTextFileSync(file, value);
      }
      flags.push("-v", `${file}:${m.target}:ro`);
      key.push(["secret", m.id, m.target]);
    }
    targets.push(m.target);
  }
  return { flags, targets, key };
}

/** RUN --network, else the build's --network. */
function runNetwork(s: RunStep, req: BuildRequest): string | undefined {
  const n = s.network ?? req.network;
  return n === "default" ? undefined : n;
}

/** The store request of a COPY/ADD, what its cache key depends on, and what to clean after. */
async function copyRequest(
  s: CopyStep,
  x: StepContext,
  base: { parent?: string; config: ImageRuntimeConfig; author?: string },
  createdBy: string,
): Promise<{ request: StoreStepRequest; inputs: unknown; cleanup?: () => void }> {
  const common = {
    ...base,
    kind: "copy" as const,
    sources: s.sources,
    dest: s.dest,
    destIsDir: s.destIsDir,
    ...(s.chown ? { chown: s.chown } : {}),
    ...(s.chmod ? { chmod: s.chmod } : {}),
    add: s.add,
    heredocs: s.heredocs,
    history: { createdBy },
  };
  const flags = [s.dest, s.destIsDir, s.chown, s.chmod, s.add, s.heredocs, s.sources];
  if (s.from) {
    let fromImage: string | undefined;
    if ("stage" in s.from) {
      fromImage = x.results.get(s.from.stage)?.image;
      if (fromImage === undefined) {
        throw new BuildError(s.ins.line, "COPY --from names a stage that has no image");
      }
    } else {
      // An image: pulled as a base would be.
      fromImage = (await x.be.baseImage(s.from.image, x.req.pull)).id;
    }
    return { request: { ...common, fromImage }, inputs: [fromImage, flags] };
  }
  const urls = s.sources.filter((src) => /^[a-z]+:\/\//i.test(src));
  if (urls.length > 0) {
    if (!s.add) throw new Error("source can't be a URL for COPY: use ADD");
    if (urls.length !== s.sources.length) {
      throw new Error("ADD with URLs takes URLs only: put local files in a COPY of their own");
    }
    const dir = Deno.makeTempDirSync({ prefix: "trun-build-add-" });
    const names: string[] = [];
    try {
      for (const url of urls) names.push(await download(url, dir));
    } catch (e) {
      Deno.removeSync(dir, { recursive: true });
      throw e;
    }
    const downloaded = { dir, ignored: () => false };
    const entries = names.map((n) => ({ rel: n, info: Deno.lstatSync(`${dir}/${n}`) }));
    return {
      // Docker's rules for URLs: mode 0600 unless --chmod, never unpacked.
      request: { ...common, sources: names, add: false, chmod: s.chmod ?? "0600", contextDir: dir },
      inputs: [hashEntries(downloaded, entries), flags],
      cleanup: () => Deno.removeSync(dir, { recursive: true }),
    };
  }
  // The cache sees the content of what is copied, after .dockerignore.
  const entries = s.sources.filter((src) => !src.startsWith("<<")).flatMap((src) =>
    resolveSource(x.context, src).flatMap((e) =>
      e.info.isDirectory ? [e, ...walkContext(x.context, e.rel)] : [e]
    )
  );
  return {
    request: {
      ...common,
      contextDir: x.context.dir,
      ...(x.req.ignoreFile ? { ignoreFile: x.req.ignoreFile } : {}),
    },
    inputs: [hashEntries(x.context, entries), flags],
  };
}

/** Downloads `url` into `dir` under the last part of its path (ADD's name); returns the name. */
async function download(url: string, dir: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (e) {
    throw new Error(
      `downloading "${url}": ${(e as Error).message}; the network may not allow it: ` +
        "download the file into the context and COPY it",
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`downloading "${url}": ${res.status} ${res.statusText}`);
  }
  const name = decodeURIComponent(new URL(url).pathname.split("/").filter((p) => p).at(-1) ?? "") ||
    "download";
  const path = `${dir}/${name.replaceAll("/", "_")}`;
  await Deno.writeFile(path, res.body!);
  const modified = res.headers.get("last-modified");
  if (modified) {
    const t = new Date(modified);
    if (!Number.isNaN(t.getTime())) Deno.utimeSync(path, t, t);
  }
  return path.slice(dir.length + 1);
}
