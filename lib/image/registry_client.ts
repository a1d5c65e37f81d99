/**
 * A client for the OCI Distribution API v2 (the Docker Registry HTTP API):
 * ping, manifests, blobs and uploads, over `fetch`. It owns everything that
 * makes pulls reliable on real networks: mirrors and the HTTPS→HTTP fallback
 * for insecure registries, token and Basic auth (through `auth.ts`),
 * retries with exponential backoff on 5xx, 429 (`Retry-After`) and dropped
 * connections, connect and idle timeouts, resumable blob downloads
 * (`Range: bytes=N-` on a `.partial` file), and digest checks on everything
 * it reads, so nothing unverified ever reaches the store.
 * Follows the OCI distribution-spec v1.1.
 */

import { createHash, type Hash } from "node:crypto";
import { Authenticator, AuthError, type CredentialsProvider, registryErrorDetail } from "./auth.ts";
import {
  formatPlatform,
  hostPlatform,
  type ImageConfig,
  type ImageManifest,
  MANIFEST_MEDIA_TYPES,
  normalizePlatform,
  parseImageConfig,
  parseManifest,
  type Platform,
  platformRank,
  selectManifest,
} from "../oci/manifest.ts";
import { type ImageReference, normalizeRegistry } from "../oci/reference.ts";
import {
  emptyRegistriesConfig,
  type RegistriesConfig,
  registriesConfigPath,
  registryEndpoints,
} from "./registries_config.ts";

/** How failed requests are retried. */
export interface RetryPolicy {
  /** Total tries per request, the first included. */
  attempts: number;
  /** Delay before the first retry; doubles each time. */
  baseDelayMs: number;
  /** Longest delay between tries. */
  maxDelayMs: number;
  /** Longest `Retry-After` honoured; a longer one is cut to this. */
  maxRetryAfterMs: number;
}

/** Time limits for one request. */
export interface Timeouts {
  /** From sending the request to the response headers. */
  connectMs: number;
  /** Longest silence while reading a body. */
  idleMs: number;
}

/** The defaults: 5 tries, 0.5 s doubling to 10 s, Retry-After up to 60 s. */
export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

/** The defaults: 30 s to get headers, 60 s of silence in a body. */
export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 30_000, idleMs: 60_000 };

/** Options for a RegistryClient. */
export interface RegistryClientOptions {
  /** Mirrors and insecure registries; default: none. */
  config?: RegistriesConfig;
  /** Where credentials come from; default: trun's then Docker's files. */
  credentials?: CredentialsProvider;
  /** `pull` uses mirrors; `push` talks to the registry itself only. */
  purpose?: "pull" | "push";
  /** Retry policy (partial: the rest from DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
  /** Timeouts (partial: the rest from DEFAULT_TIMEOUTS). */
  timeouts?: Partial<Timeouts>;
  /** `fetch` to use; tests may wrap it. */
  fetch?: typeof fetch;
}

/** A manifest as the registry sent it, with its verified digest. */
export interface ManifestResponse {
  /** The media type (from Content-Type, else the document). */
  mediaType: string;
  /** The digest of `bytes`, verified. */
  digest: string;
  /** The exact bytes (their digest is the image's identity). */
  bytes: Uint8Array;
}

/** Everything needed to pull one platform's image: manifest, config and where they came from. */
export interface ResolvedImage {
  /** The reference that was resolved. */
  reference: ImageReference;
  /** Digest of the index or manifest list, when the reference pointed at one. */
  indexDigest?: string;
  /** The platform's manifest as served. */
  manifest: ManifestResponse;
  /** The parsed manifest. */
  parsedManifest: ImageManifest;
  /** The config blob, verified. */
  config: { digest: string; bytes: Uint8Array; parsed: ImageConfig };
  /** The platform of the chosen image. */
  platform: Platform;
  /** Things the user should know but that do not stop the pull. */
  warnings: string[];
}

/** Options for fetchBlob(). */
export interface FetchBlobOptions {
  /** Expected size (from the descriptor): checked, and used for progress and resume. */
  size?: number;
  /** Called as bytes arrive, with the bytes so far (including a resumed prefix). */
  onProgress?: (current: number, total: number | undefined) => void;
  /** Cancels the download (the `.partial` file stays, for a later resume). */
  signal?: AbortSignal;
  /**
   * Where the bytes are written while they arrive (default `destPath.partial`).
   * When it equals `destPath` the verified file is left there, not renamed:
   * the store's stable temporary name, which it commits itself.
   */
  partialPath?: string;
}

