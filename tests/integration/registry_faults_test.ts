/**
 * The registry client against a misbehaving registry on 127.0.0.1
 * (`_fault_registry.ts`): retries, Retry-After, cut connections and Range
 * resumes, corrupted bytes, auth flows and their failures, redirects,
 * mirrors, pushes, and pull orchestration with an in-memory store. The last
 * tests run against the real Distribution registry (`docker-registry`).
 * Blob targets are temp directories: no store is needed.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AuthError,
  type Credentials,
  login,
  readAuthFile,
  trunAuthPath,
} from "../../lib/image/auth.ts";
import { parsePlatform } from "../../lib/oci/manifest.ts";
import {
  type LayerInfo,
  type PulledImage,
  type PullEvent,
  pullImage,
  type PullStore,
  runBounded,
} from "../../lib/image/pull.ts";
import { pushImage, type PushStore } from "../../lib/image/push.ts";
import { parseReference } from "../../lib/oci/reference.ts";
import { parseRegistriesConfig } from "../../lib/image/registries_config.ts";
import {
  DigestMismatchError,
  NotFoundError,
  RegistryClient,
  type RegistryClientOptions,
  RegistryError,
} from "../../lib/image/registry_client.ts";
import { type FaultRegistry, startFaultRegistry } from "./_fault_registry.ts";

const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };
const HOST_ARCH = Deno.build.arch === "aarch64" ? "arm64" : "amd64";

function clientFor(
  reg: FaultRegistry,
  creds?: Credentials,
  extra: Partial<RegistryClientOptions> = {},
): RegistryClient {
  return new RegistryClient(reg.host, {
    credentials: () => Promise.resolve(creds),
    retry: FAST_RETRY,
    ...extra,
  });
}

async function withTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "trun-faults-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

const blobRequests = (reg: FaultRegistry, digest: string) =>
  reg.requests.filter((r) => r.kind === "blob" && r.path.endsWith(digest));

Deno.test("resolveImage() follows the index to this machine's platform and checks the config", async () => {
  await using reg = startFaultRegistry();
  const client = clientFor(reg);
  const ref = parseReference(`${reg.host}/test/app:latest`);
  const img = await client.resolveImage(ref);
  const want = reg.image.platforms[HOST_ARCH]!;
  assert.equal(img.indexDigest, reg.image.indexDigest);
  assert.equal(img.manifest.digest, want.manifest.digest);
  assert.equal(img.manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
  assert.equal(img.config.digest, want.config.digest);
  assert.equal(img.config.parsed.architecture, HOST_ARCH);
  assert.deepEqual(
    img.parsedManifest.layers.map((l) => l.digest),
    want.layers.map((l) => l.digest),
  );
  assert.deepEqual(img.warnings, []);

  const arm = await client.resolveImage(ref, parsePlatform("linux/arm64"));
  assert.equal(arm.manifest.digest, reg.image.platforms.arm64!.manifest.digest);
  assert.equal(arm.platform.variant, "v8");
  await assert.rejects(
    client.resolveImage(ref, parsePlatform("linux/s390x")),
    /No image for platform "linux\/s390x" in ".*test\/app:latest": it offers linux\/amd64, linux\/arm64\/v8;/,
  );
});

Deno.test("resolveImage() takes a Docker schema 2 manifest and refuses an explicit other platform", async () => {
  await using reg = startFaultRegistry();
  const client = clientFor(reg);
  const ref = parseReference(`${reg.host}/test/app:single`);
  const img = await client.resolveImage(ref, parsePlatform("linux/amd64"));
  assert.equal(img.indexDigest, undefined);
  assert.equal(img.manifest.digest, reg.image.single.digest);
  assert.equal(img.manifest.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  await assert.rejects(
    client.resolveImage(ref, parsePlatform("linux/arm64")),
    /is for platform "linux\/amd64", which does not match the requested "linux\/arm64\/v8"/,
  );
});

Deno.test("fetchBlob() downloads, verifies and reports progress up to the size", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    const progress: number[] = [];
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/blob`, {
      size: layer.size,
      onProgress: (current, total) => {
        assert.equal(total, layer.size);
        progress.push(current);
      },
    });
    assert.deepEqual(await Deno.readFile(`${dir}/blob`), layer.bytes);
    assert.equal(progress.at(-1), layer.size);
    assert.ok(!(await exists(`${dir}/blob.partial`)));
  });
});

Deno.test("fetchBlob() retries 500s with backoff, then succeeds", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[0]!;
    reg.faults.push({ on: "blob", target: layer.digest, times: 2, action: { status: 500 } });
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    assert.equal(blobRequests(reg, layer.digest).length, 3);
  });
});

Deno.test("fetchBlob() honours 429 Retry-After in seconds", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[0]!;
    reg.faults.push({
      on: "blob",
      target: layer.digest,
      action: { status: 429, headers: { "retry-after": "1" } },
    });
    const started = performance.now();
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    const waited = performance.now() - started;
    assert.ok(waited >= 950, `waited only ${waited} ms`);
    assert.equal(blobRequests(reg, layer.digest).length, 2);
  });
});

Deno.test("fetchBlob() caps a long Retry-After", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[0]!;
    reg.faults.push({
      on: "blob",
      target: layer.digest,
      action: { status: 503, headers: { "retry-after": "3600" } },
    });
    const started = performance.now();
    await clientFor(reg, undefined, { retry: { ...FAST_RETRY, maxRetryAfterMs: 100 } })
      .fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.ok(performance.now() - started < 5000);
  });
});

Deno.test("fetchBlob() resumes with Range after the connection is cut mid-blob", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    reg.faults.push({ on: "blob", target: layer.digest, action: { cutAfter: 100_000 } });
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    const seen = blobRequests(reg, layer.digest);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.range, null);
    // The server may have flushed less than it enqueued, never more.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(seen[1]!.range ?? "")?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed at ${seen[1]!.range}`);
  });
});

Deno.test("fetchBlob() re-hashes an existing .partial and asks only for the rest", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    await Deno.writeFile(`${dir}/b.partial`, layer.bytes.subarray(0, 200_000));
    const progress: number[] = [];
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, {
      size: layer.size,
      onProgress: (c) => progress.push(c),
    });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    assert.equal(progress[0], 200_000);
    assert.deepEqual(blobRequests(reg, layer.digest).map((r) => r.range), ["bytes=200000-"]);
  });
});

Deno.test("fetchBlob() retries once from zero when a resumed .partial was corrupt on disk", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    const bad = layer.bytes.slice(0, 200_000);
    bad[1000] = bad[1000]! ^ 0xff;
    await Deno.writeFile(`${dir}/b.partial`, bad);
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    assert.deepEqual(blobRequests(reg, layer.digest).map((r) => r.range), ["bytes=200000-", null]);
  });
});

Deno.test("fetchBlob() blames the registry when a download from zero is still wrong", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    await Deno.writeFile(`${dir}/b.partial`, layer.bytes.subarray(0, 200_000));
    reg.faults.push({ on: "blob", target: layer.digest, times: 2, action: { corrupt: true } });
    await assert.rejects(
      clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size }),
      /the registry or a proxy sent bad data/,
    );
    assert.equal(blobRequests(reg, layer.digest).length, 2);
    assert.ok(!(await exists(`${dir}/b.partial`)));
  });
});

Deno.test("fetchBlob() starts over when the registry ignores Range (200 instead of 206)", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    await Deno.writeFile(`${dir}/b.partial`, layer.bytes.subarray(0, 50_000));
    reg.faults.push({ on: "blob", target: layer.digest, action: { ignoreRange: true } });
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    assert.equal(blobRequests(reg, layer.digest).length, 1);
  });
});

Deno.test("fetchBlob() restarts when a stale .partial is longer than the blob", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[0]!;
    await Deno.writeFile(`${dir}/b.partial`, new Uint8Array(layer.size + 10));
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    assert.deepEqual(blobRequests(reg, layer.digest).map((r) => r.range), [null]);
  });
});

Deno.test("fetchBlob() fails clearly on a wrong digest and leaves no file", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    reg.faults.push({ on: "blob", target: layer.digest, action: { corrupt: true } });
    await assert.rejects(
      clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size }),
      (e: Error) => {
        assert.ok(e instanceof DigestMismatchError, String(e));
        assert.ok(
          e.message.includes(`Blob "${layer.digest}" of "${reg.host}/test/app"`),
          e.message,
        );
        assert.match(e.message, /arrived with digest "sha256:[0-9a-f]{64}"/);
        assert.match(e.message, /the download was removed/);
        return true;
      },
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("fetchBlob() refuses a blob larger than its descriptor and removes it", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    await assert.rejects(
      clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size - 1 }),
      /is larger than the \d+ bytes its manifest declares/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("fetchBlob() resumes after an idle timeout", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    reg.faults.push({ on: "blob", target: layer.digest, action: { stallAfter: 64 * 1024 } });
    await clientFor(reg, undefined, { timeouts: { idleMs: 300 } })
      .fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    const seen = blobRequests(reg, layer.digest);
    assert.equal(seen.length, 2);
    assert.match(seen[1]!.range ?? "", /^bytes=\d+-$/);
  });
});

Deno.test("fetchBlob() gives up on endless 503s with a message naming the blob", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[0]!;
    reg.faults.push({ on: "blob", target: layer.digest, times: 100, action: { status: 503 } });
    await assert.rejects(
      clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size }),
      (e: Error) => {
        assert.ok(e instanceof RegistryError);
        assert.equal(e.status, 503);
        assert.ok(e.message.includes(`answered 503 for blob "${layer.digest}"`), e.message);
        return true;
      },
    );
    assert.equal(blobRequests(reg, layer.digest).length, 5);
  });
});

Deno.test("fetchBlob() reports a missing blob as not found", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const digest = sha256(new TextEncoder().encode("nothing"));
    await assert.rejects(
      clientFor(reg).fetchBlob("test/app", digest, `${dir}/b`),
      (e: Error) => e instanceof NotFoundError && /BLOB_UNKNOWN/.test(e.message),
    );
  });
});

Deno.test("getManifest() rejects a manifest whose Docker-Content-Digest does not match", async () => {
  await using reg = startFaultRegistry();
  reg.faults.push({ on: "manifest", target: "latest", action: { wrongDigestHeader: true } });
  await assert.rejects(
    clientFor(reg).getManifest(parseReference(`${reg.host}/test/app:latest`)),
    /The manifest of ".*test\/app:latest" from "http:\/\/127.0.0.1:\d+" has digest "sha256:[0-9a-f]+", not "sha256:/,
  );
});

Deno.test("getManifest() checks bytes fetched by digest against that digest", async () => {
  await using reg = startFaultRegistry();
  const digest = reg.image.platforms.amd64!.manifest.digest;
  reg.faults.push({ on: "manifest", target: digest, action: { corrupt: true } });
  await assert.rejects(
    clientFor(reg).getManifest(parseReference(`${reg.host}/test/app@${digest}`)),
    (e: Error) => e instanceof DigestMismatchError && e.message.includes(`not "${digest}"`),
  );
  await assert.rejects(
    clientFor(reg).getManifest(parseReference(`${reg.host}/test/app:nope`)),
    /Not found: manifest "nope" of ".*test\/app:nope" \(MANIFEST_UNKNOWN: manifest unknown\)/,
  );
});

Deno.test("Bearer auth: anonymous tokens, cached across requests", async () => {
  await using reg = startFaultRegistry({ auth: "bearer" });
  await withTemp(async (dir) => {
    const client = clientFor(reg);
    const img = await client.resolveImage(parseReference(`${reg.host}/test/app`));
    for (const l of img.parsedManifest.layers) {
      await client.fetchBlob("test/app", l.digest, `${dir}/${l.digest}`, { size: l.size });
    }
    const tokens = reg.requests.filter((r) => r.kind === "token");
    assert.equal(tokens.length, 1);
    const blobs = reg.requests.filter((r) => r.kind === "blob");
    assert.ok(blobs.length >= 3);
    assert.ok(blobs.every((r) => r.authorization?.startsWith("Bearer ")));
  });
});

Deno.test("Bearer auth with credentials, and a clear error for a wrong password", async () => {
  await using reg = startFaultRegistry({
    auth: "bearer",
    anonymousPull: false,
    users: { alice: "s3cret" },
  });
  const ref = parseReference(`${reg.host}/test/app`);
  const good = await clientFor(reg, { username: "alice", password: "s3cret" }).getManifest(ref);
  assert.equal(good.digest, reg.image.indexDigest);
  const token = reg.requests.find((r) => r.kind === "token")!;
  assert.equal(token.authorization, `Basic ${btoa("alice:s3cret")}`);
  assert.match(token.path, /account=alice/);

  await assert.rejects(
    clientFor(reg, { username: "alice", password: "wrong" }).getManifest(ref),
    (e: Error) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match(
        e.message,
        /Authentication with "127.0.0.1:\d+" failed: token server ".*\/token" answered 401 \(incorrect username or password\)/,
      );
      assert.match(e.message, /check the credentials with "trun login 127.0.0.1:\d+"/);
      return true;
    },
  );
  await assert.rejects(clientFor(reg).getManifest(ref), /may need "trun login 127.0.0.1:\d+"/);
});

Deno.test("Bearer auth: a token endpoint that refuses gives a clear auth error", async () => {
  await using reg = startFaultRegistry({ auth: "bearer" });
  reg.faults.push({
    on: "token",
    times: 10,
    action: { status: 403, body: '{"details":"denied by policy"}' },
  });
  await assert.rejects(
    clientFor(reg).getManifest(parseReference(`${reg.host}/test/app`)),
    (e: Error) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match(
        e.message,
        /token server "http:\/\/127.0.0.1:\d+\/token" answered 403 \(denied by policy\)/,
      );
      return true;
    },
  );
});

Deno.test("Basic auth: credentials are sent, missing or wrong ones are explained", async () => {
  await using reg = startFaultRegistry({ auth: "basic", users: { bob: "pw" } });
  const ref = parseReference(`${reg.host}/test/app:single`);
  const m = await clientFor(reg, { username: "bob", password: "pw" }).getManifest(ref);
  assert.equal(m.digest, reg.image.single.digest);
  const last = reg.requests.filter((r) => r.kind === "manifest").at(-1)!;
  assert.equal(last.authorization, `Basic ${btoa("bob:pw")}`);
  await assert.rejects(
    clientFor(reg).getManifest(ref),
    /Registry "127.0.0.1:\d+" requires a user name and password: run "trun login 127.0.0.1:\d+"/,
  );
  await assert.rejects(
    clientFor(reg, { username: "bob", password: "nope" }).getManifest(ref),
    (e: Error) => e instanceof AuthError && /Access denied to manifest "single"/.test(e.message),
  );
});

Deno.test("checkLogin() and login() verify against the registry before saving", async () => {
  await using basic = startFaultRegistry({ auth: "basic", users: { bob: "pw" } });
  await using bearer = startFaultRegistry({ auth: "bearer", users: { alice: "pw2" } });
  await clientFor(basic, { username: "bob", password: "pw" }).checkLogin();
  await assert.rejects(
    clientFor(basic, { username: "bob", password: "bad" }).checkLogin(),
    /Login to "127.0.0.1:\d+" failed: the registry refused the user name or password/,
  );
  await clientFor(bearer, { username: "alice", password: "pw2" }).checkLogin();
  await assert.rejects(
    clientFor(bearer, { username: "alice", password: "bad" }).checkLogin(),
    /incorrect username or password/,
  );

  await withTemp(async (home) => {
    const pathEnv = { uid: 1000, env: { HOME: home } };
    await assert.rejects(login(bearer.host, "alice", "bad", { pathEnv }), AuthError);
    assert.equal(await exists(trunAuthPath(pathEnv)), false);
    await login(bearer.host, "alice", "pw2", { pathEnv });
    const file = await readAuthFile(trunAuthPath(pathEnv));
    assert.deepEqual(file.auths?.[bearer.host], { auth: btoa("alice:pw2") });
    assert.equal((await Deno.stat(trunAuthPath(pathEnv))).mode! & 0o777, 0o600);
  });
});

Deno.test("blob redirects to storage are followed without the registry's token", async () => {
  await using reg = startFaultRegistry({ auth: "bearer" });
  await withTemp(async (dir) => {
    const layer = reg.image.platforms.amd64!.layers[1]!;
    reg.faults.push({ on: "blob", target: layer.digest, action: { redirectToStorage: true } });
    await clientFor(reg).fetchBlob("test/app", layer.digest, `${dir}/b`, { size: layer.size });
    assert.deepEqual(await Deno.readFile(`${dir}/b`), layer.bytes);
    const storage = reg.requests.filter((r) => r.kind === "storage");
    assert.equal(storage.length, 1);
    assert.equal(storage[0]!.authorization, null);
    assert.ok(blobRequests(reg, layer.digest).at(-1)!.authorization?.startsWith("Bearer "));
  });
});

Deno.test("a mirror serves pulls, and a failing mirror hands over to the registry", async () => {
  await using origin = startFaultRegistry();
  await using mirror = startFaultRegistry({ auth: "bearer" });
  const config = parseRegistriesConfig(
    JSON.stringify({ registries: { [origin.host]: { mirrors: [mirror.url] } } }),
    "test",
  );
  const ref = parseReference(`${origin.host}/test/app`);
  const asked: string[] = [];
  const viaMirror = clientFor(origin, undefined, {
    config,
    credentials: (registry) => {
      asked.push(registry);
      return Promise.resolve(undefined);
    },
  });
  assert.equal((await viaMirror.getManifest(ref)).digest, origin.image.indexDigest);
  assert.equal(origin.requests.filter((r) => r.kind === "manifest").length, 0);
  assert.equal(mirror.requests.filter((r) => r.kind === "manifest").length, 1);
  // The mirror is asked about with its own name: the registry's login never goes to it.
  assert.deepEqual(asked, [mirror.host]);

  mirror.faults.push({ on: "manifest", times: 10, action: { status: 404 } });
  const fallback = clientFor(origin, undefined, { config });
  assert.equal((await fallback.getManifest(ref)).digest, origin.image.indexDigest);
  assert.equal(origin.requests.filter((r) => r.kind === "manifest").length, 1);
});

Deno.test("a non-loopback registry gets plain HTTP only when listed as insecure", async () => {
  await using reg = startFaultRegistry();
  // A fetch that plays DNS: build.internal is the fault registry, and HTTPS
  // to it fails as a TLS handshake with a plain-HTTP port does.
  const seen: string[] = [];
  const fakeFetch: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    seen.push(`${url.protocol}//${url.host}`);
    if (url.protocol === "https:") return Promise.reject(new TypeError("fetch failed"));
    url.host = reg.host;
    return fetch(url, init);
  };
  const ref = parseReference("build.internal:5000/test/app:single");
  const strict = new RegistryClient("build.internal:5000", {
    credentials: () => Promise.resolve(undefined),
    retry: FAST_RETRY,
    fetch: fakeFetch,
  });
  await assert.rejects(
    strict.getManifest(ref),
    /Cannot connect to "https:\/\/build.internal:5000\/v2\/".*; if "build.internal:5000" serves plain HTTP, list it in "insecureRegistries" of .*registries.json/,
  );
  assert.ok(seen.every((u) => u === "https://build.internal:5000"));

  seen.length = 0;
  const config = parseRegistriesConfig('{"insecureRegistries": ["build.internal"]}', "test");
  const lenient = new RegistryClient("build.internal:5000", {
    credentials: () => Promise.resolve(undefined),
    retry: FAST_RETRY,
    fetch: fakeFetch,
    config,
  });
  assert.equal((await lenient.getManifest(ref)).digest, reg.image.single.digest);
  // One HTTPS try, then HTTP for the ping and everything after.
  assert.deepEqual(seen, [
    "https://build.internal:5000",
    "http://build.internal:5000",
    "http://build.internal:5000",
  ]);
});

Deno.test("pushBlob(), blobExists() and pushManifest() upload an image that reads back", async () => {
  await using reg = startFaultRegistry({ auth: "bearer", users: { alice: "pw" } });
  const creds = { username: "alice", password: "pw" };
  const client = clientFor(reg, creds, { purpose: "push" });
  const data = new TextEncoder().encode("pushed layer bytes\n".repeat(1000));
  const digest = sha256(data);
  assert.equal(await client.blobExists("pushed/app", digest), false);
  await client.pushBlob("pushed/app", digest, data.length, () =>
    new ReadableStream({
      start(c) {
        c.enqueue(data.subarray(0, 5000));
        c.enqueue(data.subarray(5000));
        c.close();
      },
    }));
  assert.equal(await client.blobExists("pushed/app", digest), true);
  assert.deepEqual(reg.blobs.get(digest), data);

  // Mounting from a repository that has the blob sends no bytes.
  const amd = reg.image.platforms.amd64!;
  const before = reg.requests.filter((r) => r.kind === "upload" && r.method === "PUT").length;
  await client.pushBlob("pushed/app", amd.config.digest, amd.config.size, () => amd.config.bytes, {
    mountFrom: "test/app",
  });
  assert.equal(
    reg.requests.filter((r) => r.kind === "upload" && r.method === "PUT").length,
    before,
  );

  const pushed = await client.pushManifest(
    "pushed/app",
    "v1",
    amd.manifest.mediaType,
    amd.manifest.bytes,
  );
  assert.equal(pushed, amd.manifest.digest);
  const back = await clientFor(reg).getManifest(parseReference(`${reg.host}/pushed/app:v1`));
  assert.deepEqual(back.bytes, amd.manifest.bytes);
  assert.equal(back.digest, amd.manifest.digest);
});

/** The store contract of `lib/store/mod.ts`, in memory and a temp dir, for pull tests. */
class FakeStore implements PullStore, PushStore {
  readonly dir: string;
  readonly committed = new Set<string>();
  readonly locks: string[] = [];
  readonly images: PulledImage[] = [];
  readonly unpacked: LayerInfo[][] = [];
  /** Layer blobs handed over while still downloading. */
  readonly incoming: string[] = [];
  constructor(dir: string) {
    this.dir = dir;
  }
  hasBlob(digest: string): boolean {
    return this.committed.has(digest);
  }
  blobPath(digest: string): string {
    return `${this.dir}/${digest.replace(":", "-")}`;
  }
  blobTempPath(digest: string): string {
    return `${this.blobPath(digest)}.partial`;
  }
  async commitBlob(digest: string, tempPath: string, expectedSize?: number): Promise<void> {
    const bytes = await Deno.readFile(tempPath);
    assert.equal(sha256(bytes), digest);
    assert.equal(bytes.length, expectedSize);
    await Deno.rename(tempPath, this.blobPath(digest));
    this.committed.add(digest);
  }
  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.locks.push(name);
    return await fn();
  }
  async ensureLayers(
    layers: LayerInfo[],
    options?: {
      onProgress?: (p: { digest: string; state: string }) => void;
      incoming?: { digest: string; done: Promise<void> };
    },
  ): Promise<string[]> {
    // A store that does not read a blob as it arrives waits for it.
    if (options?.incoming) {
      this.incoming.push(options.incoming.digest);
      await options.incoming.done;
    }
    for (const l of layers) {
      assert.ok(this.committed.has(l.digest), `${l.digest} not committed`);
      options?.onProgress?.({ digest: l.digest, state: "unpacking" });
    }
    this.unpacked.push(layers);
    return layers.map((l) => `chain-${l.digest.slice(7, 15)}`);
  }
  recordImage(image: PulledImage): void {
    this.images.push(image);
    // As the real store does, the config becomes a blob.
    Deno.writeFileSync(this.blobPath(image.configDigest), image.configBytes);
    this.committed.add(image.configDigest);
  }
  findImage(query: string): { id: string; manifestDigest: string } | undefined {
    const i = this.images.findLast((i) => i.reference === query);
    return i && { id: i.configDigest, manifestDigest: i.manifestDigest };
  }
  getManifest(digest: string): { mediaType: string; bytes: Uint8Array } | undefined {
    const i = this.images.find((i) => i.manifestDigest === digest);
    return i && { mediaType: i.manifestMediaType, bytes: i.manifestBytes };
  }
}

