/**
 * Registry authentication: parsing `WWW-Authenticate` challenges (RFC 7235),
 * the Docker token flow (anonymous or with credentials, OAuth2 refresh
 * tokens for identity tokens, tokens cached per scope until they expire),
 * Basic auth, and where credentials come from: trun's own
 * `$XDG_CONFIG_HOME/trun/auth.json` first, then Docker's
 * `~/.docker/config.json` (`credHelpers`, `credsStore`, `auths`), so a
 * `docker login` done earlier keeps working. `login()` checks credentials
 * against the registry before writing them (0600, write-then-rename).
 */

import { configRoot, currentPathEnv, type PathEnv } from "../paths.ts";
import { DEFAULT_REGISTRY, normalizeRegistry } from "../oci/reference.ts";
import type { RegistriesConfig } from "./registries_config.ts";

export type { PathEnv };

/** One challenge from a `WWW-Authenticate` header: the scheme (lowercase) and its parameters. */
export interface Challenge {
  /** `bearer`, `basic`, … (lowercased). */
  scheme: string;
  /** Parameters with lowercased names, e.g. `realm`, `service`, `scope`. */
  params: Record<string, string>;
}

/** A user's credentials for one registry. */
export interface Credentials {
  /** User name (`<token>` when the secret is an identity token from a helper). */
  username: string;
  /** Password or access token. */
  password: string;
  /** OAuth2 refresh token (Docker's `identitytoken`), used instead of the password when set. */
  identityToken?: string;
}

/** Finds credentials for a registry lazily, only when the registry asks for them. */
export type CredentialsProvider = (registry: string) => Promise<Credentials | undefined>;

/** Sends one HTTP request (the registry client's fetch, with its timeouts and retries). */
export type SendFn = (url: string, init: RequestInit) => Promise<Response>;