/** A registry answered with an error; `status` is the HTTP status when there was one. */
export class RegistryError extends Error {
  /** HTTP status, if the registry answered. */
  readonly status: number | undefined;
  /** Builds the error with a message for the user. */
  constructor(message: string, status?: number) {
    super(message);
    this.name = "RegistryError";
    this.status = status;
  }
}

/** The registry does not have the manifest or blob asked for. */
export class NotFoundError extends RegistryError {
  /** Builds the error with a message for the user. */
  constructor(message: string) {
    super(message, 404);
    this.name = "NotFoundError";
  }
}

/** Content did not match its digest (or its declared size). */
export class DigestMismatchError extends Error {
  /** Builds the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "DigestMismatchError";
  }
}

/** A request waited longer than the connect or idle timeout. */
export class RegistryTimeoutError extends Error {
  /** Builds the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "RegistryTimeoutError";
  }
}

// Manifests and configs are small; these caps stop a hostile registry from
// making us buffer gigabytes (containerd uses 4 MiB for manifests).
const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_CONFIG_BYTES = 32 << 20;
const MAX_REDIRECTS = 10;
const USER_AGENT = "trun/0.1";

interface EndpointState {
  url: string;
  mirror: boolean;
  auth: Authenticator;
  ping?: Promise<void>;
  failure?: unknown;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Makes the body anew for each try (a stream cannot be sent twice). */
  body?: () => BodyInit;
  signal?: AbortSignal | undefined;
  /** Retry 5xx, 429 and connection errors (default true). */
  retry?: boolean;
  /** Apply the connect timeout until the headers arrive (default true). */
  headerTimeout?: boolean;
}

/** A Distribution API v2 client for one registry. */
export class RegistryClient {
  /** The normalised registry name (`docker.io`, `localhost:5000`). */
  readonly registry: string;
  readonly #endpoints: EndpointState[];
  readonly #retry: RetryPolicy;
  readonly #timeouts: Timeouts;
  readonly #fetch: typeof fetch;