Deno.test("pullImage() downloads missing layers in parallel, then unpacks and records", async () => {
  await using reg = startFaultRegistry({ auth: "bearer" });
  await withTemp(async (dir) => {
    const store = new FakeStore(dir);
    const events: PullEvent[] = [];
    const amd = reg.image.platforms[HOST_ARCH]!;
    // One layer fails twice on the way: the pull still completes.
    reg.faults.push({ on: "blob", target: amd.layers[1]!.digest, action: { cutAfter: 1000 } });
    const result = await pullImage(`${reg.host}/test/app`, {
      store,
      onEvent: (e) => events.push(e),
      config: parseRegistriesConfig("{}", "test"),
      client: { credentials: () => Promise.resolve(undefined), retry: FAST_RETRY },
    });
    assert.equal(result.manifestDigest, amd.manifest.digest);
    assert.equal(result.digest, reg.image.indexDigest);
    assert.equal(result.configDigest, amd.config.digest);
    assert.equal(result.downloaded, 2);
    assert.equal(result.chainIds.length, 2);
    assert.deepEqual(
      store.locks.sort(),
      amd.layers.map((l) => `blob-sha256-${l.digest.slice(7)}`).sort(),
    );
    const rec = store.images[0]!;
    assert.equal(rec.reference, `${reg.host}/test/app:latest`);
    assert.deepEqual(rec.manifestBytes, amd.manifest.bytes);
    assert.deepEqual(rec.configBytes, amd.config.bytes);
    assert.deepEqual(rec.layers.map((l) => l.digest), amd.layers.map((l) => l.digest));
    const types = events.map((e) => e.type);
    assert.equal(types[0], "resolving");
    assert.equal(types.at(-1), "done");
    assert.equal(types.at(-2), "unpacking");
    assert.equal(types.filter((t) => t === "layer-done").length, 2);
    assert.equal(events.at(-1)!.digest, reg.image.indexDigest);
    // The bottom layer is handed to the store as soon as its download starts.
    assert.equal(store.incoming[0], amd.layers[0]!.digest);

    // A second pull finds every blob in the store and downloads nothing.
    events.length = 0;
    const again = await pullImage(`${reg.host}/test/app`, {
      store,
      onEvent: (e) => events.push(e),
      config: parseRegistriesConfig("{}", "test"),
      client: { credentials: () => Promise.resolve(undefined), retry: FAST_RETRY },
    });
    assert.equal(again.downloaded, 0);
    assert.equal(events.filter((e) => e.type === "layer-exists").length, 2);
  });
});

