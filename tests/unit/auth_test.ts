/**
 * Tables for `WWW-Authenticate` parsing, the token flow (with a fake token
 * server function, no network), and where credentials are looked up.
 */

import assert from "node:assert/strict";
import {
  Authenticator,
  AuthError,
  type Credentials,
  credentialsFromAuths,
  dockerConfigPath,
  login,
  logout,
  lookupCredentials,
  normalizeAuthKey,
  parseChallenges,
  readAuthFile,
  runCredentialHelper,
  trunAuthPath,
} from "../../lib/image/auth.ts";
import type { PathEnv } from "../../lib/paths.ts";

Deno.test("parseChallenges() reads schemes and parameters", () => {
  const cases: [string, { scheme: string; params: Record<string, string> }[]][] = [
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
      [{
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/ubuntu:pull",
        },
      }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: "basic", params: { realm: "Registry Realm" } }]],
    ["Basic", [{ scheme: "basic", params: {} }]],
    [
      'bearer realm="https://ghcr.io/token", service="ghcr.io" , scope="repository:a/b:pull,push"',
      [{
        scheme: "bearer",
        params: {
          realm: "https://ghcr.io/token",
          service: "ghcr.io",
          scope: "repository:a/b:pull,push",
        },
      }],
    ],
    [
      'Bearer realm="https://r/t",scope="a b", Basic realm="x"',
      [
        { scheme: "bearer", params: { realm: "https://r/t", scope: "a b" } },
        { scheme: "basic", params: { realm: "x" } },
      ],
    ],
    [
      "Bearer realm=https://r/token,service=reg",
      [{ scheme: "bearer", params: { realm: "https://r/token", service: "reg" } }],
    ],
    [
      'Bearer realm="a\\"b\\\\c"',
      [{ scheme: "bearer", params: { realm: 'a"b\\c' } }],
    ],
    [
      'Bearer Realm="https://r/t",error="invalid_token"',
      [{ scheme: "bearer", params: { realm: "https://r/t", error: "invalid_token" } }],
    ],
    ["", []],
    [
      'Bearer realm="x",, ,Basic',
      [{ scheme: "bearer", params: { realm: "x" } }, { scheme: "basic", params: {} }],
    ],
  ];
  for (const [header, want] of cases) assert.deepEqual(parseChallenges(header), want, header);
});

