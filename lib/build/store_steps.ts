/**
 * The build steps that write the image store: each records one image (the
 * step's result) on top of the previous one. They run where files of any
 * owner can be read and made: in this process as root, in trun's storage
 * user namespace rootless (`trun build-step REQUEST`, an internal command),
 * as `pull` and `commit` do.
 */
import type { ImageRuntimeConfig } from "../oci/manifest.ts";
import type { HistoryEntry } from "../image/local_image.ts";
import type { Store } from "../store/mod.ts";
import { parseGroup, parsePasswd } from "../spec/user.ts";

/** What every step request carries. */
interface StepBase {
  /** The image the step builds on; none for `FROM scratch`. */
  parent?: string;
  /** The config of the resulting image. */
  config: ImageRuntimeConfig;
  /** Its history line. */
  history: HistoryEntry;
  /** `MAINTAINER`. */
  author?: string;
}

/** A step request, as JSON between the builder and the store's side. */
export type StoreStepRequest =
  | StepBase & { kind: "config" }
  | StepBase & {
    kind: "commit";
    container: string;
    /** Where RUN's mounts were: their mount points stay out of the layer. */
    mountPoints?: string[];
  }
  | StepBase & {
    kind: "copy";
    /** The context directory (COPY from the context). */
    contextDir?: string;
    /** The `.dockerignore` beside the Dockerfile, when that is the one to use. */
    ignoreFile?: string;
    /** `--from` an image or a stage's image: its root is the source. */
    fromImage?: string;
    sources: string[];
    dest: string;
    destIsDir: boolean;
    chown?: string;
    chmod?: string;
    add: boolean;
    heredocs: { name: string; content: string }[];
  }
  | StepBase & { kind: "workdir"; path: string };

/** Runs a store step; returns the new image's id. */
export async function runStoreStep(store: Store, req: StoreStepRequest): Promise<string> {
  const { recordLocalImage } = await import("../image/local_image.ts");
  const parent = req.parent === undefined
    ? undefined
    : store.listImages().find((i) => i.id === req.parent);
  if (req.parent !== undefined && parent === undefined) {
    throw new Error(`build: image ${req.parent} is gone from the store`);
  }
  const common = {
    ...(parent ? { parent } : {}),
    runtimeConfig: req.config,
    history: req.history,
    ...(req.author ? { author: req.author } : {}),
  };
  if (req.kind === "config") return (await recordLocalImage(store, common)).id;
  if (req.kind === "commit") {
    const { upperLayer } = await import("../container/writable_layer.ts");
    const rec = store.findRecord(req.container);
    if (!rec) throw new Error(`build: container ${req.container} is gone`);
    const upper = `${store.containerDir(rec.id)}/upper`;
    if (req.mountPoints?.length) {
      const empty = Deno.makeTempDirSync({ prefix: "trun-build-empty-" });
      const { openImageRoot } = await import("./image_root.ts");
      const root = parent ? openImageRoot(store, parent.id, empty) : { path: empty, close() {} };
      try {
        pruneMountPoints(upper, req.mountPoints, (p) => exists(`${root.path}${p}`));
      } finally {
        root.close();
        Deno.removeSync(empty, { recursive: true });
      }
    }
    const layer = await upperLayer(upper, rec);
    try {
      const made = await recordLocalImage(store, { ...common, layer: layer.stream });
      await layer.done;
      return made.id;
    } finally {
      layer.close();
    }
  }
  const { openImageRoot } = await import("./image_root.ts");
  const empty = Deno.makeTempDirSync({ prefix: "trun-build-empty-" });
  const root = parent ? openImageRoot(store, parent.id, empty) : { path: empty, close() {} };
  const from = req.kind === "copy" && req.fromImage
    ? openImageRoot(store, req.fromImage, empty)
    : undefined;
  try {
    const existing = (path: string): Deno.FileInfo | null => {
      try {
        return Deno.lstatSync(`${root.path}${path}`);
      } catch {
        return null;
      }
    };
    const { copyEntries, layerTar } = await import("./copy_layer.ts");
    let entries;
    if (req.kind === "workdir") {
      // The new directory (the empty source) is 0755, as Docker makes it.
      Deno.chmodSync(empty, 0o755);
      const have = existing(req.path);
      if (have?.isDirectory) return (await recordLocalImage(store, common)).id;
      entries = await copyEntries({
        source: { dir: empty, ignored: () => false },
        sources: ["."],
        dest: req.path,
        destIsDir: true,
        add: false,
        heredocs: [],
        existing,
      });
    } else {
      const { openContext } = await import("./context.ts");
      const source = from
        ? { dir: from.path, ignored: () => false }
        : openContext(req.contextDir ?? empty, req.ignoreFile);
      entries = await copyEntries({
        source,
        sources: req.sources,
        dest: req.dest,
        destIsDir: req.destIsDir,
        ...(req.chown ? { owner: chownIds(req.chown, root.path) } : {}),
        ...(req.chmod ? { mode: parseInt(req.chmod, 8) } : {}),
        add: req.add,
        heredocs: req.heredocs,
        existing,
      });
    }
    const made = await recordLocalImage(store, { ...common, layer: await layerTar(entries) });
    return made.id;
  } finally {
    root.close();
    from?.close();
    Deno.removeSync(empty, { recursive: true });
  }
}

/**
 * `--chown=user[:group]` as ids, names looked up in the image's
 * `/etc/passwd` and `/etc/group`. Without a group the gid is the uid
 * (Docker's rule).
 */
export function chownIds(spec: string, rootPath: string): { uid: number; gid: number } {
  const [user = "", group] = spec.split(":", 2);
  const read = (p: string) => {
    try {
      return Deno.readTextFileSync(`${rootPath}${p}`);
    } catch {
      return null;
    }
  };
  const id = (value: string, kind: "user" | "group"): number => {
    if (/^\d+$/.test(value)) return Number(value);
    const text = read(kind === "user" ? "/etc/passwd" : "/etc/group");
    const found = text === null
      ? undefined
      : kind === "user"
      ? parsePasswd(text).find((u) => u.name === value)?.uid
      : parseGroup(text).find((g) => g.name === value)?.gid;
    if (found === undefined) {
      throw new Error(
        `--chown=${spec}: no ${kind} "${value}" in the image's /etc/${
          kind === "user" ? "passwd" : "group"
        }`,
      );
    }
    return found;
  };
  const uid = id(user, "user");
  return { uid, gid: group === undefined || group === "" ? uid : id(group, "group") };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes from a RUN container's writable layer the mount points its
 * `--mount`s needed (an empty file or directory), and the directories made
 * only to hold them, so that neither secrets' nor caches' places show in
 * the image. What the image already had stays.
 */
export function pruneMountPoints(
  upper: string,
  targets: readonly string[],
  inImage: (path: string) => boolean,
): void {
  for (const target of targets) {
    for (let p = target; p !== "/" && p !== "."; p = p.slice(0, p.lastIndexOf("/")) || "/") {
      if (inImage(p)) break;
      try {
        const info = Deno.lstatSync(`${upper}${p}`);
        if (info.isDirectory && [...Deno.readDirSync(`${upper}${p}`)].length > 0) break;
        if (info.isFile && info.size > 0) break;
        Deno.removeSync(`${upper}${p}`);
      } catch {
        break;
      }
    }
  }
}