Deno.test("pullImage() fails as a whole when one layer is bad, and records nothing", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const store = new FakeStore(dir);
    const amd = reg.image.platforms[HOST_ARCH]!;
    reg.faults.push({ on: "blob", target: amd.layers[0]!.digest, action: { corrupt: true } });
    await assert.rejects(
      pullImage(`${reg.host}/test/app`, {
        store,
        config: parseRegistriesConfig("{}", "test"),
        client: { credentials: () => Promise.resolve(undefined), retry: FAST_RETRY },
      }),
      DigestMismatchError,
    );
    assert.equal(store.images.length, 0);
    assert.equal(store.unpacked.length, 0);
    assert.equal(store.hasBlob(amd.layers[0]!.digest), false);
  });
});

Deno.test("pullImage() resumes the store's .partial left by a killed pull", async () => {
  await using reg = startFaultRegistry();
  await withTemp(async (dir) => {
    const store = new FakeStore(dir);
    const amd = reg.image.platforms[HOST_ARCH]!;
    const [small, big] = amd.layers as [typeof amd.layers[0], typeof amd.layers[0]];
    await Deno.writeFile(store.blobTempPath(big.digest), big.bytes.subarray(0, 12_345));
    // A complete but wrong leftover is downloaded again, not trusted.
    await Deno.writeFile(store.blobTempPath(small.digest), new Uint8Array(small.size));
    await pullImage(`${reg.host}/test/app`, {
      store,
      config: parseRegistriesConfig("{}", "test"),
      client: { credentials: () => Promise.resolve(undefined), retry: FAST_RETRY },
    });
    assert.deepEqual(blobRequests(reg, big.digest).map((r) => r.range), ["bytes=12345-"]);
    assert.deepEqual(blobRequests(reg, small.digest).map((r) => r.range), [null]);
    assert.deepEqual(await Deno.readFile(store.blobPath(big.digest)), big.bytes);
    assert.deepEqual(await Deno.readFile(store.blobPath(small.digest)), small.bytes);
  });
});