Deno.test("normalizeAuthKey() folds the spellings of registries in auth files", () => {
  const cases: [string, string][] = [
    ["https://index.docker.io/v1/", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["docker.io", "docker.io"],
    ["https://ghcr.io", "ghcr.io"],
    ["http://localhost:5000/v2/", "localhost:5000"],
    ["Quay.io", "quay.io"],
  ];
  for (const [key, want] of cases) assert.equal(normalizeAuthKey(key), want, key);
});

Deno.test("credentialsFromAuths() decodes base64 auth and identity tokens", () => {
  const file = {
    auths: {
      "https://index.docker.io/v1/": { auth: btoa("alice:s3:cret") },
      "ghcr.io": { auth: "", identitytoken: "refresh-xyz" },
      "quay.io": { auth: "" },
      "bad.io": { auth: btoa("nocolon") },
    },
  };
  assert.deepEqual(credentialsFromAuths(file, "docker.io"), {
    username: "alice",
    password: "s3:cret",
  });
  assert.deepEqual(credentialsFromAuths(file, "ghcr.io"), {
    username: "",
    password: "",
    identityToken: "refresh-xyz",
  });
  assert.equal(credentialsFromAuths(file, "quay.io"), undefined);
  assert.equal(credentialsFromAuths(file, "other.io"), undefined);
  assert.throws(() => credentialsFromAuths(file, "bad.io"), /saved login for "bad.io" is damaged/);
});

async function withHome(fn: (env: PathEnv, home: string) => Promise<void>) {
  const home = await Deno.makeTempDir({ prefix: "trun-auth-test-" });
  try {
    await fn({ uid: 1000, env: { HOME: home, PATH: `${home}/bin:/usr/bin:/bin` } }, home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

async function writeJson(path: string, doc: unknown) {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(doc));
}

Deno.test("lookupCredentials() prefers trun's auth.json over Docker's config", async () => {
  await withHome(async (env) => {
    await writeJson(dockerConfigPath(env), {
      auths: {
        "https://index.docker.io/v1/": { auth: btoa("docker-user:pw1") },
        "ghcr.io": { auth: btoa("gh:pw2") },
      },
    });
    await writeJson(trunAuthPath(env), { auths: { "docker.io": { auth: btoa("trun-user:pw3") } } });
    const noHelper = () => Promise.reject(new Error("no helper expected"));
    assert.deepEqual(await lookupCredentials("docker.io", { pathEnv: env, runHelper: noHelper }), {
      username: "trun-user",
      password: "pw3",
    });
    assert.deepEqual(await lookupCredentials("ghcr.io", { pathEnv: env, runHelper: noHelper }), {
      username: "gh",
      password: "pw2",
    });
    assert.equal(
      await lookupCredentials("quay.io", { pathEnv: env, runHelper: noHelper }),
      undefined,
    );
  });
});

Deno.test("lookupCredentials() asks credHelpers, then credsStore, then auths", async () => {
  await withHome(async (env) => {
    await writeJson(dockerConfigPath(env), {
      auths: { "quay.io": { auth: btoa("file:pw") }, "ghcr.io": {} },
      credHelpers: { "ghcr.io": "gh" },
      credsStore: "store",
    });
    const calls: string[] = [];
    const runHelper = (helper: string, url: string) => {
      calls.push(`${helper} ${url}`);
      if (helper === "gh") return Promise.resolve({ username: "gh-user", password: "tok" });
      if (url === "https://index.docker.io/v1/") {
        return Promise.resolve({ username: "hub", password: "pw" } as Credentials);
      }
      return Promise.resolve(undefined);
    };
    const opts = { pathEnv: env, runHelper };
    assert.deepEqual(await lookupCredentials("ghcr.io", opts), {
      username: "gh-user",
      password: "tok",
    });
    assert.deepEqual(await lookupCredentials("index.docker.io", opts), {
      username: "hub",
      password: "pw",
    });
    // The store has nothing for quay.io: the file entry is used.
    assert.deepEqual(await lookupCredentials("quay.io", opts), {
      username: "file",
      password: "pw",
    });
    assert.deepEqual(calls, [
      "gh ghcr.io",
      "store https://index.docker.io/v1/",
      "store quay.io",
    ]);
  });
});

Deno.test("runCredentialHelper() runs docker-credential-<name> get from PATH", async () => {
  await withHome(async (env, home) => {
    await Deno.mkdir(`${home}/bin`);
    const script = (body: string) => `#!/bin/sh\nread server\n${body}\n`;
    await Deno.writeTextFile(
      `${home}/bin/docker-credential-ok`,
      script(
        `echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"u-$server\\",\\"Secret\\":\\"s\\"}"`,
      ),
      { mode: 0o755 },
    );
    await Deno.writeTextFile(
      `${home}/bin/docker-credential-token`,
      script(`echo '{"Username":"<token>","Secret":"refresh"}'`),
      { mode: 0o755 },
    );
    await Deno.writeTextFile(
      `${home}/bin/docker-credential-none`,
      script(`echo "credentials not found in native keychain"; exit 1`),
      { mode: 0o755 },
    );
    await Deno.writeTextFile(
      `${home}/bin/docker-credential-broken`,
      script(`echo "keyring locked" >&2; exit 3`),
      { mode: 0o755 },
    );
    assert.deepEqual(await runCredentialHelper("ok", "ghcr.io", env), {
      username: "u-ghcr.io",
      password: "s",
    });
    assert.deepEqual(await runCredentialHelper("token", "ghcr.io", env), {
      username: "",
      password: "",
      identityToken: "refresh",
    });
    assert.equal(await runCredentialHelper("none", "ghcr.io", env), undefined);
    await assert.rejects(
      runCredentialHelper("broken", "ghcr.io", env),
      /Credential helper "docker-credential-broken" failed for "ghcr.io" \(exit 3\): keyring locked/,
    );
    await assert.rejects(
      runCredentialHelper("missing", "ghcr.io", env),
      /Credential helper "docker-credential-missing" is not installed/,
    );
  });
});

Deno.test("login() writes auth.json 0600 atomically and logout() removes the entry", async () => {
  await withHome(async (env) => {
    const path = trunAuthPath(env);
    await login("index.docker.io", "bob", "pw:1", { pathEnv: env, verify: false });
    await login("ghcr.io", "gh", "x", { pathEnv: env, verify: false });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const file = await readAuthFile(path);
    assert.deepEqual(Object.keys(file.auths ?? {}).sort(), ["docker.io", "ghcr.io"]);
    assert.deepEqual(credentialsFromAuths(file, "docker.io"), {
      username: "bob",
      password: "pw:1",
    });
    // No temporary files are left next to it.
    const names = [...Deno.readDirSync(path.slice(0, path.lastIndexOf("/")))].map((e) => e.name);
    assert.deepEqual(names, ["auth.json"]);

    assert.equal(await logout("docker.io", { pathEnv: env }), true);
    assert.equal(await logout("docker.io", { pathEnv: env }), false);
    assert.deepEqual(Object.keys((await readAuthFile(path)).auths ?? {}), ["ghcr.io"]);
    await assert.rejects(
      login("ghcr.io", "", "x", { pathEnv: env, verify: false }),
      /the user name is empty/,
    );
  });
});

Deno.test("readAuthFile() names the file when its JSON is broken", async () => {
  await withHome(async (env) => {
    await writeJson(trunAuthPath(env), {});
    await Deno.writeTextFile(trunAuthPath(env), "{broken");
    await assert.rejects(
      readAuthFile(trunAuthPath(env)),
      new RegExp(`Cannot read credentials file "${trunAuthPath(env)}": invalid JSON`),
    );
    assert.deepEqual(await readAuthFile(`${trunAuthPath(env)}.missing`), {});
  });
});

/** A fake token server: records requests and answers from a script. */
function fakeSend(answers: (url: URL, init: RequestInit) => Response) {
  const requests: { url: URL; init: RequestInit }[] = [];
  const send = (url: string, init: RequestInit) => {
    const u = new URL(url);
    requests.push({ url: u, init });
    return Promise.resolve(answers(u, init));
  };
  return { send, requests };
}

const CHALLENGE = 'Bearer realm="https://auth.example/token",service="reg.example"';

Deno.test("Authenticator gets an anonymous token and caches it per scope until expiry", async () => {
  let now = 1_000_000;
  let n = 0;
  const { send, requests } = fakeSend(() => Response.json({ token: `t${++n}`, expires_in: 300 }));
  const a = new Authenticator("reg.example", send, {
    credentials: () => Promise.resolve(undefined),
    now: () => now,
  });
  assert.equal(await a.authorization(["repository:x:pull"]), undefined);
  a.setChallenge(CHALLENGE);
  assert.equal(await a.authorization(["repository:x:pull"]), "Bearer t1");
  assert.equal(await a.authorization(["repository:x:pull"]), "Bearer t1");
  assert.equal(await a.authorization(["repository:y:pull"]), "Bearer t2");
  assert.equal(requests.length, 2);
  const first = requests[0]!;
  assert.equal(first.url.searchParams.get("service"), "reg.example");
  assert.deepEqual(first.url.searchParams.getAll("scope"), ["repository:x:pull"]);
  assert.equal(first.url.searchParams.get("account"), null);
  assert.equal(new Headers(first.init.headers).get("authorization"), null);
  // 300 s lifetime, 10 s margin: still cached at +289 s, refreshed at +291 s.
  now += 289_000;
  assert.equal(await a.authorization(["repository:x:pull"]), "Bearer t1");
  now += 2_000;
  assert.equal(await a.authorization(["repository:x:pull"]), "Bearer t3");
});

Deno.test("Authenticator sends credentials as Basic and accepts access_token", async () => {
  const { send, requests } = fakeSend(() => Response.json({ access_token: "acc" }));
  const a = new Authenticator("reg.example", send, {
    credentials: () => Promise.resolve({ username: "alice", password: "pw" }),
  });
  a.setChallenge(CHALLENGE);
  assert.equal(await a.authorization(["repository:x:pull,push"]), "Bearer acc");
  const req = requests[0]!;
  assert.equal(req.url.searchParams.get("account"), "alice");
  assert.equal(new Headers(req.init.headers).get("authorization"), `Basic ${btoa("alice:pw")}`);
});

Deno.test("Authenticator uses the refresh-token grant for identity tokens", async () => {
  const { send, requests } = fakeSend(() => Response.json({ access_token: "acc2" }));
  const a = new Authenticator("reg.example", send, {
    credentials: () => Promise.resolve({ username: "", password: "", identityToken: "rt" }),
  });
  a.setChallenge(CHALLENGE);
  assert.equal(await a.authorization(["repository:x:pull"]), "Bearer acc2");
  const req = requests[0]!;
  assert.equal(req.init.method, "POST");
  const form = new URLSearchParams(String(req.init.body));
  assert.equal(form.get("grant_type"), "refresh_token");
  assert.equal(form.get("refresh_token"), "rt");
  assert.equal(form.get("scope"), "repository:x:pull");
});

Deno.test("Authenticator errors speak about the registry and what to do", async () => {
  const cases: [Response, Credentials | undefined, RegExp][] = [
    [
      new Response('{"details":"incorrect username or password"}', { status: 401 }),
      { username: "a", password: "b" },
      /Authentication with "reg.example" failed: token server "https:\/\/auth.example\/token" answered 401 \(incorrect username or password\); check the credentials with "trun login reg.example"/,
    ],
    [
      new Response("", { status: 403, statusText: "Forbidden" }),
      undefined,
      /answered 403 \(403 Forbidden\); the repository may not exist or may need "trun login reg.example"/,
    ],
    [new Response("not json"), undefined, /sent a response that is not JSON/],
    [Response.json({ expires_in: 3 }), undefined, /sent no "token" or "access_token"/],
  ];
  for (const [res, creds, re] of cases) {
    const { send } = fakeSend(() => res);
    const a = new Authenticator("reg.example", send, { credentials: () => Promise.resolve(creds) });
    a.setChallenge(CHALLENGE);
    await assert.rejects(a.authorization(["repository:x:pull"]), (e: Error) => {
      assert.ok(e instanceof AuthError);
      assert.match(e.message, re);
      return true;
    });
  }
  const basic = new Authenticator("reg.example", fakeSend(() => new Response()).send, {
    credentials: () => Promise.resolve(undefined),
  });
  basic.setChallenge('Basic realm="x"');
  await assert.rejects(
    basic.authorization([]),
    /Registry "reg.example" requires a user name and password: run "trun login reg.example"/,
  );
  const badRealm = new Authenticator("reg.example", fakeSend(() => new Response()).send, {
    credentials: () => Promise.resolve(undefined),
  });
  badRealm.setChallenge('Bearer realm="ftp://x"');
  await assert.rejects(badRealm.authorization([]), /without a usable realm URL \("ftp:\/\/x"\)/);
});
