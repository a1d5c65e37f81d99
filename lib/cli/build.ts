/**
 * `trun build`: an image from a Dockerfile, with Docker's flags and the
 * classic builder's progress lines (lib/build/builder.ts does the work);
 * and `trun build-step`, the internal command that runs a step's store
 * work in the storage user namespace.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import type { BuildBackend, BuildRequest } from "../build/builder.ts";
import type { StoreStepRequest } from "../build/store_steps.ts";
import { parseSecret } from "../build/run_mounts.ts";

/** The grammar of `trun build`. */
export const BUILD = defineCommand({
  name: "build",
  usage: "[OPTIONS] PATH | -",
  summary: "Build an image from a Dockerfile",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    tag: { short: "t", kind: "list", value: "NAME[:TAG]", help: "Name the image (repeatable)" },
    file: {
      short: "f",
      kind: "string",
      value: "FILE",
      help: "The Dockerfile (default PATH/Dockerfile; - for stdin)",
    },
    "build-arg": { kind: "list", value: "NAME[=VALUE]", help: "Set a build-time variable" },
    target: { kind: "string", value: "STAGE", help: "Build this stage and what it needs" },
    "no-cache": { kind: "bool", help: "Run every step, without the cache" },
    pull: {
      kind: "string",
      value: "POLICY",
      help: "Pull base images: missing (default), always (also a bare --pull) or never",
    },
    platform: {
      kind: "string",
      value: "OS/ARCH",
      help: "Target platform: only this host's is supported",
    },
    label: { kind: "list", value: "KEY=VALUE", help: "Set a label on the image" },
    iidfile: { kind: "string", value: "FILE", help: "Write the image id to FILE" },
    quiet: { short: "q", kind: "bool", help: "Print only the image id" },
    network: {
      kind: "string",
      value: "MODE",
      help: "The network of RUN instructions (as run's --network)",
    },
    secret: {
      kind: "list",
      value: "id=ID,src=FILE",
      help: "A secret for RUN --mount=type=secret (a file, or env=VAR); never in a layer",
    },
  },
});

const STEP = defineCommand({
  name: "build-step",
  usage: "SOCKET",
  summary: "(internal) run one build step's store work",
  minArgs: 1,
  maxArgs: 1,
  flags: {},
});

/** An error with the docker CLI's exit status for a failed build (1). */
function failure(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

/** `--build-arg NAME=VALUE`, or `NAME` alone from trun's own environment (Docker's rule). */
function buildArgs(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq === 0) throw new UsageError(BUILD, `invalid --build-arg "${v}": the name is empty`);
    if (eq > 0) out[v.slice(0, eq)] = v.slice(eq + 1);
    else {
      const env = Deno.env.get(v);
      if (env !== undefined) out[v] = env;
    }
  }
  return out;
}

/** `--secret` values by id; a missing file is an error now, not at the RUN. */
function secrets(values: string[]): Record<string, { src?: string; env?: string }> {
  const out: Record<string, { src?: string; env?: string }> = {};
  for (const v of values) {
    let s;
    try {
      s = parseSecret(v);
    } catch (e) {
      throw new UsageError(BUILD, (e as Error).message);
    }
    if (s.src !== undefined) {
      try {
        s.src = Deno.realPathSync(s.src);
      } catch {
        throw failure(`secret "${s.id}": "${s.src}" not found`);
      }
    }
    out[s.id] = { ...(s.src ? { src: s.src } : {}), ...(s.env ? { env: s.env } : {}) };
  }
  return out;
}

function labels(values: string[]): Record<string, string> {
  return Object.fromEntries(values.map((v) => {
    const eq = v.indexOf("=");
    return eq < 0 ? [v, ""] : [v.slice(0, eq), v.slice(eq + 1)];
  }));
}

