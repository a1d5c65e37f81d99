/**
 * `trun run` from start to end: gathers the host and root filesystem facts
 * once, generates the container's `config.json` (pure), writes the /etc
 * files its mounts need, runs it through the engine in this process, and
 * removes what it made. A `trun run` killed half-way leaves its scratch
 * directory and files behind with an owner marker; the next run tidies
 * them (`sweepStaleRuns`).
 */
import { containerConfig } from "../engine/config.ts";
import { runContainer, type StartTimings } from "../engine/executor.ts";
import { markOwner, sweepStaleRuns } from "../engine/state.ts";
import type { IdMapping } from "../runtime/idmap.ts";
import { mapToContainer } from "../runtime/idmap.ts";
import {
  canBindFileAt,
  readRootfsText,
  resolveEntry,
  resolveInRootfs,
} from "../runtime/rootfs_files.ts";
import {
  type EtcFileName,
  type GeneratedContainer,
  generateSpec,
  type HostFacts,
  type ImageProcessConfig,
  type RootfsFacts,
  type RunOptions,
} from "../spec/generate.ts";
import type { VolumeSource } from "../spec/mounts.ts";

/** A fresh container id: 64 hex digits, like Docker's. */
export function newContainerId(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Whether the running kernel (or `release`, e.g. `6.18.4-x`) is at least `major.minor`. */
export function kernelAtLeast(major: number, minor: number, release: string): boolean {
  const m = release.match(/^(\d+)\.(\d+)/);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

function readHostFile(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** The host facts spec generation needs, read once. */
export function gatherHostFacts(idMapping: IdMapping): HostFacts {
  return {
    idMapping,
    env: Deno.env.toObject(),
    hosts: readHostFile("/etc/hosts"),
    resolvConf: readHostFile("/etc/resolv.conf"),
  };
}

/**
 * Whether the container's root can create a file in `dir` of the rootfs: as
 * host root always; in a user namespace only when the directory's owner is
 * mapped (a rootfs owned by an unmapped id shows as `nobody` and is
 * read-only inside).
 */
function rootCanCreateIn(layers: readonly string[], dir: string, mapping: IdMapping): boolean {
  if (mapping.mode === "host") return true;
  const e = resolveEntry(layers, dir);
  if (e.kind !== "dir") return false;
  try {
    return mapToContainer(Deno.statSync(e.host).uid ?? -1, mapping.uid) !== null;
  } catch {
    return false;
  }
}

/** What the root filesystem says: account files and where /etc files can be bound. */
export function gatherRootfsFacts(layers: readonly string[], mapping: IdMapping): RootfsFacts {
  const bindable = (name: EtcFileName) => {
    const target = `/etc/${name}`;
    if (!canBindFileAt(layers, target)) return false;
    return resolveInRootfs(layers, target) !== null || rootCanCreateIn(layers, "/etc", mapping);
  };
  return {
    passwd: readRootfsText(layers, "/etc/passwd"),
    group: readRootfsText(layers, "/etc/group"),
    etcBindable: {
      hostname: bindable("hostname"),
      hosts: bindable("hosts"),
      "resolv.conf": bindable("resolv.conf"),
    },
  };
}

/** What `runInProcess` needs. */
export interface RunInput {
  /** Root filesystem layers, top first (a `--rootfs` directory is one layer). */
  layers: string[];
  /** The image's process config (empty for `--rootfs`). */
  image: ImageProcessConfig;
  /** The user's options. */
  options: RunOptions;
  /** `-i`. */
  interactive: boolean;
  /** The id mapping. */
  idMapping: IdMapping;
  /** The runtime directory (`$XDG_RUNTIME_DIR/trun`). */
  runtimeDir: string;
  /** The container id (default: a fresh one). */
  id?: string;
  /** Called with the generated spec before the start (`--debug`). */
  onSpec?: (g: GeneratedContainer) => void;
  /** Called with the start timings. */
  onStarted?: (t: StartTimings) => void;
  /** Where each volume mount's data is (lib/container/volumes.ts). */
  volumes?: Readonly<Record<string, VolumeSource>>;
}

/** Generates the spec for `input` and runs it; returns the exit status. */
export async function runInProcess(input: RunInput): Promise<number> {
  const id = input.id ?? newContainerId();
  const dir = `${input.runtimeDir}/containers`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  sweepStaleRuns(dir);
  const scratch = `${dir}/${id}`;
  const filesDir = `${dir}/${id}.etc`;
  const generated = generateSpec({
    id,
    rootPath: `${scratch}/root`,
    filesDir,
    image: input.image,
    rootfs: gatherRootfsFacts(input.layers, input.idMapping),
    options: input.options,
    host: gatherHostFacts(input.idMapping),
    ...(input.volumes ? { volumes: input.volumes } : {}),
  });
  input.onSpec?.(generated);
  const config = containerConfig(generated.spec, dir);
  markOwner(dir, id);
  try {
    if (generated.files.length > 0) Deno.mkdirSync(filesDir, { recursive: true, mode: 0o700 });
    for (const f of generated.files) Deno.writeTextFileSync(f.path, f.content, { mode: 0o644 });
    return await runContainer(config, {
      rootfs: {
        kind: "overlay",
        lowers: input.layers,
        scratch,
        lowerdirAppend: kernelAtLeast(6, 8, Deno.osRelease()),
      },
      keepStdin: input.interactive,
      mapping: input.idMapping,
      ...(input.onStarted ? { onStarted: input.onStarted } : {}),
    });
  } finally {
    const made = [scratch, ...(generated.files.length > 0 ? [filesDir] : []), `${dir}/${id}.owner`];
    for (const p of made) {
      await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  }
}
