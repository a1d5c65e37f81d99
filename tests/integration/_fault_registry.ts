/**
 * A small, deliberately misbehaving OCI registry for the client's fault
 * tests, on `Deno.serve` at 127.0.0.1 (port chosen by the kernel). It serves
 * one repository, `test/app`, with real blobs and digests: `latest` is an
 * OCI index (linux/amd64, linux/arm64/v8 and an attestation entry),
 * `single` a Docker schema 2 manifest. It accepts pushes into any
 * repository. Tests queue faults (`faults.push(...)`) that fire on the next
 * matching requests: error statuses, 429 with Retry-After, bodies cut
 * short, corrupted bytes, wrong digests, Range ignored, stalls, redirects to
 * a second "storage" server on another port. Auth can be off, Bearer (with
 * its own token endpoint) or Basic.
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

/** Which requests a fault applies to. */
export type RouteKind = "ping" | "token" | "manifest" | "blob" | "upload" | "storage";

/** What a fault does instead of the normal answer. */
export type FaultAction =
  | { status: number; headers?: Record<string, string>; body?: string }
  | { cutAfter: number }
  | { corrupt: true }
  | { ignoreRange: true }
  | { wrongDigestHeader: true }
  | { stallAfter: number }
  | { redirectToStorage: true };

/** A fault: fires on the next `times` requests of kind `on` (and digest, if given). */
export interface FaultRule {
  /** The kind of request. */
  on: RouteKind;
  /** Only for this blob or manifest digest (or tag). */
  target?: string;
  /** How many requests it affects (default 1); counts down. */
  times?: number;
  /** What to do. */
  action: FaultAction;
}

/** A request the registry saw. */
export interface SeenRequest {
  kind: RouteKind | "other";
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

/** A blob of the fake image. */
export interface FakeBlob {
  digest: string;
  size: number;
  mediaType: string;
  bytes: Uint8Array;
}

/** The fake image served as `test/app`. */
export interface FakeImage {
  repository: string;
  indexDigest: string;
  /** Per platform ("amd64", "arm64"): the manifest, its config and its layers. */
  platforms: Record<string, { manifest: FakeBlob; config: FakeBlob; layers: FakeBlob[] }>;
  /** The Docker schema 2 manifest tagged `single` (amd64 content). */
  single: FakeBlob;
}

/** Options for startFaultRegistry(). */
export interface FaultRegistryOptions {
  /** Authentication the registry demands (default none). */
  auth?: "none" | "bearer" | "basic";
  /** Accounts for Basic auth and the token endpoint. */
  users?: Record<string, string>;
  /** With Bearer: whether anonymous tokens may pull (default true). */
  anonymousPull?: boolean;
  /** Seconds a token lasts (default 300). */
  tokenLifetime?: number;
  /** Size of the big layer (default 512 KiB). */
  bigLayerSize?: number;
}

/** A running fault registry. */
export interface FaultRegistry {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, the registry part of references. */
  host: string;
  /** The content it serves. */
  image: FakeImage;
  /** Faults still to fire. */
  faults: FaultRule[];
  /** Every request, in order. */
  requests: SeenRequest[];
  /** Blobs by digest (served ones and pushed ones). */
  blobs: Map<string, Uint8Array>;
  /** Manifests by `repo:reference`. */
  manifests: Map<string, { mediaType: string; bytes: Uint8Array }>;
  /** Stops both servers. */
  close(): Promise<void>;
  /** Same as close(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const enc = new TextEncoder();

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function blob(mediaType: string, bytes: Uint8Array): FakeBlob {
  return { digest: sha256(bytes), size: bytes.length, mediaType, bytes };
}

/** A deterministic pseudo-random buffer (so gzip cannot shrink it and runs are repeatable). */
function noise(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function buildImage(bigLayerSize: number): { image: FakeImage; indexBytes: Uint8Array } {
  const repository = "test/app";
  const platforms: FakeImage["platforms"] = {};
  const entries: unknown[] = [];
  let single: FakeBlob | undefined;
  for (const [arch, variant, seed] of [["amd64", undefined, 1], ["arm64", "v8", 2]] as const) {
    const small = blob(
      "application/vnd.oci.image.layer.v1.tar+gzip",
      new Uint8Array(gzipSync(enc.encode(`layer for ${arch}\n`.repeat(100)))),
    );
    const big = blob("application/vnd.oci.image.layer.v1.tar+gzip", noise(bigLayerSize, seed));
    const config = blob(
      "application/vnd.oci.image.config.v1+json",
      enc.encode(JSON.stringify({
        architecture: arch,
        os: "linux",
        ...(variant ? { variant } : {}),
        config: { Cmd: ["/bin/sh"] },
        rootfs: { type: "layers", diff_ids: [sha256(enc.encode(arch)), sha256(enc.encode("x"))] },
      })),
    );
    const layers = [small, big];
    const manifestDoc = (mediaType: string, layerType?: string) => ({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({
        mediaType: layerType ?? l.mediaType,
        digest: l.digest,
        size: l.size,
      })),
    });
    const manifest = blob(
      "application/vnd.oci.image.manifest.v1+json",
      enc.encode(JSON.stringify(manifestDoc("application/vnd.oci.image.manifest.v1+json"))),
    );
    platforms[arch] = { manifest, config, layers };
    entries.push({
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.size,
      platform: { architecture: arch, os: "linux", ...(variant ? { variant } : {}) },
    });
    if (arch === "amd64") {
      const dockerType = "application/vnd.docker.distribution.manifest.v2+json";
      single = blob(
        dockerType,
        enc.encode(JSON.stringify(
          manifestDoc(dockerType, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        )),
      );
    }
  }
  // BuildKit attaches provenance as an extra entry with platform unknown/unknown.
  entries.push({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: sha256(enc.encode("attestation")),
    size: 11,
    platform: { architecture: "unknown", os: "unknown" },
    annotations: { "vnd.docker.reference.type": "attestation-manifest" },
  });
  const index = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: entries,
  }));
  return {
    image: { repository, indexDigest: sha256(index), platforms, single: single! },
    indexBytes: index,
  };
}