  /** Builds a client; nothing is sent until the first call. */
  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = normalizeRegistry(registry);
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.#fetch = options.fetch ?? fetch;
    const config = options.config ?? emptyRegistriesConfig();
    const send = (url: string, init: RequestInit) =>
      this.#followRedirects(url, {
        ...(init.method !== undefined ? { method: init.method } : {}),
        headers: init.headers as Record<string, string>,
        ...(init.body !== undefined && init.body !== null
          ? { body: () => init.body as BodyInit }
          : {}),
      });
    this.#endpoints = registryEndpoints(config, this.registry, options.purpose ?? "pull").map(
      (e) => ({
        url: e.url,
        mirror: e.mirror,
        // A mirror is another party: it gets its own credentials, never the registry's.
        auth: new Authenticator(
          e.mirror ? new URL(e.url).host : this.registry,
          send,
          options.credentials !== undefined ? { credentials: options.credentials } : {},
        ),
      }),
    );
  }

  /** Checks that the registry answers `/v2/`, and learns how it wants us to authenticate. */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.#withEndpoint(() => Promise.resolve(), signal);
  }

  /**
   * Verifies the credentials the client was given: a token with them (Bearer
   * registries) or `/v2/` with Basic auth must succeed.
   */
  async checkLogin(signal?: AbortSignal): Promise<void> {
    await this.#withEndpoint(async (ep) => {
      if (!ep.auth.challenged) return;
      if ((await ep.auth.credentials()) === undefined) {
        throw new AuthError(`No credentials to check for "${this.registry}"`);
      }
      const res = await this.#authed(ep, "/v2/", [], { signal });
      await res.body?.cancel();
      if (res.status === 401 || res.status === 403) {
        throw new AuthError(
          `Login to "${this.registry}" failed: the registry refused the user name or password`,
        );
      }
      if (!res.ok) {
        throw new RegistryError(
          `Login to "${this.registry}" failed: GET /v2/ answered ${res.status}`,
          res.status,
        );
      }
    }, signal);
  }

  /**
   * Fetches a manifest (any of the four types) by tag or digest. The digest
   * is checked against the reference's digest, else against the registry's
   * `Docker-Content-Digest`.
   */
  getManifest(ref: ImageReference, signal?: AbortSignal): Promise<ManifestResponse> {
    const path = `/v2/${ref.repository}/manifests/${ref.apiReference}`;
    return this.#withEndpoint(async (ep) => {
      const res = await this.#authed(ep, path, [pullScope(ref.repository)], {
        headers: { accept: MANIFEST_MEDIA_TYPES.join(", ") },
        signal,
      });
      if (!res.ok) throw await this.#responseError(res, `manifest "${ref.apiReference}"`, ref);
      const bytes = await readBody(
        res,
        MAX_MANIFEST_BYTES,
        this.#timeouts.idleMs,
        () => `The manifest of "${ref}" is larger than ${MAX_MANIFEST_BYTES} bytes: refusing it`,
      );
      const expected = ref.digest ?? res.headers.get("docker-content-digest") ?? undefined;
      const algorithm = expected !== undefined
        ? digestAlgorithm(expected, ref.toString())
        : "sha256";
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
      if (expected !== undefined && actual !== expected) {
        throw new DigestMismatchError(
          `The manifest of "${ref}" from "${ep.url}" has digest "${actual}", not "${expected}": the registry or a proxy sent bad data`,
        );
      }
      let mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
      if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
        // Some registries send a generic JSON type: the document says what it is.
        try {
          mediaType = parseManifest(bytes, mediaType, ref.toString()).mediaType;
        } catch {
          // left as sent; resolveImage() reports what is wrong with it
        }
      }
      return { mediaType, digest: actual, bytes };
    }, signal);
  }

  /**
   * Resolves a reference to one platform's image: follows an index or
   * manifest list to the manifest for `platform` (default: this machine),
   * then fetches and checks the config. An explicit platform that the
   * image does not match is an error; the default only warns, as Docker.
   */
  async resolveImage(
    ref: ImageReference,
    platform?: Platform,
    signal?: AbortSignal,
  ): Promise<ResolvedImage> {
    const wanted = normalizePlatform(platform ?? hostPlatform());
    const top = await this.getManifest(ref, signal);
    let parsed = parseManifest(top.bytes, top.mediaType, ref.toString());
    let manifest = top;
    let indexDigest: string | undefined;
    if (parsed.kind === "index") {
      indexDigest = top.digest;
      const choice = selectManifest(parsed.index, wanted, ref.toString());
      manifest = await this.getManifest(ref.withDigest(choice.digest), signal);
      if (manifest.bytes.length !== choice.size) {
        throw new DigestMismatchError(
          `The manifest "${choice.digest}" of "${ref}" is ${manifest.bytes.length} bytes, but its index says ${choice.size}`,
        );
      }
      parsed = parseManifest(
        manifest.bytes,
        manifest.mediaType || choice.mediaType,
        ref.toString(),
      );
      if (parsed.kind !== "manifest") {
        throw new RegistryError(
          `The index of "${ref}" points at another index ("${choice.digest}"): nested indexes are not supported`,
        );
      }
    }
    const image = parsed.manifest;
    const configBytes = await this.fetchBlobBytes(
      ref.repository,
      image.config.digest,
      image.config.size,
      signal,
    );
    const config = parseImageConfig(configBytes, ref.toString());
    const actual = normalizePlatform({
      os: config.os,
      architecture: config.architecture,
      ...(config.variant !== undefined ? { variant: config.variant } : {}),
    });
    const warnings: string[] = [];
    if (platformRank(actual, wanted) === undefined) {
      const msg = `The image "${ref.familiar}" is for platform "${
        formatPlatform(actual)
      }", which does not match ${platform ? "the requested" : "this machine's"} "${
        formatPlatform(wanted)
      }"`;
      if (platform !== undefined) throw new RegistryError(msg);
      warnings.push(msg);
    }
    return {
      reference: ref,
      ...(indexDigest !== undefined ? { indexDigest } : {}),
      manifest: { ...manifest, mediaType: parsed.mediaType },
      parsedManifest: image,
      config: { digest: image.config.digest, bytes: configBytes, parsed: config },
      platform: actual,
      warnings,
    };
  }

  /** Fetches a small blob (an image config) into memory, checking size and digest. */
  fetchBlobBytes(
    repository: string,
    digest: string,
    size: number | undefined,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    const algorithm = digestAlgorithm(digest, `${this.registry}/${repository}`);
    const limit = size ?? MAX_CONFIG_BYTES;
    if (limit > MAX_CONFIG_BYTES) {
      throw new RegistryError(
        `Blob "${digest}" of "${this.registry}/${repository}" is ${limit} bytes, too large to hold in memory`,
      );
    }
    return this.#withEndpoint(async (ep) => {
      for (let attempt = 1;; attempt++) {
        const res = await this.#authed(ep, `/v2/${repository}/blobs/${digest}`, [
          pullScope(repository),
        ], { signal });
        if (!res.ok) throw await this.#responseError(res, `blob "${digest}"`, repository);
        let bytes: Uint8Array;
        try {
          bytes = await readBody(
            res,
            limit,
            this.#timeouts.idleMs,
            () =>
              `Blob "${digest}" of "${this.registry}/${repository}" is larger than the ${limit} bytes expected`,
          );
        } catch (e) {
          if (signal?.aborted) throw signal.reason ?? e;
          if (!isTransient(e) || attempt >= this.#retry.attempts) throw e;
          await sleep(this.#backoff(attempt), signal);
          continue;
        }
        const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
        if (actual !== digest || (size !== undefined && bytes.length !== size)) {
          throw new DigestMismatchError(
            `Blob "${digest}" of "${this.registry}/${repository}" arrived with digest "${actual}" (${bytes.length} bytes): the registry or a proxy sent bad data`,
          );
        }
        return bytes;
      }
    }, signal);
  }

  /**
   * Downloads a blob to `destPath`, verified. Bytes go to `destPath.partial`
   * and are hashed as they arrive; an existing `.partial` is re-hashed and
   * resumed with a Range request (a resumed download whose digest does not
   * match is tried once more from zero: the prefix on disk may have been
   * the bad part). Only a complete, verified file is renamed to
   * `destPath`; a digest mismatch removes the partial file. A process
   * killed at any point leaves at most a `.partial` that the next call
   * resumes from.
   */
  async fetchBlob(
    repository: string,
    digest: string,
    destPath: string,
    options: FetchBlobOptions = {},
  ): Promise<void> {
    const where = `${this.registry}/${repository}`;
    const algorithm = digestAlgorithm(digest, where);
    const partial = options.partialPath ?? `${destPath}.partial`;
    const { size, signal, onProgress } = options;
    let hash = createHash(algorithm);
    let offset = await rehashPartial(partial, hash, size);
    if (offset === 0) hash = createHash(algorithm); // the prefix may have been discarded

    const restart = async () => {
      await Deno.truncate(partial, 0).catch(() => {});
      hash = createHash(algorithm);
      offset = 0;
      onProgress?.(0, size);
    };
    // A complete leftover (killed between download and commit) is either
    // the blob or garbage: only its digest can tell.
    if (size !== undefined && offset === size) {
      if (`${algorithm}:${hash.copy().digest("hex")}` !== digest) await restart();
    }
    onProgress?.(offset, size);

    const download = async () => {
      if (size === undefined || offset < size) {
        try {
          await this.#withEndpoint(async (ep) => {
            let failures = 0;
            for (;;) {
              const headers: Record<string, string> = {};
              if (offset > 0) headers.range = `bytes=${offset}-`;
              const res = await this.#authed(ep, `/v2/${repository}/blobs/${digest}`, [
                pullScope(repository),
              ], { headers, signal });
              if (res.status === 416 && offset > 0) {
                // The registry cannot serve from where we stopped: start over.
                await res.body?.cancel();
                await restart();
                continue;
              }
              if (res.status !== 200 && res.status !== 206) {
                throw await this.#responseError(res, `blob "${digest}"`, repository);
              }
              if (res.status === 206 && rangeStart(res.headers.get("content-range")) !== offset) {
                await res.body?.cancel();
                await restart();
                continue;
              }
              if (res.status === 200 && offset > 0) await restart(); // Range ignored: full body follows
              const before = offset;
              try {
                await this.#appendBody(res, partial, (chunk) => {
                  if (size !== undefined && offset + chunk.length > size) {
                    throw new DigestMismatchError(
                      `Blob "${digest}" of "${where}" is larger than the ${size} bytes its manifest declares: the registry or a proxy sent bad data`,
                    );
                  }
                  hash.update(chunk);
                  offset += chunk.length;
                  onProgress?.(offset, size);
                });
                if (size !== undefined && offset < size) {
                  throw new RegistryError(
                    `The download of blob "${digest}" ended early at ${offset} of ${size} bytes`,
                  );
                }
                return;
              } catch (e) {
                if (signal?.aborted) throw signal.reason ?? e;
                if (!isTransient(e)) throw e;
                // A try that made progress does not count against the limit: a
                // long layer over a flaky link should finish, bit by bit.
                failures = offset > before ? 1 : failures + 1;
                if (failures >= this.#retry.attempts) {
                  throw new RegistryError(
                    `Cannot download blob "${digest}" of "${where}" after ${failures} tries: ${
                      (e as Error).message
                    }`,
                  );
                }
                await sleep(this.#backoff(failures), signal);
              }
            }
          }, signal);
        } catch (e) {
          // Bytes that cannot be right must not be resumed from later.
          if (e instanceof DigestMismatchError) await Deno.remove(partial).catch(() => {});
          throw e;
        }
      }
    };
    // A resumed download that does not add up may have started from a
    // corrupt `.partial` on this disk: once from zero, before blaming the
    // registry.
    const resumed = offset > 0;
    await download();
    let actual = `${algorithm}:${hash.copy().digest("hex")}`;
    if (resumed && (actual !== digest || (size !== undefined && offset !== size))) {
      await restart();
      await download();
      actual = `${algorithm}:${hash.copy().digest("hex")}`;
    }
    if (actual !== digest || (size !== undefined && offset !== size)) {
      await Deno.remove(partial).catch(() => {});
      throw new DigestMismatchError(
        `Blob "${digest}" of "${where}" arrived with digest "${actual}" (${offset} bytes): the registry or a proxy sent bad data; the download was removed, try again`,
      );
    }
    // Make the bytes durable before the name says the blob is complete.
    const f = await Deno.open(partial, { read: true, write: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
    if (partial !== destPath) await Deno.rename(partial, destPath);
  }

  /** True when the registry already has the blob in this repository (HEAD). */
  blobExists(repository: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    return this.#withEndpoint(async (ep) => {
      const res = await this.#authed(ep, `/v2/${repository}/blobs/${digest}`, [
        pushScope(repository),
      ], { method: "HEAD", signal });
      await res.body?.cancel();
      if (res.status === 200) return true;
      if (res.status === 404) return false;
      throw await this.#responseError(res, `blob "${digest}"`, repository);
    }, signal);
  }

  /**
   * Asks the registry to link blob `digest` from repository `from` into
   * `repository` (a cross-repository mount): true when it did (201). A
   * registry that cannot answers 202 with an upload session, which is
   * cancelled here; false then.
   */
  mountBlob(
    repository: string,
    digest: string,
    from: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const scopes = [pushScope(repository), pullScope(from)];
    return this.#withEndpoint(async (ep) => {
      const res = await this.#authed(ep, `/v2/${repository}/blobs/uploads/${query}`, scopes, {
        method: "POST",
        headers: { "content-length": "0" },
        signal,
      });
      await res.body?.cancel();
      if (res.status === 201) return true;
      if (res.status !== 202) return false;
      const location = res.headers.get("location");
      if (location !== null) {
        // Best effort: an abandoned session expires on its own.
        try {
          const del = await this.#authed(ep, new URL(location, `${ep.url}/`).href, scopes, {
            method: "DELETE",
            signal,
            retry: false,
          });
          await del.body?.cancel();
        } catch {
          // The registry garbage-collects it.
        }
      }
      return false;
    }, signal);
  }

  /**
   * Uploads a blob: a POST to open the upload, then one monolithic PUT with
   * `?digest=`. With `mountFrom`, first asks the registry to link the blob
   * from another repository (no bytes sent when it can).
   */
  pushBlob(
    repository: string,
    digest: string,
    size: number,
    openStream: () => ReadableStream<Uint8Array> | Uint8Array,
    options: { mountFrom?: string; signal?: AbortSignal } = {},
  ): Promise<void> {
    const { signal, mountFrom } = options;
    const scopes = [pushScope(repository), ...(mountFrom ? [pullScope(mountFrom)] : [])];
    return this.#withEndpoint(async (ep) => {
      // A failed upload session cannot be trusted to continue: each try opens
      // a new one and sends the whole blob again.
      for (let attempt = 1;; attempt++) {
        try {
          await this.#uploadOnce(ep, repository, digest, size, openStream, scopes, options);
          return;
        } catch (e) {
          if (signal?.aborted) throw signal.reason ?? e;
          if (!isTransient(e) || attempt >= this.#retry.attempts) throw e;
          await sleep(this.#backoff(attempt), signal);
        }
      }
    }, signal);
  }

  async #uploadOnce(
    ep: EndpointState,
    repository: string,
    digest: string,
    size: number,
    openStream: () => ReadableStream<Uint8Array> | Uint8Array,
    scopes: string[],
    options: { mountFrom?: string; signal?: AbortSignal },
  ): Promise<void> {
    const { signal, mountFrom } = options;
    const query = mountFrom
      ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`
      : "";
    const start = await this.#authed(ep, `/v2/${repository}/blobs/uploads/${query}`, scopes, {
      method: "POST",
      headers: { "content-length": "0" },
      signal,
    });
    await start.body?.cancel();
    if (start.status === 201 && mountFrom) return;
    if (start.status !== 202) {
      throw await this.#responseError(start, `upload of blob "${digest}"`, repository);
    }
    const location = start.headers.get("location");
    if (location === null) {
      throw new RegistryError(
        `Registry "${this.registry}" opened an upload for "${repository}" without a Location header`,
      );
    }
    const url = new URL(location, `${ep.url}/`);
    url.searchParams.set("digest", digest);
    const res = await this.#authed(ep, url.href, scopes, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream", "content-length": String(size) },
      body: () => openStream() as BodyInit,
      signal,
      retry: false,
      // The answer comes only after the whole blob is sent: no header timeout.
      headerTimeout: false,
    });
    await res.body?.cancel();
    if (res.status !== 201) {
      throw await this.#responseError(res, `upload of blob "${digest}"`, repository);
    }
  }

  /** Uploads a manifest under a tag or digest; returns its digest. */
  pushManifest(
    repository: string,
    tagOrDigest: string,
    mediaType: string,
    bytes: Uint8Array,
    signal?: AbortSignal,
  ): Promise<string> {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    return this.#withEndpoint(async (ep) => {
      const res = await this.#authed(
        ep,
        `/v2/${repository}/manifests/${tagOrDigest}`,
        [pushScope(repository)],
        {
          method: "PUT",
          headers: { "content-type": mediaType },
          body: () => bytes.slice(),
          signal,
        },
      );
      await res.body?.cancel();
      if (res.status !== 201 && res.status !== 200) {
        throw await this.#responseError(res, `manifest "${tagOrDigest}"`, repository);
      }
      return digest;
    }, signal);
  }

  // -------------------------------------------------------------------------

  /**
   * Runs `fn` on the first endpoint that answers its ping. A mirror that
   * fails hands over to the next endpoint; the registry itself does not.
   */
  async #withEndpoint<T>(
    fn: (ep: EndpointState) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    let lastError: unknown;
    const live = this.#endpoints.filter((e) => e.failure === undefined);
    const tried: string[] = [];
    for (let i = 0; i < live.length; i++) {
      const ep = live[i]!;
      tried.push(ep.url);
      try {
        ep.ping ??= this.#ping(ep, i + 1 < live.length, signal);
        await ep.ping;
      } catch (e) {
        if (signal?.aborted) throw e;
        ep.failure = e;
        lastError = e;
        continue;
      }
      try {
        return await fn(ep);
      } catch (e) {
        if (!ep.mirror || signal?.aborted) throw e;
        lastError = e;
      }
    }
    if (lastError === undefined) {
      lastError = this.#endpoints.find((e) => e.failure !== undefined)?.failure;
    }
    const detail = lastError instanceof Error ? lastError.message : String(lastError);
    const connectionFailed = lastError instanceof RegistryError && lastError.status === undefined;
    const https = tried.every((u) => u.startsWith("https:"));
    if (connectionFailed && https && !/dns error|failed to lookup/i.test(detail)) {
      // The usual cause: a registry that speaks plain HTTP and is not listed as insecure.
      throw new RegistryError(
        `${detail}; if "${this.registry}" serves plain HTTP, list it in "insecureRegistries" of ${registriesConfigPath()}`,
      );
    }
    if (lastError instanceof AuthError || lastError instanceof RegistryError) throw lastError;
    throw new RegistryError(
      `Cannot reach registry "${this.registry}" (tried ${
        tried.length > 0 ? tried.join(", ") : "every endpoint"
      }): ${detail}`,
    );
  }

  async #ping(ep: EndpointState, hasFallback: boolean, signal?: AbortSignal): Promise<void> {
    // With a fallback (HTTP after HTTPS, the registry after a mirror) one try
    // is enough: a TLS handshake with a plain-HTTP port will not get better.
    const res = await this.#request(`${ep.url}/v2/`, { signal, retry: !hasFallback });
    await res.body?.cancel();
    if (res.status === 401) {
      ep.auth.setChallenge(res.headers.get("www-authenticate"));
      return;
    }
    if (!res.ok) {
      throw new RegistryError(
        `"${ep.url}" does not answer like a registry: GET /v2/ returned ${res.status}`,
        res.status,
      );
    }
  }

  /** Sends a request with auth; on a 401 learns the challenge and tries once more. */
  async #authed(
    ep: EndpointState,
    pathOrUrl: string,
    scopes: string[],
    options: RequestOptions,
  ): Promise<Response> {
    const url = pathOrUrl.startsWith("/") ? `${ep.url}${pathOrUrl}` : pathOrUrl;
    const send = async () => {
      const authorization = await ep.auth.authorization(scopes);
      const headers = { ...options.headers };
      if (authorization !== undefined) headers.authorization = authorization;
      return this.#followRedirects(url, { ...options, headers });
    };
    const first = await send();
    if (first.status !== 401) return first;
    const challenge = first.headers.get("www-authenticate");
    await first.body?.cancel();
    if (challenge === null) return first;
    ep.auth.setChallenge(challenge);
    ep.auth.dropTokens();
    return await send();
  }

  /**
   * Follows redirects by hand: blob downloads are redirected to storage
   * (S3, CDNs) that rejects, or must not see, the registry's token.
   */
  async #followRedirects(url: string, options: RequestOptions): Promise<Response> {
    let current = url;
    let opts = options;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.#request(current, opts);
      const location = res.headers.get("location");
      if (![301, 302, 303, 307, 308].includes(res.status) || location === null) return res;
      // An upload's Location is an answer, not a redirect.
      if (opts.method === "POST") return res;
      await res.body?.cancel();
      const next = new URL(location, current);
      if (next.origin !== new URL(current).origin && opts.headers?.authorization !== undefined) {
        const { authorization: _, ...rest } = opts.headers;
        opts = { ...opts, headers: rest };
      }
      if (res.status === 303) opts = { ...opts, method: "GET" };
      current = next.href;
    }
    throw new RegistryError(`Too many redirects from "${url}"`);
  }

  /** One request with the connect timeout and the retry policy. */
  async #request(url: string, options: RequestOptions): Promise<Response> {
    const method = options.method ?? "GET";
    const retry = options.retry ?? true;
    for (let attempt = 1;; attempt++) {
      const ctl = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal;
      let timedOut = false;
      const timer = options.headerTimeout === false ? undefined : setTimeout(() => {
        timedOut = true;
        ctl.abort();
      }, this.#timeouts.connectMs);
      let res: Response;
      try {
        res = await this.#fetch(url, {
          method,
          headers: { "user-agent": USER_AGENT, ...options.headers },
          ...(options.body !== undefined ? { body: options.body() } : {}),
          redirect: "manual",
          signal,
        });
      } catch (e) {
        if (options.signal?.aborted) throw options.signal.reason ?? e;
        const error = timedOut
          ? new RegistryTimeoutError(
            `No answer from "${url}" within ${this.#timeouts.connectMs / 1000} s`,
          )
          : new RegistryError(`Cannot connect to "${url}": ${describeFetchError(e)}`);
        if (!retry || attempt >= this.#retry.attempts) throw error;
        await sleep(this.#backoff(attempt), options.signal);
        continue;
      } finally {
        clearTimeout(timer);
      }
      const retryable = res.status === 429 || res.status === 408 ||
        (res.status >= 500 && res.status !== 501 && res.status !== 505);
      if (!retry || !retryable || attempt >= this.#retry.attempts) return res;
      const wait = retryAfterMs(res.headers.get("retry-after"));
      await res.body?.cancel();
      await sleep(
        wait !== undefined ? Math.min(wait, this.#retry.maxRetryAfterMs) : this.#backoff(attempt),
        options.signal,
      );
    }
  }

  /**
   * Streams a response body to the end of a file, calling `onChunk` for each
   * chunk before it is written. Chunks (about 60 KB from fetch) are written
   * in batches of {@link WRITE_BATCH_BYTES} with plain writes: one awaited
   * write per chunk cost more than the download itself, and this thread is
   * also the one unpacking the layer as it arrives.
   */
  async #appendBody(
    res: Response,
    path: string,
    onChunk: (chunk: Uint8Array) => void,
  ): Promise<void> {
    const file = await Deno.open(path, { write: true, create: true, append: true, mode: 0o644 });
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = () => {
      for (const chunk of pending) {
        let written = 0;
        while (written < chunk.length) written += file.writeSync(chunk.subarray(written));
      }
      pending.length = 0;
      pendingBytes = 0;
    };
    try {
      for await (const chunk of chunksWithIdleTimeout(res, this.#timeouts.idleMs)) {
        onChunk(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH_BYTES) flush();
      }
    } finally {
      // Also when the connection broke: every chunk hashed is on disk before
      // a resume asks for the bytes after it.
      try {
        flush();
      } finally {
        file.close();
      }
    }
  }

  async #responseError(
    res: Response,
    what: string,
    repo: ImageReference | string,
  ): Promise<Error> {
    const body = await res.text().catch(() => "");
    const detail = registryErrorDetail(body);
    const repository = typeof repo === "string" ? repo : repo.repository;
    const name = typeof repo === "string" ? `${this.registry}/${repo}` : repo.toString();
    const suffix = detail !== undefined ? ` (${detail})` : "";
    if (res.status === 404) {
      return new NotFoundError(`Not found: ${what} of "${name}"${suffix}`);
    }
    if (res.status === 401 || res.status === 403) {
      return new AuthError(
        `Access denied to ${what} of "${name}"${suffix}: the repository "${repository}" may not exist, or may need "trun login ${this.registry}"`,
      );
    }
    if (res.status === 429) {
      return new RegistryError(
        `Registry "${this.registry}" is rate limiting us (429) for ${what} of "${name}"${suffix}: wait and try again, or log in for a higher limit`,
        429,
      );
    }
    return new RegistryError(
      `Registry "${this.registry}" answered ${res.status} for ${what} of "${name}"${suffix}`,
      res.status,
    );
  }

  #backoff(attempt: number): number {
    const full = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1));
    // Half fixed, half random, so parallel downloads do not retry in step.
    return full / 2 + Math.random() * (full / 2);
  }
}