/** Runs `trun build`. */
export async function buildCommand(argv: string[], name = BUILD.name): Promise<number> {
  const def = { ...BUILD, name };
  // Docker's --pull takes no value; Podman's takes one. A bare --pull is "always".
  const p = parseArgs(def, argv.map((a) => (a === "--pull" ? "--pull=always" : a)));
  if (p.help) return printHelp(def);
  const pull = p.flags.pull === "true"
    ? "always"
    : p.flags.pull === "false"
    ? "missing"
    : p.flags.pull ?? "missing";
  if (pull !== "always" && pull !== "missing" && pull !== "never") {
    throw new UsageError(def, `unsupported --pull "${pull}": use missing, always or never`);
  }
  if (p.flags.platform !== undefined) {
    const { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } = await import(
      "../oci/manifest.ts"
    );
    const want = formatPlatform(normalizePlatform(parsePlatform(p.flags.platform)));
    const have = formatPlatform(normalizePlatform(hostPlatform()));
    if (want !== have) {
      throw new UsageError(
        def,
        `--platform ${p.flags.platform}: trun builds for this host's platform (${have}) only`,
      );
    }
  }
  const { parseReference } = await import("../oci/reference.ts");
  for (const t of p.flags.tag) parseReference(t);
  const [path] = p.args as [string];
  const { context, dockerfile, ignoreFile, cleanup } = await readInputs(path, p.flags.file);
  try {
    const req: BuildRequest = {
      contextDir: context,
      dockerfile,
      ...(ignoreFile ? { ignoreFile } : {}),
      buildArgs: buildArgs(p.flags["build-arg"]),
      ...(p.flags.target ? { target: p.flags.target } : {}),
      noCache: p.flags["no-cache"],
      pull,
      labels: labels(p.flags.label),
      ...(p.flags.network ? { network: p.flags.network } : {}),
      quiet: p.flags.quiet,
      secrets: secrets(p.flags.secret),
    };
    const { build } = await import("../build/builder.ts");
    let id: string;
    const be = await backend();
    try {
      id = await build(req, be);
    } catch (e) {
      // A failed build is docker build's exit status 1, whatever failed.
      if (e instanceof Error && (e as { exitCode?: number }).exitCode === undefined) {
        throw Object.assign(e, { exitCode: 1 });
      }
      throw e;
    } finally {
      await be.close();
    }
    const { openStore } = await import("../store/mod.ts");
    const store = openStore();
    try {
      for (const t of p.flags.tag) store.tagImage(id, t);
    } finally {
      store.close();
    }
    if (p.flags.iidfile) Deno.writeTextFileSync(p.flags.iidfile, id);
    if (p.flags.quiet) {
      println(id);
    } else {
      println(`Successfully built ${id.slice(7, 19)}`);
      const { familiar } = await import("./_image_common.ts");
      for (const t of p.flags.tag) {
        println(`Successfully tagged ${familiar(t)}`);
      }
    }
    return 0;
  } finally {
    cleanup();
  }
}