Deno.test("runBounded() keeps at most the limit running and stops after a failure", async () => {
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const ctl = new AbortController();
  await assert.rejects(
    runBounded([1, 2, 3, 4, 5, 6, 7, 8], 3, async (n) => {
      started.push(n);
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 10));
      running--;
      if (n === 2) throw new Error("item 2 failed");
    }, ctl),
    /item 2 failed/,
  );
  assert.equal(peak, 3);
  assert.ok(ctl.signal.aborted);
  // Items not started when the failure came are never started.
  assert.ok(started.length < 8, `started ${started}`);
  assert.equal(running, 0);
});

Deno.test("pushImage() uploads missing blobs then the manifest, skipping existing ones", async () => {
  await using src = startFaultRegistry();
  await using dst = startFaultRegistry({ auth: "bearer", users: { u: "p" } });
  await withTemp(async (dir) => {
    const store = new FakeStore(dir);
    const client = { credentials: () => Promise.resolve(undefined), retry: FAST_RETRY };
    const config = parseRegistriesConfig("{}", "test");
    await pullImage(`${src.host}/test/app`, { store, config, client });
    // Tag it for the destination, as `trun tag` would.
    const pulled = store.images[0]!;
    store.images.push({ ...pulled, reference: `${dst.host}/copy/app:v2` });
    const result = await pushImage(`${dst.host}/copy/app:v2`, {
      store,
      config,
      client: { credentials: () => Promise.resolve({ username: "u", password: "p" }) },
    });
    assert.equal(result.digest, pulled.manifestDigest);
    assert.equal(result.uploaded, 3);
    const back = await clientFor(dst).getManifest(parseReference(`${dst.host}/copy/app:v2`));
    assert.equal(back.digest, pulled.manifestDigest);
    // Pushing again uploads nothing.
    const again = await pushImage(`${dst.host}/copy/app:v2`, {
      store,
      config,
      client: { credentials: () => Promise.resolve({ username: "u", password: "p" }) },
    });
    assert.equal(again.uploaded, 0);
  });
});