/** The token scope for pulling from a repository. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** The token scope for pushing to a repository. */
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

/** Milliseconds to wait from a `Retry-After` header (seconds or an HTTP date). */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function digestAlgorithm(digest: string, where: string): "sha256" | "sha512" {
  const algorithm = digest.split(":", 1)[0];
  if (algorithm === "sha256" || algorithm === "sha512") return algorithm;
  throw new RegistryError(
    `Digest "${digest}" in "${where}" uses algorithm "${algorithm}", which trun cannot verify (sha256, sha512)`,
  );
}

function rangeStart(header: string | null): number | undefined {
  const m = /^bytes (\d+)-/.exec(header ?? "");
  return m ? Number(m[1]) : undefined;
}

/** Re-reads an existing partial download into `hash`; returns its length (0 if none or unusable). */
async function rehashPartial(path: string, hash: Hash, size: number | undefined): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  try {
    const { size: length } = await file.stat();
    if (length === 0 || (size !== undefined && length > size)) {
      await Deno.truncate(path, 0);
      return 0;
    }
    let total = 0;
    for await (const chunk of file.readable) {
      hash.update(chunk);
      total += chunk.length;
    }
    return total;
  } finally {
    try {
      file.close();
    } catch {
      // file.readable closes the file when it ends
    }
  }
}

