/**
 * A real OCI registry on 127.0.0.1 for integration tests: Debian's
 * `docker-registry` (CNCF Distribution 2.8) with filesystem storage in a
 * temporary directory, no auth, deletes enabled. Also the fixture images,
 * built once per host into a cache and pushed into a fresh registry on
 * request (see `scripts/fixtures.ts`).
 *
 * Each test that starts a registry stops it in a `finally` (or with
 * `await using`), so Deno's resource sanitizer sees no leaked child.
 */

import { createHash } from "node:crypto";
import { buildFixtures, type FixtureSet } from "../../scripts/fixtures.ts";
import { DOCKER_REGISTRY_BIN } from "./host.ts";
import { pushLayout } from "./oci_push.ts";
import { findStaticBusybox } from "./rootfs.ts";

/** A running registry. */
export interface Registry {
  /** "http://127.0.0.1:PORT". */
  url: string;
  /** "127.0.0.1:PORT", the registry part of image references. */
  host: string;
  /** The registry's storage root (its `rootdirectory`). */
  storageDir: string;
  /** Stops the registry (SIGTERM, then SIGKILL after 5 s) and removes its files. */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A running registry holding the fixture images. */
export interface FixtureRegistry extends Registry {
  /** The layout the images were pushed from, with their digests. */
  fixtures: FixtureSet;
}

/** Options for `startRegistry()`. */
export interface RegistryOptions {
  /** The registry binary (default `/usr/bin/docker-registry`). */
  binary?: string;
  /** How long to wait for `GET /v2/` to answer 200 (default 15 s). */
  startTimeoutMs?: number;
}

/** A port nobody listens on right now (the registry binds it a moment later). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function registryConfig(storageDir: string, port: number): string {
  // JSON is YAML, and needs no quoting rules of its own.
  return JSON.stringify(
    {
      version: 0.1,
      log: { level: "warn", accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: `127.0.0.1:${port}`, secret: "trun-test-registry" },
    },
    null,
    2,
  );
}

/** Keeps the last `limit` bytes of a stream, so a failed start can say why. */
async function drainTail(stream: ReadableStream<Uint8Array>, tail: { text: string }) {
  const dec = new TextDecoder();
  for await (const chunk of stream) {
    tail.text = (tail.text + dec.decode(chunk, { stream: true })).slice(-8192);
  }
}

/**
 * Starts a registry on a free port of 127.0.0.1 and waits until
 * `GET /v2/` answers 200. A port taken between choosing and binding it
 * makes the start retry on another one.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

async function startOnce(opts: RegistryOptions): Promise<Registry> {
  const binary = opts.binary ?? DOCKER_REGISTRY_BIN;
  const dir = await Deno.makeTempDir({ prefix: "trun-registry-" });
  const storageDir = `${dir}/storage`;
  await Deno.mkdir(storageDir);
  const port = freePort();
  await Deno.writeTextFile(`${dir}/config.yml`, registryConfig(storageDir, port));
  const child = new Deno.Command(binary, {
    args: ["serve", `${dir}/config.yml`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const drained = Promise.all([drainTail(child.stdout, out), drainTail(child.stderr, out)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 5000);
      await status;
      clearTimeout(timer);
    }
    await drained;
    await Deno.remove(dir, { recursive: true });
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  while (true) {
    if (exited) {
      await stop();
      throw new Error(`Registry "${binary}" exited at start on ${host}: ${out.text.trim()}`);
    }
    try {
      const res = await fetch(`${url}/v2/`);
      await res.body?.cancel();
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Registry on ${host} did not answer GET /v2/ in time: ${out.text.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, host, storageDir, stop, [Symbol.asyncDispose]: stop };
}

/** The fixture cache: per user, so a root run and a user run never share files. */
function fixtureCacheRoot(): string {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  return `${tmp}/trun-fixtures-${Deno.uid() ?? 0}`;
}

/**
 * A key for the fixture content: the builder's source and the busybox it
 * packs. A change to either rebuilds the cache.
 */
async function fixtureKey(): Promise<string> {
  const h = createHash("sha256");
  for (const rel of ["../../scripts/fixtures.ts", "./rootfs.ts", "./oci_push.ts"]) {
    h.update(await Deno.readFile(new URL(rel, import.meta.url)));
  }
  const busybox = await findStaticBusybox();
  if (busybox !== null) {
    const st = await Deno.stat(busybox);
    h.update(`${busybox} ${st.size} ${st.mtime?.getTime()}`);
  }
  return h.digest("hex").slice(0, 16);
}

let layoutPromise: Promise<FixtureSet> | null = null;

/**
 * The fixture images as an OCI layout, built on first use and cached under
 * `$TMPDIR/trun-fixtures-<uid>/` across processes (a lock file keeps
 * concurrent test processes from building twice). Treat it as read-only.
 */
export function fixtureLayout(): Promise<FixtureSet> {
  if (layoutPromise === null) {
    layoutPromise = buildCachedLayout();
    layoutPromise.catch(() => layoutPromise = null);
  }
  return layoutPromise;
}

async function buildCachedLayout(): Promise<FixtureSet> {
  const root = fixtureCacheRoot();
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  // /tmp is shared: refuse a cache directory someone else made for us.
  const st = await Deno.lstat(root);
  if (!st.isDirectory || st.uid !== Deno.uid()) {
    throw new Error(`Fixture cache "${root}" is not a directory owned by uid ${Deno.uid()}`);
  }
  const key = await fixtureKey();
  const layoutDir = `${root}/${key}`;
  using lock = await Deno.open(`${root}/lock`, { create: true, write: true });
  await lock.lock(true);
  try {
    const index = await Deno.readTextFile(`${layoutDir}/index.json`).catch(() => null);
    if (index !== null) {
      const manifests = (JSON.parse(index) as {
        manifests: {
          mediaType: string;
          digest: string;
          size: number;
          annotations: Record<string, string>;
        }[];
      }).manifests;
      return {
        layoutDir,
        images: manifests.map((m) => ({
          ref: m.annotations["org.opencontainers.image.ref.name"] ?? "",
          mediaType: m.mediaType,
          digest: m.digest,
          size: m.size,
        })),
      };
    }
    // Stale keys and half-built directories of killed runs go first.
    for await (const e of Deno.readDir(root)) {
      if (e.name !== "lock") await Deno.remove(`${root}/${e.name}`, { recursive: true });
    }
    const tmp = `${layoutDir}.tmp`;
    const set = await buildFixtures(tmp);
    await Deno.rename(tmp, layoutDir);
    return { ...set, layoutDir };
  } finally {
    await lock.unlock();
  }
}

/** Options for `startFixtureRegistry()`. */
export interface FixtureRegistryOptions extends RegistryOptions {
  /** Push only these references ("trun-fixtures/busybox:latest"); default all (~35 MB, ~1 s). */
  images?: readonly string[];
}

/** Starts a registry and pushes the fixture images into it. */
export async function startFixtureRegistry(
  opts: FixtureRegistryOptions = {},
): Promise<FixtureRegistry> {
  const fixtures = await fixtureLayout();
  const reg = await startRegistry(opts);
  try {
    await pushLayout(fixtures.layoutDir, reg.host, opts.images);
  } catch (e) {
    await reg.stop();
    throw e;
  }
  return { ...reg, fixtures };
}