// ---------------------------------------------------------------------------
// The real registry (Debian's docker-registry, CNCF Distribution)

const HAS_REGISTRY = await exists("/usr/bin/docker-registry");

Deno.test({
  name: "the client pulls and verifies the multi-platform fixture from the real registry",
  ignore: !HAS_REGISTRY,
  async fn() {
    const { startFixtureRegistry } = await import("../_harness/registry.ts");
    await using reg = await startFixtureRegistry({ images: ["trun-fixtures/multiarch:latest"] });
    await withTemp(async (dir) => {
      const client = new RegistryClient(reg.host, {
        credentials: () => Promise.resolve(undefined),
      });
      const ref = parseReference(`${reg.host}/trun-fixtures/multiarch:latest`);
      const fixture = reg.fixtures.images.find((i) => i.ref === "trun-fixtures/multiarch:latest")!;
      for (const p of ["linux/amd64", "linux/arm64", "linux/arm/v7"]) {
        const img = await client.resolveImage(ref, parsePlatform(p));
        assert.equal(img.indexDigest, fixture.digest);
        assert.equal(
          `${img.config.parsed.os}/${img.config.parsed.architecture}`,
          p.split("/").slice(0, 2).join("/"),
        );
        for (const l of img.parsedManifest.layers) {
          const dest = `${dir}/${l.digest.slice(7)}`;
          if (await exists(dest)) continue;
          await client.fetchBlob(ref.repository, l.digest, dest, { size: l.size });
          assert.equal(sha256(await Deno.readFile(dest)), l.digest);
        }
      }
      // A cut download of a real blob resumes against the real registry's Range support.
      const img = await client.resolveImage(ref, parsePlatform("linux/amd64"));
      const big = img.parsedManifest.layers.reduce((a, b) => (a.size >= b.size ? a : b));
      const whole = await Deno.readFile(`${dir}/${big.digest.slice(7)}`);
      await Deno.writeFile(`${dir}/again.partial`, whole.subarray(0, big.size >> 1));
      await client.fetchBlob(ref.repository, big.digest, `${dir}/again`, { size: big.size });
      assert.deepEqual(await Deno.readFile(`${dir}/again`), whole);
    });
  },
});

