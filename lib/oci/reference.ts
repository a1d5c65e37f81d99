/**
 * Image references as people type them (`ubuntu`, `ghcr.io/o/app:1.2`,
 * `localhost:5000/x@sha256:…`) turned into the fully qualified form the
 * registry API needs, with Docker's normalisation: a bare name lives in
 * `docker.io/library`, a missing tag is `latest`, and the first path
 * component is a registry host only if it looks like one (contains `.` or
 * `:`, or is `localhost`). The grammar follows distribution/reference.
 */

/** The registry every unqualified name belongs to. */
export const DEFAULT_REGISTRY = "docker.io";

/** The tag used when a reference names neither a tag nor a digest. */
export const DEFAULT_TAG = "latest";

/** docker.io is a brand, not a host: this is where its API answers. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

// Path components: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// A host name label, or an IPv6 literal in brackets, then an optional port.
const HOST_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX64 = /^[a-f0-9]{64}$/;
const MAX_NAME_LENGTH = 255;

/** A fully qualified image reference: registry, repository and a tag and/or a digest. */
export class ImageReference {
  /** Registry host with its port, normalised (`docker.io`, `localhost:5000`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/ubuntu`). */
  readonly repository: string;
  /** Tag, when the reference has one (always, unless it was pinned by digest only). */
  readonly tag?: string;
  /** Content digest (`sha256:<64 hex>`), when the reference is pinned. */
  readonly digest?: string;

  /** Builds a reference from parts that are already valid; use parseReference() for user input. */
  constructor(parts: { registry: string; repository: string; tag?: string; digest?: string }) {
    this.registry = parts.registry;
    this.repository = parts.repository;
    if (parts.tag !== undefined) this.tag = parts.tag;
    if (parts.digest !== undefined) this.digest = parts.digest;
  }

  /** `registry/repository`, the name without tag or digest. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** What the manifest endpoint wants after `/manifests/`: the digest if pinned, else the tag. */
  get apiReference(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  /** The short name Docker prints (`ubuntu`, `user/repo`, `ghcr.io/o/app`). */
  get familiarName(): string {
    if (this.registry !== DEFAULT_REGISTRY) return this.name;
    const rest = this.repository.startsWith("library/") ? this.repository.slice(8) : undefined;
    return rest !== undefined && !rest.includes("/") ? rest : this.repository;
  }

  /** The short form with tag and digest (`ubuntu:latest`, `user/repo@sha256:…`). */
  get familiar(): string {
    return this.familiarName + this.#suffix();
  }

  /** The same repository with another tag (and no digest). */
  withTag(tag: string): ImageReference {
    if (!TAG.test(tag)) {
      throw new Error(`Invalid tag "${tag}": use letters, digits, "_", "." and "-"`);
    }
    return new ImageReference({ registry: this.registry, repository: this.repository, tag });
  }

  /** The same repository pinned to a digest (the tag is kept for display). */
  withDigest(digest: string): ImageReference {
    return new ImageReference({
      registry: this.registry,
      repository: this.repository,
      ...(this.tag !== undefined ? { tag: this.tag } : {}),
      digest,
    });
  }

  /** The fully qualified form: `docker.io/library/ubuntu:latest`. */
  toString(): string {
    return this.name + this.#suffix();
  }

  #suffix(): string {
    return (this.tag !== undefined ? `:${this.tag}` : "") +
      (this.digest !== undefined ? `@${this.digest}` : "");
  }
}

/** Raised for references that do not follow the grammar; the message names the bad part. */
export class InvalidReferenceError extends Error {
  /** The reference as the user wrote it. */
  readonly input: string;
  /** Builds the error for `input`, with `reason` explaining what is wrong. */
  constructor(input: string, reason: string) {
    super(`invalid reference "${input}": ${reason}`);
    this.name = "InvalidReferenceError";
    this.input = input;
  }
}

/** Folds the aliases Docker accepts for Docker Hub into `docker.io`. */
export function normalizeRegistry(host: string): string {
  const lower = host.toLowerCase();
  return lower === "index.docker.io" ? DEFAULT_REGISTRY : lower;
}

/** The host (with port) that serves the Distribution API for a registry name. */
export function registryApiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : registry;
}

/** True when the string is a valid `algorithm:hex` digest (sha256 and sha512 lengths are checked). */
export function isValidDigest(digest: string): boolean {
  if (!DIGEST.test(digest)) return false;
  const [algorithm, hex = ""] = digest.split(":", 2);
  if (algorithm === "sha256") return HEX64.test(hex);
  if (algorithm === "sha512") return /^[a-f0-9]{128}$/.test(hex);
  return hex.length >= 32;
}

/**
 * Parses what a user typed into a fully qualified reference, the way
 * `docker pull` does: `ubuntu` → `docker.io/library/ubuntu:latest`.
 */
export function parseReference(input: string): ImageReference {
  const fail = (reason: string): never => {
    throw new InvalidReferenceError(input, reason);
  };
  if (input === "") fail("the reference is empty");
  if (/\s/.test(input)) fail("references cannot contain spaces");

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest)) {
      fail(
        `digest "${digest}" is not valid: expected "sha256:" followed by 64 lowercase hex digits`,
      );
    }
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      fail(`tag "${tag}" is not valid: use up to 128 letters, digits, "_", "." and "-"`);
    }
  }
  if (rest === "") fail("the repository name is missing");

  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      checkHost(first, fail);
      registry = normalizeRegistry(first);
      path = rest.slice(slash + 1);
    }
  }

  if (path === "") fail(`the repository name after "${registry}/" is missing`);
  if (path !== path.toLowerCase()) fail("repository name must be lowercase");
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      fail(
        component === ""
          ? "the repository name has an empty path component"
          : `"${component}" is not a valid repository path component: use lowercase letters, digits and single separators (".", "_", "__", "-")`,
      );
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes("/")) {
    if (HEX64.test(path)) {
      fail("a 64-digit hex name looks like an image ID, not a repository; use the ID directly");
    }
    path = `library/${path}`;
  }
  if (`${registry}/${path}`.length > MAX_NAME_LENGTH) {
    fail(`the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return new ImageReference({
    registry,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  });
}

function checkHost(host: string, fail: (reason: string) => never): void {
  let name = host;
  const portMatch = /:(\d*)$/.exec(host);
  if (portMatch && !(host.startsWith("[") && !host.includes("]:"))) {
    const port = portMatch[1] ?? "";
    if (port === "" || Number(port) > 65535) fail(`registry port in "${host}" is not valid`);
    name = host.slice(0, portMatch.index);
  }
  if (IPV6_HOST.test(name)) return;
  if (name === "" || !name.split(".").every((label) => HOST_LABEL.test(label))) {
    fail(`registry host "${host}" is not valid`);
  }
}