/** Raised when a registry or its token server refuses us; the message says what to do. */
export class AuthError extends Error {
  /** Builds the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "AuthError";
  }
}

/**
 * Parses a `WWW-Authenticate` header into its challenges. A header can hold
 * several (`Bearer realm="…",scope="…", Basic realm="x"`); quoted values may
 * contain commas and backslash escapes.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      continue;
    }
    const token = readToken();
    if (token === "") {
      i++; // not a token character: skip it rather than loop forever
      continue;
    }
    skipSpace();
    if (header[i] === "=" && current !== undefined) {
      i++;
      skipSpace();
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < n && header[i] !== "," && header[i] !== " ") i++;
        value = header.slice(start, i);
      }
      current.params[token.toLowerCase()] = value;
    } else if (header[i] === "=" && current === undefined) {
      // A parameter before any scheme: malformed; skip its value.
      while (i < n && header[i] !== ",") i++;
    } else {
      // token68 forms (`Negotiate abc==`) are not used by registries; a new
      // bare token starts a new challenge.
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** The `Authorization` value for Basic auth. */
export function basicAuthorization(c: Credentials): string {
  return `Basic ${encodeBase64(`${c.username}:${c.password}`)}`;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Options for an Authenticator. */
export interface AuthenticatorOptions {
  /** Where credentials come from; default lookupCredentials(). */
  credentials?: CredentialsProvider;
  /** Clock, for tests of expiry. */
  now?: () => number;
}

// Tokens are dropped this long before they expire, so one issued just before
// a long blob request does not run out in the middle of it.
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
// The distribution token spec: a token without expires_in lasts 60 seconds.
const DEFAULT_TOKEN_LIFETIME_S = 60;

/**
 * Holds what a registry told us about authentication and produces the
 * `Authorization` header for a set of scopes. One per registry endpoint.
 */
export class Authenticator {
  readonly #registry: string;
  readonly #send: SendFn;
  readonly #provider: CredentialsProvider;
  readonly #now: () => number;
  #challenges: Challenge[] = [];
  #credentials: Promise<Credentials | undefined> | undefined;
  readonly #tokens = new Map<string, CachedToken>();

  /** Builds an authenticator for `registry` that sends token requests with `send`. */
  constructor(registry: string, send: SendFn, options: AuthenticatorOptions = {}) {
    this.#registry = registry;
    this.#send = send;
    this.#provider = options.credentials ?? ((r) => lookupCredentials(r));
    this.#now = options.now ?? Date.now;
  }

  /** Records the challenges from a `WWW-Authenticate` header (from the ping or a 401). */
  setChallenge(header: string | null): void {
    if (header === null) return;
    const parsed = parseChallenges(header).filter((c) =>
      c.scheme === "bearer" || c.scheme === "basic"
    );
    if (parsed.length > 0) this.#challenges = parsed;
  }

  /** True once a challenge is known. */
  get challenged(): boolean {
    return this.#challenges.length > 0;
  }

  /** The credentials for this registry, looked up once. */
  credentials(): Promise<Credentials | undefined> {
    this.#credentials ??= this.#provider(this.#registry);
    return this.#credentials;
  }

  /**
   * The `Authorization` header for a request needing `scopes`
   * (`repository:<name>:pull`), or undefined when no challenge is known.
   */
  async authorization(scopes: string[]): Promise<string | undefined> {
    const bearer = this.#challenges.find((c) => c.scheme === "bearer");
    if (bearer !== undefined) return `Bearer ${await this.#token(bearer, scopes)}`;
    if (this.#challenges.some((c) => c.scheme === "basic")) {
      const creds = await this.credentials();
      if (creds === undefined) {
        throw new AuthError(
          `Registry "${this.#registry}" requires a user name and password: run "trun login ${this.#registry}"`,
        );
      }
      return basicAuthorization(creds);
    }
    return undefined;
  }

  /** Forgets cached tokens (after the registry refused one). */
  dropTokens(): void {
    this.#tokens.clear();
  }

  async #token(challenge: Challenge, scopes: string[]): Promise<string> {
    const realm = challenge.params.realm;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm ?? "");
      if (realmUrl.protocol !== "https:" && realmUrl.protocol !== "http:") throw new Error();
    } catch {
      throw new AuthError(
        `Registry "${this.#registry}" sent a Bearer challenge without a usable realm URL (${
          JSON.stringify(realm)
        })`,
      );
    }
    const service = challenge.params.service;
    // The challenge's own scope matters when the registry asks for more than we
    // guessed (e.g. a different repository name after a rename).
    const wanted = [...new Set([...scopes, ...(challenge.params.scope?.split(" ") ?? [])])]
      .filter((s) => s !== "").sort();
    const key = `${realmUrl.href} ${service ?? ""} ${wanted.join(" ")}`;
    const cached = this.#tokens.get(key);
    if (cached !== undefined && cached.expiresAt > this.#now()) return cached.value;

    const creds = await this.credentials();
    let res: Response;
    if (creds?.identityToken !== undefined) {
      // OAuth2 refresh-token grant: how Docker uses an identity token.
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken,
        client_id: "trun",
      });
      if (service !== undefined) form.set("service", service);
      if (wanted.length > 0) form.set("scope", wanted.join(" "));
      res = await this.#send(realmUrl.href, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
      });
    } else {
      const url = new URL(realmUrl);
      if (service !== undefined) url.searchParams.set("service", service);
      for (const s of wanted) url.searchParams.append("scope", s);
      const headers: Record<string, string> = {};
      if (creds !== undefined) {
        url.searchParams.set("account", creds.username);
        headers.authorization = basicAuthorization(creds);
      }
      res = await this.#send(url.href, { method: "GET", headers });
    }
    const body = await res.text();
    if (!res.ok) {
      const detail = registryErrorDetail(body) ?? `${res.status} ${res.statusText}`.trim();
      const hint = creds === undefined
        ? `the repository may not exist or may need "trun login ${this.#registry}"`
        : `check the credentials with "trun login ${this.#registry}"`;
      throw new AuthError(
        `Authentication with "${this.#registry}" failed: token server "${realmUrl.origin}${realmUrl.pathname}" answered ${res.status} (${detail}); ${hint}`,
      );
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body);
    } catch {
      throw new AuthError(
        `Token server "${realmUrl.origin}${realmUrl.pathname}" for "${this.#registry}" sent a response that is not JSON`,
      );
    }
    const token = typeof doc.token === "string" && doc.token !== ""
      ? doc.token
      : typeof doc.access_token === "string"
      ? doc.access_token
      : undefined;
    if (token === undefined || token === "") {
      throw new AuthError(
        `Token server "${realmUrl.origin}${realmUrl.pathname}" for "${this.#registry}" sent no "token" or "access_token"`,
      );
    }
    const lifetime = typeof doc.expires_in === "number" && doc.expires_in > 0
      ? doc.expires_in
      : DEFAULT_TOKEN_LIFETIME_S;
    const expiresAt = this.#now() + lifetime * 1000 -
      Math.min(TOKEN_EXPIRY_MARGIN_MS, lifetime * 500);
    this.#tokens.set(key, { value: token, expiresAt });
    return token;
  }
}

/** The first message in a registry error body (`{"errors":[{"code","message"}]}`), if any. */
export function registryErrorDetail(body: string): string | undefined {
  try {
    const doc = JSON.parse(body) as {
      errors?: { code?: string; message?: string }[];
      details?: string;
    };
    const first = doc.errors?.[0];
    if (first !== undefined) {
      return [first.code, first.message].filter((s) => typeof s === "string" && s !== "")
        .join(": ") || undefined;
    }
    if (typeof doc.details === "string") return doc.details;
  } catch {
    // not JSON: fall through to the text
  }
  const text = body.trim().slice(0, 200);
  return text === "" || text.startsWith("<") ? undefined : text;
}