Deno.test({
  name: "the client pushes a blob (chunked) and a manifest to the real registry",
  ignore: !HAS_REGISTRY,
  async fn() {
    const { startRegistry } = await import("../_harness/registry.ts");
    await using reg = await startRegistry();
    const client = new RegistryClient(reg.host, {
      credentials: () => Promise.resolve(undefined),
      purpose: "push",
    });
    const enc = new TextEncoder();
    const layer = enc.encode("layer\n".repeat(50_000));
    const config = enc.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [sha256(layer)] },
    }));
    for (const b of [layer, config]) {
      assert.equal(await client.blobExists("push/test", sha256(b)), false);
      await client.pushBlob("push/test", sha256(b), b.length, () =>
        new ReadableStream({
          start(c) {
            c.enqueue(b.slice());
            c.close();
          },
        }));
      assert.equal(await client.blobExists("push/test", sha256(b)), true);
    }
    const manifest = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256(config),
        size: config.length,
      },
      layers: [{
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: sha256(layer),
        size: layer.length,
      }],
    }));
    const digest = await client.pushManifest(
      "push/test",
      "v1",
      "application/vnd.oci.image.manifest.v1+json",
      manifest,
    );
    const img = await new RegistryClient(reg.host, {
      credentials: () => Promise.resolve(undefined),
    }).resolveImage(parseReference(`${reg.host}/push/test:v1`), parsePlatform("linux/amd64"));
    assert.equal(img.manifest.digest, digest);
    assert.deepEqual(img.config.bytes, config);
  },
});