/** The context directory and the Dockerfile's text, from a directory, stdin or `-f`. */
async function readInputs(path: string, file: string | undefined): Promise<{
  context: string;
  dockerfile: string;
  ignoreFile?: string;
  cleanup: () => void;
}> {
  const readStdin = async () =>
    new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  let context = path;
  let cleanup = () => {};
  let stdinBytes: Uint8Array | undefined;
  if (path === "-") {
    // A tar on stdin is the context; anything else is a Dockerfile with an empty one.
    stdinBytes = await readStdin();
    const tmp = Deno.makeTempDirSync({ prefix: "trun-build-context-" });
    cleanup = () => Deno.removeSync(tmp, { recursive: true });
    context = tmp;
    const { detectCompression, applyLayer } = await import("../oci/layer_tar.ts");
    const isTar = detectCompression(stdinBytes) !== "none" ||
      (stdinBytes.length >= 263 &&
        new TextDecoder().decode(stdinBytes.subarray(257, 262)) === "ustar");
    if (isTar) {
      await applyLayer(ReadableStream.from([stdinBytes]), tmp, {
        what: "the build context on stdin",
        whiteouts: "none",
        squashOwnership: { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 },
      });
    } else {
      if (file !== undefined) throw failure("a Dockerfile on stdin and -f cannot both be given");
      return { context, dockerfile: new TextDecoder().decode(stdinBytes), cleanup };
    }
  } else {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch {
      throw failure(`unable to prepare context: path "${path}" not found`);
    }
    if (!info.isDirectory) throw failure(`unable to prepare context: "${path}" is not a directory`);
    context = Deno.realPathSync(path);
  }
  let dockerfilePath: string | undefined;
  let dockerfile: string;
  if (file === "-") {
    if (stdinBytes !== undefined) {
      throw failure("stdin cannot be both the context and the Dockerfile");
    }
    dockerfile = new TextDecoder().decode(await readStdin());
  } else {
    // -f is relative to the working directory, as Docker reads it.
    dockerfilePath = file ?? `${context}/Dockerfile`;
    if (file === undefined) {
      try {
        Deno.statSync(dockerfilePath);
      } catch {
        dockerfilePath = `${context}/Containerfile`;
      }
    }
    try {
      dockerfile = Deno.readTextFileSync(dockerfilePath);
    } catch {
      cleanup();
      throw failure(`unable to read the Dockerfile "${dockerfilePath}": no such file`);
    }
  }
  const ignore = dockerfilePath ? `${dockerfilePath}.dockerignore` : undefined;
  let ignoreFile: string | undefined;
  try {
    if (ignore) Deno.statSync(ignore);
    ignoreFile = ignore;
  } catch {
    // Only the context's .dockerignore, if any.
  }
  return { context, dockerfile, ...(ignoreFile ? { ignoreFile } : {}), cleanup };
}