// ---------------------------------------------------------------------------
// Where credentials live

/** The shape shared by Docker's config.json and trun's auth.json. */
export interface AuthFile {
  /** Per-registry entries: `auth` is base64 `user:password`. */
  auths?: Record<
    string,
    { auth?: string; identitytoken?: string; username?: string; password?: string }
  >;
  /** Docker only: credential helper per registry (`docker-credential-<name>`). */
  credHelpers?: Record<string, string>;
  /** Docker only: the default credential helper. */
  credsStore?: string;
  /** Other settings in Docker's file, kept as they are. */
  [other: string]: unknown;
}

/** Options for credential lookup; everything defaults to the real environment. */
export interface CredentialLookupOptions {
  /** Identity and environment (HOME, DOCKER_CONFIG, XDG_CONFIG_HOME, PATH). */
  pathEnv?: PathEnv;
  /** Runs `docker-credential-<helper> get`; replaceable in tests. */
  runHelper?: (helper: string, serverUrl: string, env: PathEnv) => Promise<Credentials | undefined>;
}

/** trun's credentials file: `<configRoot>/auth.json`. */
export function trunAuthPath(p: PathEnv = currentPathEnv()): string {
  return `${configRoot(p)}/auth.json`;
}

/** Docker's client config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(p: PathEnv = currentPathEnv()): string {
  if (p.env.DOCKER_CONFIG) return `${p.env.DOCKER_CONFIG}/config.json`;
  return `${p.env.HOME ?? "/"}/.docker/config.json`;
}

/** The key Docker's files use for a registry (`https://index.docker.io/v1/` for Docker Hub). */
export function dockerConfigKey(registry: string): string {
  return normalizeRegistry(registry) === DEFAULT_REGISTRY
    ? "https://index.docker.io/v1/"
    : normalizeRegistry(registry);
}

/** Reduces the many spellings of a registry in auth files to its name (`https://host/v1/` → `host`). */
export function normalizeAuthKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, "").split("/")[0] ?? "";
  const lower = normalizeRegistry(host);
  return lower === "registry-1.docker.io" ? DEFAULT_REGISTRY : lower;
}

/** Reads an auth file; a missing file is empty, a broken one is an error naming the file. */
export async function readAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw new Error(`Cannot read credentials file "${path}": ${(e as Error).message}`);
  }
  if (text.trim() === "") return {};
  try {
    const doc = JSON.parse(text);
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
      throw new Error("not an object");
    }
    return doc as AuthFile;
  } catch (e) {
    throw new Error(
      `Cannot read credentials file "${path}": invalid JSON (${
        (e as Error).message
      }); fix or remove it`,
    );
  }
}