Deno.test({
  name: "pullImage() fills the real store from the real registry, once",
  ignore: !HAS_REGISTRY,
  async fn() {
    const { startFixtureRegistry } = await import("../_harness/registry.ts");
    const { openStore } = await import("../../lib/store/mod.ts");
    await using reg = await startFixtureRegistry({ images: ["trun-fixtures/layered:latest"] });
    await withTemp(async (dir) => {
      const store = openStore(`${dir}/store`);
      try {
        const uid = Deno.uid() ?? 0;
        const opts = {
          store,
          config: parseRegistriesConfig("{}", "test"),
          client: { credentials: () => Promise.resolve(undefined) },
          ...(uid !== 0 ? { squashOwnership: { uid, gid: Deno.gid() ?? 0 } } : {}),
        };
        const events: PullEvent[] = [];
        const ref = `${reg.host}/trun-fixtures/layered:latest`;
        const result = await pullImage(ref, { ...opts, onEvent: (e) => events.push(e) });
        const image = store.findImage(ref);
        assert.equal(image?.id, result.configDigest);
        assert.equal(image?.manifestDigest, result.manifestDigest);
        assert.deepEqual(image?.layers, result.chainIds);
        assert.equal(result.chainIds.length, 3);
        const paths = store.layerPaths(result.configDigest);
        assert.ok((await Deno.lstat(`${paths[0]}/bin/busybox`)).isFile);
        assert.equal(events.filter((e) => e.type === "layer-done").length, 3);
        assert.equal(events.filter((e) => e.type === "unpacking" && e.digest).length, 3);
        // No download leftovers next to the blobs.
        const names = [...Deno.readDirSync(`${dir}/store/blobs/sha256`)].map((e) => e.name);
        assert.ok(names.every((n) => /^[a-f0-9]{64}$/.test(n)), names.join(" "));

        const again = await pullImage(ref, opts);
        assert.equal(again.downloaded, 0);
        assert.deepEqual(again.chainIds, result.chainIds);
      } finally {
        store.close();
      }
    });
  },
});