/** The real backend: the store, pulls, and containers started as `trun run` starts them. */
async function backend(): Promise<BuildBackend & { close(): Promise<void> }> {
  const { openStore } = await import("../store/mod.ts");
  const { storageUsernsMapping, runTrunForStorage } = await import("../runtime/userns_exec.ts");
  const { selfCommand } = await import("../runtime/self_exec.ts");
  const { runStoreStep } = await import("../build/store_steps.ts");
  const { cacheDirName } = await import("../build/run_mounts.ts");
  const withStore = <T>(f: (s: ReturnType<typeof openStore>) => T): T => {
    const store = openStore(undefined, { repair: false });
    try {
      return f(store);
    } finally {
      store.close();
    }
  };
  const err = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
  let helper: StepHelper | undefined;
  return {
    async baseImage(ref, pull) {
      const { imageRootfs } = await import("../container/image_rootfs.ts");
      const { imageId } = await imageRootfs(ref, { pull });
      const config = withStore((s) => s.listImages().find((i) => i.id === imageId)?.config);
      return { id: imageId, config: config?.config ?? {} };
    },
    cached: (key) => withStore((s) => s.cachedStep(key)),
    remember: (key, id) => withStore((s) => s.rememberStep(key, id)),
    async storeStep(req: StoreStepRequest) {
      if (storageUsernsMapping() === null) {
        const store = openStore(undefined, { repair: false });
        try {
          return await runStoreStep(store, req);
        } finally {
          store.close();
        }
      }
      helper ??= await startStepHelper(runTrunForStorage);
      const result = JSON.parse(await helper.ask(JSON.stringify(req))) as {
        id?: string;
        error?: string;
      };
      if (!result.id) throw new Error(result.error ?? "the storage helper gave no answer");
      return result.id;
    },
    async close() {
      await helper?.close();
    },
    cacheMountDir(id) {
      const dir = withStore((s) => `${s.root}/build-mounts/${cacheDirName(id)}`);
      Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
      return dir;
    },
    async runStep(image, step, { network, flags, quiet }) {
      const container = `trun-build-${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
      const args = [
        "run",
        "--name",
        container,
        "--entrypoint",
        "",
        "-w",
        step.workdir,
        ...(step.user ? ["-u", step.user] : []),
        ...(network ? ["--network", network] : []),
        ...step.env.flatMap((e) => ["-e", e]),
        ...flags,
        image,
        ...step.argv,
      ];
      const [exe, ...rest] = selfCommand(args);
      const out = await new Deno.Command(exe!, {
        args: rest,
        stdin: "null",
        stdout: quiet ? "null" : "inherit",
        stderr: quiet ? "null" : "inherit",
      }).output();
      return { code: out.signal ? 128 : out.code, container };
    },
    async removeContainer(container) {
      const [exe, ...rest] = selfCommand(["rm", "-f", container]);
      await new Deno.Command(exe!, { args: rest, stdin: "null", stdout: "null", stderr: "null" })
        .output();
    },
    print: (line) => println(line),
    warn: err,
  };
}

/** A storage helper that runs the build's store steps, one JSON line each way. */
interface StepHelper {
  /** Sends one request line; resolves with the answer line. */
  ask(line: string): Promise<string>;
  /** Ends the helper and removes its socket. */
  close(): Promise<void>;
}

/**
 * Starts `trun build-step SOCKET` in the storage user namespace (with a
 * mount namespace of its own, where image layers can be mounted) and
 * connects to it: one helper for the whole build, instead of one start of
 * trun per step.
 */
async function startStepHelper(
  runTrunForStorage: typeof import("../runtime/userns_exec.ts").runTrunForStorage,
): Promise<StepHelper> {
  const dir = Deno.makeTempDirSync({ prefix: "trun-build-" });
  const socket = `${dir}/steps.sock`;
  let exited = false;
  const done = runTrunForStorage(["build-step", socket], { quiet: true, mountNamespace: true })
    .finally(() => (exited = true));
  let conn: Deno.UnixConn | undefined;
  for (let i = 0; i < 400 && !exited && conn === undefined; i++) {
    try {
      conn = await Deno.connect({ transport: "unix", path: socket });
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  if (conn === undefined) {
    Deno.removeSync(dir, { recursive: true });
    throw new Error(`the storage helper for build steps did not start (exit ${await done})`);
  }
  const c = conn;
  const lines = readLines(c);
  return {
    async ask(line) {
      await c.write(new TextEncoder().encode(`${line}\n`));
      const answer = await lines.next();
      if (answer.done) {
        throw new Error(`the storage helper for build steps ended (exit ${await done})`);
      }
      return answer.value;
    },
    async close() {
      c.close();
      await done;
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** Newline-separated lines read from `conn`. */
async function* readLines(conn: Deno.Conn): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buffered = "";
  const buf = new Uint8Array(65536);
  for (;;) {
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      return;
    }
    if (n === null) return;
    buffered += dec.decode(buf.subarray(0, n), { stream: true });
  }
}

/**
 * Runs `trun build-step SOCKET` (internal): listens on SOCKET for one
 * connection and answers each JSON request line with `{"id"}` or
 * `{"error"}`, until the builder hangs up.
 */
export async function buildStepCommand(argv: string[]): Promise<number> {
  const p = parseArgs(STEP, argv);
  if (p.help) return printHelp(STEP);
  const { openStore } = await import("../store/mod.ts");
  const { runStoreStep } = await import("../build/store_steps.ts");
  const listener = Deno.listen({ transport: "unix", path: p.args[0]! });
  const conn = await listener.accept();
  listener.close();
  try {
    for await (const line of readLines(conn)) {
      let answer;
      const store = openStore(undefined, { repair: false });
      try {
        answer = { id: await runStoreStep(store, JSON.parse(line) as StoreStepRequest) };
      } catch (e) {
        answer = { error: (e as Error).message };
      } finally {
        store.close();
      }
      await conn.write(new TextEncoder().encode(`${JSON.stringify(answer)}\n`));
    }
  } finally {
    conn.close();
  }
  return 0;
}
