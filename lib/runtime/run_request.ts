/**
 * From a `RunRequest` (what the user asked for on the command line) to a
 * `ContainerPlan`: reads the facts the plan depends on (id mapping, the
 * rootfs's account files, the host's /proc layout) and makes every decision
 * with the pure helpers (user, env, command, mounts).
 */
import { executableCandidates, resolveCommand, resolveWorkdir } from "./command.ts";
import { buildEnvironment, type EnvFile, envLookup } from "./env.ts";
import { type IdMapping, loadIdMapping, mapToContainer } from "./idmap.ts";
import { parseVolume } from "./mounts.ts";
import { assemblePlan, type ContainerPlan } from "./plan.ts";
import { canBindFileAt, readRootfsText, resolveEntry, resolveInRootfs } from "./rootfs_files.ts";
import { resolveUser } from "./user.ts";

/** What the user asked for. */
export interface RunRequest {
  /** Root filesystem layers, top first (a `--rootfs` directory is one layer). */
  layers: string[];
  /** Image config parts (absent for `--rootfs`). */
  image?: {
    env?: string[];
    cmd?: string[];
    entrypoint?: string[];
    workingDir?: string;
    user?: string;
  };
  /** Arguments after the image (the command). */
  args: string[];
  /** `--entrypoint`. */
  entrypoint?: string;
  /** `--hostname`. */
  hostname?: string;
  /** `-e`. */
  env: string[];
  /** `--env-file` contents. */
  envFiles: EnvFile[];
  /** `-w`. */
  workdir?: string;
  /** `-u`. */
  user?: string;
  /** `--group-add`. */
  groupAdd: string[];
  /** `-v`. */
  volumes: string[];
  /** `--read-only`. */
  readOnly: boolean;
  /** `--network`. */
  network: "host" | "none";
  /** `-t`. */
  tty: boolean;
  /** `-i`. */
  interactive: boolean;
  /** Directory under which the container's scratch mount point is made. */
  runtimeDir: string;
}

/** A fresh container id: 64 hex digits, like Docker's. */
export function newContainerId(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Whether the running kernel (or `release`, e.g. `6.18.4-x`) is at least `major.minor`. */
export function kernelAtLeast(
  major: number,
  minor: number,
  release: string = Deno.osRelease(),
): boolean {
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

/**
 * The contents of the container's /etc/hostname, /etc/hosts and
 * /etc/resolv.conf, as Docker and Podman provide them: the hostname; the
 * host's hosts file (shared network) or a loopback-only one, plus the
 * hostname on 127.0.1.1; the host's resolver configuration, so names
 * resolve in the container.
 */
export function etcFileContents(
  hostname: string,
  network: "host" | "none",
  host: { hosts: string | null; resolvConf: string | null },
): Record<"hostname" | "hosts" | "resolv.conf", string | null> {
  const loopback = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  let hosts = network === "host" && host.hosts !== null ? host.hosts : loopback;
  if (!hosts.endsWith("\n")) hosts += "\n";
  const named = hosts.split("\n").some((l) =>
    l.replace(/#.*/, "").trim().split(/\s+/).slice(1).includes(hostname)
  );
  if (!named) hosts += `127.0.1.1\t${hostname}\n`;
  return { hostname: `${hostname}\n`, hosts, "resolv.conf": host.resolvConf };
}

/**
 * Writes the /etc files into `dir` and returns the bind mounts for those the
 * image can take (a regular file, or none in an existing /etc; an image
 * whose /etc/resolv.conf is a dangling link keeps its own).
 */
function prepareEtcFiles(
  dir: string,
  layers: readonly string[],
  hostname: string,
  network: "host" | "none",
  mapping: IdMapping,
): { source: string; target: string }[] {
  const contents = etcFileContents(hostname, network, {
    hosts: readHostFile("/etc/hosts"),
    resolvConf: readHostFile("/etc/resolv.conf"),
  });
  const out: { source: string; target: string }[] = [];
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [name, text] of Object.entries(contents)) {
    const target = `/etc/${name}`;
    if (text === null || !canBindFileAt(layers, target)) continue;
    if (!resolveInRootfs(layers, target) && !rootCanCreateIn(layers, "/etc", mapping)) continue;
    Deno.writeTextFileSync(`${dir}/${name}`, text, { mode: 0o644 });
    out.push({ source: `${dir}/${name}`, target });
  }
  return out;
}

/**
 * Whether the container's root can create a file in `dir` of the rootfs: as
 * host root always; in a user namespace only when the directory's owner is
 * mapped (a rootfs owned by an unmapped id, say host root's files given to
 * a rootless user, shows as `nobody` and is read-only inside).
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

function hostHas(path: string): { exists: boolean; dir: boolean } {
  try {
    const info = Deno.statSync(path);
    return { exists: true, dir: info.isDirectory };
  } catch {
    return { exists: false, dir: false };
  }
}

/** Builds the plan for `req`; `idMapping` may be given (tests, benchmarks). */
export function planRun(req: RunRequest, idMapping: IdMapping = loadIdMapping()): ContainerPlan {
  const id = newContainerId();
  const hostname = req.hostname ?? id.slice(0, 12);
  const files = {
    passwd: readRootfsText(req.layers, "/etc/passwd"),
    group: readRootfsText(req.layers, "/etc/group"),
  };
  const user = resolveUser(req.user ?? req.image?.user, files, req.groupAdd);
  if (idMapping.mode === "single" && (user.uid !== 0 || user.gid !== 0)) {
    throw new Error(
      `cannot run as user "${req.user ?? req.image?.user}" (uid ${user.uid}, gid ${user.gid}): ` +
        "without subordinate ids only root is mapped in the container; " +
        "add ranges to /etc/subuid and /etc/subgid and install newuidmap (package uidmap)",
    );
  }
  const args = resolveCommand({
    imageEntrypoint: req.image?.entrypoint,
    imageCmd: req.image?.cmd,
    entrypointFlag: req.entrypoint,
    args: req.args,
  });
  const env = buildEnvironment({
    imageEnv: req.image?.env ?? [],
    envFiles: req.envFiles,
    envFlags: req.env,
    hostEnv: Deno.env.toObject(),
    hostname,
    home: user.home,
    tty: req.tty,
  });
  const cwd = resolveWorkdir(req.workdir, req.image?.workingDir);
  const executables = executableCandidates(args[0]!, envLookup(env, "PATH"));
  if (executables.length === 0) throw new Error("no command specified");
  const etcDir = `${req.runtimeDir}/containers/${id}.etc`;
  const volumes = req.volumes.map(parseVolume);
  const etcFiles = prepareEtcFiles(etcDir, req.layers, hostname, req.network, idMapping);
  try {
    return assemblePlan({
      id,
      hostname,
      idMapping,
      network: req.network,
      rootfs: {
        lowers: req.layers,
        scratch: `${req.runtimeDir}/containers/${id}`,
        readOnly: req.readOnly,
        lowerdirAppend: kernelAtLeast(6, 8),
      },
      volumes,
      etcFiles,
      cleanup: [etcDir],
      process: {
        args,
        executables,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        // In a single-id mapping setgroups is denied; only root exists anyway.
        additionalGids: idMapping.mode === "single" ? [] : user.additionalGids,
        keepStdin: req.interactive,
        tty: req.tty,
      },
      hostHas,
    });
  } catch (e) {
    Deno.removeSync(etcDir, { recursive: true });
    throw e;
  }
}
