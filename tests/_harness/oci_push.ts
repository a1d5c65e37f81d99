/**
 * A small uploader from an OCI image layout directory to a registry, by
 * plain OCI Distribution API calls: monolithic blob uploads
 * (`POST /v2/<name>/blobs/uploads/` then `PUT <location>?digest=`) and
 * `PUT /v2/<name>/manifests/<reference>`.
 *
 * It is a test fixture loader, deliberately independent of trun's own
 * registry client, so a bug there cannot hide behind the same bug here.
 * Follows the OCI Distribution Spec v1.0 ("Pushing blobs", "Pushing
 * manifests") and the OCI Image Layout spec.
 */

/** A content descriptor as in the OCI image spec. */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** "sha256:<hex>". */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** Annotations (the layout's index names images with `REF_NAME_ANNOTATION`). */
  annotations?: Record<string, string>;
  /** For entries of an index: the platform the manifest is for. */
  platform?: { architecture: string; os: string; variant?: string };
}

/** What was pushed for one `org.opencontainers.image.ref.name` of the layout. */
export interface PushedImage {
  /** The reference as written in the layout ("trun-fixtures/busybox:latest"). */
  ref: string;
  /** The repository part ("trun-fixtures/busybox"). */
  repository: string;
  /** The tag part ("latest"). */
  tag: string;
  /** Digest of the top manifest or index. */
  digest: string;
  /** Media type of the top manifest or index. */
  mediaType: string;
}

/** The annotation that names an image in an OCI layout's `index.json`. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

/** Splits "name/path:tag" at the tag's colon (a colon before the last slash is a port). */
export function splitRef(ref: string): { repository: string; tag: string } {
  const colon = ref.lastIndexOf(":");
  if (colon <= ref.lastIndexOf("/")) return { repository: ref, tag: "latest" };
  return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/**
 * Pushes every image of the layout that carries a ref name (or only those
 * in `refs`) to `registryHost` ("127.0.0.1:5000") over plain HTTP.
 */
export async function pushLayout(
  layoutDir: string,
  registryHost: string,
  refs?: readonly string[],
): Promise<PushedImage[]> {
  const index = JSON.parse(await Deno.readTextFile(`${layoutDir}/index.json`)) as {
    manifests: Descriptor[];
  };
  const pusher = new Pusher(layoutDir, `http://${registryHost}`);
  const pushed: PushedImage[] = [];
  for (const desc of index.manifests) {
    const ref = desc.annotations?.[REF_NAME_ANNOTATION];
    if (ref === undefined || (refs !== undefined && !refs.includes(ref))) continue;
    const { repository, tag } = splitRef(ref);
    await pusher.pushTree(repository, desc, tag);
    pushed.push({ ref, repository, tag, digest: desc.digest, mediaType: desc.mediaType });
  }
  return pushed;
}

class Pusher {
  constructor(readonly layoutDir: string, readonly base: string) {}

  blobPath(digest: string): string {
    const [alg, hex] = digest.split(":");
    return `${this.layoutDir}/blobs/${alg}/${hex}`;
  }

  /** Pushes a manifest or index with everything it references, children first. */
  async pushTree(repo: string, desc: Descriptor, reference: string): Promise<void> {
    const bytes = await Deno.readFile(this.blobPath(desc.digest));
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as {
      manifests?: Descriptor[];
      config?: Descriptor;
      layers?: Descriptor[];
    };
    if (INDEX_TYPES.has(desc.mediaType)) {
      // The registry refuses an index whose manifests it does not have yet.
      for (const child of doc.manifests ?? []) await this.pushTree(repo, child, child.digest);
    } else {
      for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
        await this.pushBlob(repo, blob.digest);
      }
    }
    await this.pushManifest(repo, reference, desc, bytes);
  }

  async pushBlob(repo: string, digest: string): Promise<void> {
    const head = await fetch(`${this.base}/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
    await head.body?.cancel();
    if (head.status === 200) return;
    const start = await fetch(`${this.base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await start.body?.cancel();
    const location = start.headers.get("location");
    if (start.status !== 202 || location === null) {
      throw new Error(`Cannot start a blob upload to "${repo}": status ${start.status}`);
    }
    const url = new URL(location, this.base);
    url.searchParams.set("digest", digest);
    const body = await Deno.readFile(this.blobPath(digest));
    const put = await fetch(url, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body,
    });
    const text = await put.text();
    if (put.status !== 201) {
      throw new Error(`Cannot upload blob ${digest} to "${repo}": status ${put.status}: ${text}`);
    }
  }

  async pushManifest(
    repo: string,
    reference: string,
    desc: Descriptor,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<void> {
    const res = await fetch(`${this.base}/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { "content-type": desc.mediaType },
      body: bytes,
    });
    const text = await res.text();
    if (res.status !== 201) {
      throw new Error(
        `Cannot push manifest "${repo}:${reference}": status ${res.status}: ${text}`,
      );
    }
    const served = res.headers.get("docker-content-digest");
    if (served !== null && served !== desc.digest) {
      throw new Error(
        `Registry stored manifest "${repo}:${reference}" as ${served}, expected ${desc.digest}`,
      );
    }
  }
}