/** Finds the `auths` entry for a registry and decodes it. */
export function credentialsFromAuths(file: AuthFile, registry: string): Credentials | undefined {
  const name = normalizeRegistry(registry);
  for (const [key, entry] of Object.entries(file.auths ?? {})) {
    if (normalizeAuthKey(key) !== name || typeof entry !== "object" || entry === null) continue;
    let username = entry.username ?? "";
    let password = entry.password ?? "";
    if (typeof entry.auth === "string" && entry.auth !== "") {
      const decoded = decodeBase64(entry.auth);
      const colon = decoded.indexOf(":");
      if (colon < 0) {
        throw new Error(
          `The saved login for "${name}" is damaged (its "auth" value is not base64 "user:password"): run "trun login ${name}" again`,
        );
      }
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    const identity = typeof entry.identitytoken === "string" && entry.identitytoken !== ""
      ? entry.identitytoken
      : undefined;
    if (username === "" && password === "" && identity === undefined) continue;
    return { username, password, ...(identity !== undefined ? { identityToken: identity } : {}) };
  }
  return undefined;
}

/**
 * Credentials for a registry: trun's auth.json wins; then Docker's config:
 * a `credHelpers` entry, else `credsStore`, else the `auths` entry.
 */
export async function lookupCredentials(
  registry: string,
  options: CredentialLookupOptions = {},
): Promise<Credentials | undefined> {
  const env = options.pathEnv ?? currentPathEnv();
  const name = normalizeRegistry(registry);
  const own = credentialsFromAuths(await readAuthFile(trunAuthPath(env)), name);
  if (own !== undefined) return own;

  const dockerPath = dockerConfigPath(env);
  const docker = await readAuthFile(dockerPath);
  const run = options.runHelper ?? runCredentialHelper;
  let helper: string | undefined;
  for (const [key, h] of Object.entries(docker.credHelpers ?? {})) {
    if (normalizeAuthKey(key) === name) helper = h;
  }
  helper ??= typeof docker.credsStore === "string" && docker.credsStore !== ""
    ? docker.credsStore
    : undefined;
  if (helper !== undefined) {
    const fromHelper = await run(helper, dockerConfigKey(name), env).catch((e: Error) => {
      throw new Error(`${e.message} (named in "${dockerPath}")`);
    });
    if (fromHelper !== undefined) return fromHelper;
  }
  return credentialsFromAuths(docker, name);
}

/**
 * Runs `docker-credential-<helper> get` with the server URL on stdin, as
 * Docker does; "credentials not found" is no credentials, not an error.
 */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  env: PathEnv = currentPathEnv(),
): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: Object.fromEntries(
        Object.entries(env.env).filter((e): e is [string, string] => e[1] !== undefined),
      ),
      clearEnv: true,
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Credential helper "${program}" is not installed: install it or remove it from the Docker config`,
      );
    }
    throw new Error(`Cannot run credential helper "${program}": ${(e as Error).message}`);
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(serverUrl));
  await writer.close();
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const message = (stdout || new TextDecoder().decode(out.stderr)).trim();
    if (/credentials not found/i.test(message)) return undefined;
    throw new Error(
      `Credential helper "${program}" failed for "${serverUrl}" (exit ${out.code}): ${message}`,
    );
  }
  let doc: { Username?: unknown; Secret?: unknown };
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new Error(`Credential helper "${program}" printed something that is not JSON`);
  }
  if (typeof doc.Username !== "string" || typeof doc.Secret !== "string") {
    throw new Error(`Credential helper "${program}" answered without "Username" and "Secret"`);
  }
  // Helpers mark an identity token with the user name "<token>".
  if (doc.Username === "<token>") {
    return { username: "", password: "", identityToken: doc.Secret };
  }
  return { username: doc.Username, password: doc.Secret };
}

/** Options for login() and logout(). */
export interface LoginOptions {
  /** Identity and environment that decide where auth.json is. */
  pathEnv?: PathEnv;
  /** Registry settings (insecure registries) for the check against the registry. */
  config?: RegistriesConfig;
  /** Skip asking the registry (for tests of the file handling only). */
  verify?: boolean;
}

/**
 * Checks the credentials against the registry, then saves them in trun's
 * auth.json. A refused login leaves the file as it was.
 */
export async function login(
  registry: string,
  username: string,
  password: string,
  options: LoginOptions = {},
): Promise<void> {
  const name = normalizeRegistry(registry);
  if (username === "") throw new Error(`Cannot log in to "${name}": the user name is empty`);
  if (password === "") throw new Error(`Cannot log in to "${name}": the password is empty`);
  const creds: Credentials = { username, password };
  if (options.verify !== false) {
    // Imported here so that reading credentials does not pull in the client.
    const { RegistryClient } = await import("./registry_client.ts");
    const { loadRegistriesConfig } = await import("./registries_config.ts");
    const client = new RegistryClient(name, {
      credentials: () => Promise.resolve(creds),
      config: options.config ?? await loadRegistriesConfig(),
    });
    await client.checkLogin();
  }
  const path = trunAuthPath(options.pathEnv ?? currentPathEnv());
  const file = await readAuthFile(path);
  const auths = { ...(file.auths ?? {}) };
  for (const key of Object.keys(auths)) {
    if (normalizeAuthKey(key) === name) delete auths[key];
  }
  auths[name] = { auth: encodeBase64(`${username}:${password}`) };
  await writeAuthFile(path, { ...file, auths });
}

/**
 * Removes the saved login for a registry from trun's auth.json. Returns false
 * when there was none. Docker's own config is never changed.
 */
export async function logout(registry: string, options: LoginOptions = {}): Promise<boolean> {
  const name = normalizeRegistry(registry);
  const path = trunAuthPath(options.pathEnv ?? currentPathEnv());
  const file = await readAuthFile(path);
  const auths = { ...(file.auths ?? {}) };
  let removed = false;
  for (const key of Object.keys(auths)) {
    if (normalizeAuthKey(key) === name) {
      delete auths[key];
      removed = true;
    }
  }
  if (removed) await writeAuthFile(path, { ...file, auths });
  return removed;
}

/**
 * Writes an auth file readable by its owner only. A crash leaves either the
 * old file or the new one: the text goes to a temporary file in the same
 * directory, is synced, then renamed over the old name.
 */
export async function writeAuthFile(path: string, doc: AuthFile): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    const bytes = new TextEncoder().encode(JSON.stringify(doc, null, 2) + "\n");
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`Cannot write credentials file "${path}": ${(e as Error).message}`);
  }
  file.close();
  // The mode passed to open() is filtered by the umask; make sure of 0600.
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

function encodeBase64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function decodeBase64(s: string): string {
  try {
    const bin = atob(s.trim());
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}