/** Starts the registry and its storage server. */
export function startFaultRegistry(options: FaultRegistryOptions = {}): FaultRegistry {
  const auth = options.auth ?? "none";
  const users = options.users ?? {};
  const anonymousPull = options.anonymousPull ?? true;
  const { image, indexBytes } = buildImage(options.bigLayerSize ?? 512 * 1024);
  const faults: FaultRule[] = [];
  const requests: SeenRequest[] = [];
  const blobs = new Map<string, Uint8Array>();
  const manifests = new Map<string, { mediaType: string; bytes: Uint8Array }>();
  const tokens = new Map<string, { user: string | undefined; scopes: string[] }>();
  const uploads = new Map<string, string>();
  const stalled = new Set<ReadableStreamDefaultController<Uint8Array>>();

  // Like a real registry, a blob is visible only in the repositories it was
  // pushed or mounted into.
  const linked = new Map<string, Set<string>>();
  const link = (name: string, digest: string) => {
    if (!linked.has(name)) linked.set(name, new Set());
    linked.get(name)!.add(digest);
  };
  const isLinked = (name: string, digest: string) => linked.get(name)?.has(digest) === true;
  const repo = image.repository;
  manifests.set(`${repo}:latest`, {
    mediaType: "application/vnd.oci.image.index.v1+json",
    bytes: indexBytes,
  });
  manifests.set(`${repo}:${image.indexDigest}`, manifests.get(`${repo}:latest`)!);
  manifests.set(`${repo}:single`, { mediaType: image.single.mediaType, bytes: image.single.bytes });
  manifests.set(`${repo}:${image.single.digest}`, manifests.get(`${repo}:single`)!);
  for (const p of Object.values(image.platforms)) {
    manifests.set(`${repo}:${p.manifest.digest}`, {
      mediaType: p.manifest.mediaType,
      bytes: p.manifest.bytes,
    });
    for (const b of [p.config, ...p.layers]) {
      blobs.set(b.digest, b.bytes);
      link(repo, b.digest);
    }
  }

  const takeFault = (kind: RouteKind, target: string | undefined): FaultAction | undefined => {
    const i = faults.findIndex((f) =>
      f.on === kind && (f.target === undefined || f.target === target)
    );
    if (i < 0) return undefined;
    const f = faults[i]!;
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) faults.splice(i, 1);
    return f.action;
  };

  const basicUser = (header: string | null): string | undefined => {
    if (!header?.startsWith("Basic ")) return undefined;
    const [user, ...rest] = atob(header.slice(6)).split(":");
    return user !== undefined && users[user] === rest.join(":") ? user : undefined;
  };

  const serveBytes = (
    req: Request,
    bytes: Uint8Array,
    headers: Record<string, string>,
    action: FaultAction | undefined,
  ): Response => {
    let body = bytes;
    if (action && "corrupt" in action) {
      body = bytes.slice();
      body[body.length >> 1]! ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    let status = 200;
    const h: Record<string, string> = { ...headers };
    if (range && !(action && "ignoreRange" in action)) {
      const start = Number(range[1]);
      if (start >= body.length) {
        return new Response(null, {
          status: 416,
          headers: { "content-range": `bytes */${body.length}` },
        });
      }
      h["content-range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
      body = body.subarray(start);
      status = 206;
    }
    h["content-length"] = String(body.length);
    if (req.method === "HEAD") return new Response(null, { status, headers: h });
    if (action && "cutAfter" in action) {
      const part = body.subarray(0, Math.min(action.cutAfter, body.length));
      // Closing before Content-Length bytes makes the server drop the connection.
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(part);
          c.close();
        },
      });
      return new Response(stream, { status, headers: h });
    }
    if (action && "stallAfter" in action) {
      const part = body.subarray(0, action.stallAfter);
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(part);
          stalled.add(c);
        },
        cancel() {},
      });
      return new Response(stream, { status, headers: h });
    }
    return new Response(body as Uint8Array<ArrayBuffer>, { status, headers: h });
  };

  const challenge = (scope: string | undefined, port: number) =>
    auth === "basic"
      ? 'Basic realm="fault-registry"'
      : `Bearer realm="http://127.0.0.1:${port}/token",service="fault-registry"${
        scope ? `,scope="${scope}"` : ""
      }`;

  const authorized = (req: Request, scope: string | undefined): boolean => {
    const header = req.headers.get("authorization");
    if (auth === "none") return true;
    if (auth === "basic") return basicUser(header) !== undefined;
    if (!header?.startsWith("Bearer ")) return false;
    const t = tokens.get(header.slice(7));
    if (t === undefined) return false;
    if (scope === undefined) return true;
    const [, name, actions = ""] = scope.split(":");
    return t.scopes.some((s) => {
      const [, n, a = ""] = s.split(":");
      return n === name && actions.split(",").every((x) => a.split(",").includes(x));
    });
  };

  let storageOrigin = "";
  const storage = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push({
      kind: "storage",
      method: req.method,
      path,
      range: req.headers.get("range"),
      authorization: req.headers.get("authorization"),
    });
    const digest = path.replace(/^\/storage\//, "");
    const bytes = blobs.get(digest);
    if (bytes === undefined) return new Response("no such object", { status: 404 });
    return serveBytes(req, bytes, {}, takeFault("storage", digest));
  });
  storageOrigin = `http://127.0.0.1:${storage.addr.port}`;

  let port = 0;
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, async (req): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname;
    const seen: SeenRequest = {
      kind: "other",
      method: req.method,
      path: path + url.search,
      range: req.headers.get("range"),
      authorization: req.headers.get("authorization"),
    };
    requests.push(seen);
    const error = (status: number, code: string, message: string, headers = {}) =>
      Response.json({ errors: [{ code, message }] }, { status, headers });

    if (path === "/token") {
      seen.kind = "token";
      const fault = takeFault("token", undefined);
      if (fault && "status" in fault) {
        return new Response(fault.body ?? "", {
          status: fault.status,
          headers: fault.headers ?? {},
        });
      }
      const header = req.headers.get("authorization");
      const user = basicUser(header);
      if (header !== null && user === undefined) {
        return Response.json({ details: "incorrect username or password" }, { status: 401 });
      }
      if (user === undefined && !anonymousPull) {
        return Response.json({ details: "anonymous access is not allowed" }, { status: 401 });
      }
      const scopes = url.searchParams.getAll("scope");
      // Anonymous users may pull, never push.
      const granted = scopes.map((s) => {
        if (user !== undefined) return s;
        const parts = s.split(":");
        const actions = (parts.pop() ?? "").split(",").filter((a) => a !== "push");
        return [...parts, actions.join(",")].join(":");
      });
      const token = crypto.randomUUID();
      tokens.set(token, { user, scopes: granted });
      return Response.json({ access_token: token, expires_in: options.tokenLifetime ?? 300 });
    }

    if (path === "/v2/" || path === "/v2") {
      seen.kind = "ping";
      const fault = takeFault("ping", undefined);
      if (fault && "status" in fault) {
        return new Response(fault.body ?? "", {
          status: fault.status,
          headers: fault.headers ?? {},
        });
      }
      if (!authorized(req, undefined)) {
        return error(401, "UNAUTHORIZED", "authentication required", {
          "www-authenticate": challenge(undefined, port),
        });
      }
      return Response.json({});
    }

    const upload = /^\/upload\/([\w-]+)$/.exec(path);
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.*)$/.exec(path);
    const name = upload ? uploads.get(upload[1]!) : m?.[1];
    if (name === undefined) return error(404, "NAME_UNKNOWN", "no such route");
    const isUpload = upload !== null || m?.[3]?.startsWith("uploads") === true;
    const kind: RouteKind = isUpload ? "upload" : m![2] === "manifests" ? "manifest" : "blob";
    seen.kind = kind;
    const target = upload ? undefined : m![3];
    const action = takeFault(kind, target);
    if (action && "status" in action) {
      return new Response(action.body ?? "", {
        status: action.status,
        headers: action.headers ?? {},
      });
    }
    const writing = req.method === "POST" || req.method === "PUT" || req.method === "PATCH";
    const scope = `repository:${name}:${writing || isUpload ? "pull,push" : "pull"}`;
    if (!authorized(req, scope)) {
      return error(401, "UNAUTHORIZED", "authentication required", {
        "www-authenticate": challenge(scope, port),
      });
    }

    if (kind === "upload") {
      if (req.method === "POST") {
        const mount = url.searchParams.get("mount");
        const from = url.searchParams.get("from") ?? "";
        if (mount !== null && isLinked(from, mount)) {
          link(name, mount);
          return new Response(null, {
            status: 201,
            headers: { location: `/v2/${name}/blobs/${mount}` },
          });
        }
        const id = crypto.randomUUID();
        uploads.set(id, name);
        return new Response(null, { status: 202, headers: { location: `/upload/${id}` } });
      }
      if (req.method === "PUT") {
        const digest = url.searchParams.get("digest") ?? "";
        const bytes = new Uint8Array(await req.arrayBuffer());
        uploads.delete(upload![1]!);
        if (sha256(bytes) !== digest) return error(400, "DIGEST_INVALID", "digest did not match");
        blobs.set(digest, bytes);
        link(name, digest);
        return new Response(null, { status: 201, headers: { "docker-content-digest": digest } });
      }
      return error(405, "UNSUPPORTED", "method not allowed");
    }

    if (kind === "manifest") {
      const key = `${name}:${target}`;
      if (req.method === "PUT") {
        const bytes = new Uint8Array(await req.arrayBuffer());
        const entry = { mediaType: req.headers.get("content-type") ?? "", bytes };
        manifests.set(key, entry);
        manifests.set(`${name}:${sha256(bytes)}`, entry);
        return new Response(null, {
          status: 201,
          headers: { "docker-content-digest": sha256(bytes) },
        });
      }
      const found = manifests.get(key);
      if (found === undefined) return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
      const digestHeader = action && "wrongDigestHeader" in action
        ? sha256(enc.encode("something else"))
        : sha256(found.bytes);
      return serveBytes(req, found.bytes, {
        "content-type": found.mediaType,
        "docker-content-digest": digestHeader,
      }, action);
    }

    const bytes = isLinked(name, target ?? "") ? blobs.get(target ?? "") : undefined;
    if (bytes === undefined) return error(404, "BLOB_UNKNOWN", "blob unknown to registry");
    if (action && "redirectToStorage" in action) {
      return new Response(null, {
        status: 307,
        headers: { location: `${storageOrigin}/storage/${target}` },
      });
    }
    return serveBytes(req, bytes, {
      "content-type": "application/octet-stream",
      "docker-content-digest": target!,
    }, action);
  });

  port = server.addr.port;
  const close = async () => {
    for (const c of stalled) {
      try {
        c.close();
      } catch {
        // the client already went away
      }
    }
    await Promise.all([server.shutdown(), storage.shutdown()]);
  };
  const host = `127.0.0.1:${server.addr.port}`;
  return {
    url: `http://${host}`,
    host,
    image,
    faults,
    requests,
    blobs,
    manifests,
    close,
    [Symbol.asyncDispose]: close,
  };
}