/** Reads a body up to `limit` bytes, with the idle timeout. */
async function readBody(
  res: Response,
  limit: number,
  idleMs: number,
  tooLarge: () => string,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunksWithIdleTimeout(res, idleMs)) {
    total += chunk.length;
    if (total > limit) throw new DigestMismatchError(tooLarge());
    parts.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes of a download gathered before one write to its file. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * Yields a body's chunks; throws a timeout error when none arrives for
 * `idleMs`. One watchdog timer serves the whole body (it looks at the time
 * of the last chunk when it fires): a timer per chunk cost as much as the
 * bytes' hashing on a fast download.
 */
async function* chunksWithIdleTimeout(
  res: Response,
  idleMs: number,
): AsyncGenerator<Uint8Array> {
  if (res.body === null) return;
  const reader = res.body.getReader();
  let last = Date.now();
  let stalled = false;
  const watch = () => {
    const quiet = Date.now() - last;
    if (quiet < idleMs) {
      timer = setTimeout(watch, idleMs - quiet);
      return;
    }
    stalled = true;
    // Ends the pending read (it resolves as done), which is then reported.
    reader.cancel().catch(() => {});
  };
  let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(watch, idleMs);
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (e) {
        if (stalled) break;
        throw new RegistryError(
          `The connection broke while reading "${res.url}": ${describeFetchError(e)}`,
        );
      }
      if (stalled) break;
      last = Date.now();
      if (result.done) return;
      yield result.value;
    }
    throw new RegistryTimeoutError(
      `No data from "${res.url}" for ${idleMs / 1000} s: the connection stalled`,
    );
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

function isTransient(e: unknown): boolean {
  return e instanceof RegistryTimeoutError ||
    (e instanceof RegistryError && (e.status === undefined || e.status >= 500 || e.status === 429));
}

function describeFetchError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? cause.message : "";
  return inner && !e.message.includes(inner) ? `${e.message}: ${inner}` : e.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
