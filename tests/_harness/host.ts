/**
 * What integration tests need from the host, probed once per process, and
 * how they run the trun CLI under test.
 *
 * `hostCapabilities()` tries each feature for real (an `unshare -Ur`,
 * a `newuidmap` into a fresh namespace, an overlay mount with `userxattr`)
 * rather than guessing from sysctls, because distributions gate user
 * namespaces in different ways (Debian's `unprivileged_userns_clone`,
 * Ubuntu's AppArmor restriction, `user.max_user_namespaces`). The probes
 * themselves are trun's own (lib/host/, the code behind `trun info`), so
 * the tests and `trun info` never disagree about a host. A missing
 * capability skips the tests that need it, with the reason in the test
 * name, as crun's tests exit 77 with a message:
 *
 * ```ts
 * const caps = await hostCapabilities();
 * const need = requires(caps, "idmap", "busybox");
 * Deno.test({ name: `run prints hello${need.suffix}`, ignore: need.ignore, fn });
 * ```
 *
 * `trunSandbox()` gives each test its own store, runtime and config roots
 * (`TRUN_ROOT`, `TRUN_RUNROOT`, `TRUN_CONFIG_DIR`), so tests never touch
 * the user's real store, and `trunCommand()` runs `main.ts` in it.
 *
 * See user_namespaces(7), newuidmap(1), subuid(5), overlayfs
 * (Documentation/filesystems/overlayfs.rst, "userxattr").
 */

import { findStaticBusybox } from "./rootfs.ts";
import { deviceAccess, supplementaryGroups, type Who } from "../../lib/host/access.ts";
import { cgroup2Mount, hierarchyDir, probeCgroups } from "../../lib/host/cgroup.ts";
import { parseMountInfo, readMountInfo } from "../../lib/host/mountinfo.ts";
import { tryOverlayInUserns } from "../../lib/host/storage.ts";
import { idMapHelpers, tryUserNamespace } from "../../lib/host/userns.ts";
import {
  currentUserName,
  findExecutable,
  parseSubordinateIds,
  rangesFor,
} from "../../lib/runtime/idmap.ts";
import { concat } from "../../lib/util/bytes.ts";

/** Where Debian installs the registry (package docker-registry). */
export const DOCKER_REGISTRY_BIN = "/usr/bin/docker-registry";

/** The host features integration tests depend on. A string is the tool's path, null when missing. */
export interface HostCapabilities {
  /** This process can create a user namespace (`unshare --user` works). */
  userns: boolean;
  /** `newuidmap` and `newgidmap` exist and are setuid root or have file capabilities. */
  newuidmap: boolean;
  /** `/etc/subuid` and `/etc/subgid` give the current user a range of at least 65536 ids. */
  subids: boolean;
  /**
   * A mapping of many ids can be written for a new user namespace: as
   * root directly, else `newuidmap`/`newgidmap` with the subordinate ranges
   * were tried for real.
   */
  idmap: boolean;
  /** Kernel overlayfs mounts inside a user namespace (with `userxattr`). */
  overlayInUserns: boolean;
  /** `fuse-overlayfs` and a usable `/dev/fuse`. */
  fuseOverlayfs: string | null;
  /** `pasta` (passt) and a usable `/dev/net/tun`. */
  pasta: string | null;
  /** `slirp4netns` and a usable `/dev/net/tun`. */
  slirp4netns: string | null;
  /** A cgroup2 mount point (`/sys/fs/cgroup` or a hybrid `/sys/fs/cgroup/unified`). */
  cgroup2: string | null;
  /**
   * The directory trun's containers' cgroups go in (`<delegated>/trun`):
   * root, or a cgroup v2 subtree delegated to this user (CI makes one with
   * scripts/cgroup_delegate.sh, as systemd's `Delegate=` does).
   */
  cgroupDelegated: string | null;
  /** A statically linked busybox (Debian's busybox-static). */
  busybox: string | null;
  /** Debian's registry binary. */
  dockerRegistry: string | null;
  /** The tests run as uid 0. */
  isRoot: boolean;
  /** Not root, or root with `TRUN_TEST_ROOT=1` (the suite changes the host when run as root). */
  rootOk: boolean;
  /** Why each missing capability is missing, by name. */
  reasons: Record<string, string>;
}

/** A capability a test can require: a field of `HostCapabilities`, or "root" / "rootless". */
export type CapName =
  | Exclude<keyof HostCapabilities, "reasons" | "isRoot" | "rootOk">
  | "root"
  | "rootless";

/** The user's subordinate id range from /etc/subuid or /etc/subgid. */
export interface SubRange {
  /** First subordinate id. */
  start: number;
  /** Number of ids. */
  count: number;
}

const dec = new TextDecoder();

let capsPromise: Promise<HostCapabilities> | null = null;

/** Probes the host once per process (about 0.1 s) and returns the same answer afterwards. */
export function hostCapabilities(): Promise<HostCapabilities> {
  capsPromise ??= probe();
  return capsPromise;
}

/**
 * Whether a test needing `names` must be skipped, and a suffix for its
 * name that says why (empty when it runs). Every call also requires
 * `rootOk`, so a root developer runs nothing by accident.
 */
export function requires(
  caps: HostCapabilities,
  ...names: CapName[]
): { ignore: boolean; suffix: string } {
  const missing: string[] = [];
  if (!caps.rootOk) missing.push(caps.reasons.rootOk ?? "running as root");
  for (const name of names) {
    const ok = name === "root" ? caps.isRoot : name === "rootless" ? !caps.isRoot : !!caps[name];
    if (!ok) missing.push(caps.reasons[name] ?? reasonFor(name));
  }
  if (missing.length === 0) return { ignore: false, suffix: "" };
  return { ignore: true, suffix: ` (skipped: ${missing.join("; ")})` };
}

function reasonFor(name: CapName): string {
  return name === "root" ? "needs root" : name === "rootless" ? "needs a non-root user" : name;
}

async function run(
  cmd: string,
  args: string[],
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
    return { ok: out.success, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { ok: false, stdout: "", stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** The first of `name` in `$PATH` and the usual bin and sbin directories, or null (as trun looks). */
export function findTool(name: string): Promise<string | null> {
  return Promise.resolve(findExecutable(name, Deno.env.get("PATH") ?? ""));
}

/**
 * The first range for `user` (name or uid) in a subuid(5)-format file, or
 * null. Like shadow's `newuidmap`, entries may name the user or its uid.
 */
export function parseSubRange(text: string, user: string, uid: number): SubRange | null {
  const first = rangesFor(parseSubordinateIds(text), { name: user, uid })[0];
  return first ? { start: first.start, count: first.count } : null;
}

/** The current user's subordinate uid and gid ranges, or null when either is missing. */
export async function subRanges(): Promise<{ uid: SubRange; gid: SubRange } | null> {
  const uid = Deno.uid() ?? 0;
  const user = currentUserName(uid);
  const read = (p: string) => Deno.readTextFile(p).catch(() => "");
  const u = parseSubRange(await read("/etc/subuid"), user, uid);
  const g = parseSubRange(await read("/etc/subgid"), user, uid);
  return u && g ? { uid: u, gid: g } : null;
}

/**
 * Runs `argv` as root of a new user namespace whose ids map 0 → the
 * caller and 1..N → the caller's subordinate ranges, as trun's containers
 * do. `unshare --user` creates the namespace and waits on stdin; the
 * mapping is written from outside with newuidmap/newgidmap, then the
 * command is released. Not for root, which can write any map itself.
 */
export async function runInMappedUserns(
  argv: readonly string[],
  ranges: { uid: SubRange; gid: SubRange },
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", "/bin/sh", "-c", 'read _ && exec "$@"', "sh", ...argv],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  let failure = "";
  try {
    // newuidmap must see the process inside the new namespace, not before
    // unshare(2) ran: wait until its user namespace differs from ours.
    const ours = await Deno.readLink("/proc/self/ns/user");
    const deadline = Date.now() + 5000;
    while (true) {
      const theirs = await Deno.readLink(`/proc/${child.pid}/ns/user`).catch(() => null);
      if (theirs === null) throw new Error("unshare exited before creating the namespace");
      if (theirs !== ours) break;
      if (Date.now() > deadline) throw new Error("unshare did not create a namespace in 5 s");
      await new Promise((r) => setTimeout(r, 2));
    }
    const uid = Deno.uid() ?? 0, gid = Deno.gid() ?? 0;
    for (
      const [tool, own, r] of [["newuidmap", uid, ranges.uid], [
        "newgidmap",
        gid,
        ranges.gid,
      ]] as const
    ) {
      const out = await run(tool, [
        String(child.pid),
        "0",
        String(own),
        "1",
        "1",
        String(r.start),
        String(r.count),
      ]);
      if (!out.ok) throw new Error(`${tool} failed: ${out.stderr.trim()}`);
    }
    await writer.write(new TextEncoder().encode("go\n"));
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await writer.close().catch(() => {});
  const status = await child.status;
  const err = await stderr;
  return {
    ok: failure === "" && status.success,
    stdout: await stdout,
    stderr: failure === "" ? err : `${failure}${err ? `: ${err.trim()}` : ""}`,
  };
}

async function probe(): Promise<HostCapabilities> {
  const reasons: Record<string, string> = {};
  const isRoot = Deno.uid() === 0;
  const rootOk = !isRoot || Deno.env.get("TRUN_TEST_ROOT") === "1";
  if (!rootOk) reasons.rootOk = "running as root; set TRUN_TEST_ROOT=1 to run these as root";

  const unshareTool = await findTool("unshare");
  const unshare = unshareTool === null
    ? { ok: false, stderr: "unshare not found (install util-linux)" }
    : await tryUserNamespace(unshareTool);
  const userns = unshare.ok;
  if (!userns) {
    reasons.userns = `user namespaces unavailable (unshare -Ur: ${
      unshare.stderr.trim() || "failed"
    })`;
  }

  const helpers = await idMapHelpers();
  const newuidmap = helpers.newuidmap.usable && helpers.newgidmap.usable;
  if (!newuidmap) {
    reasons.newuidmap = helpers.newuidmap.path === null || helpers.newgidmap.path === null
      ? "newuidmap/newgidmap missing (install uidmap)"
      : "newuidmap/newgidmap are neither setuid root nor file-capable";
  }

  const ranges = await subRanges();
  const subids = ranges !== null && ranges.uid.count >= 65536 && ranges.gid.count >= 65536;
  if (!subids) {
    reasons.subids = `no range of 65536 ids for "${
      currentUserName(Deno.uid() ?? 0)
    }" in /etc/subuid and /etc/subgid`;
  }

  let idmap = false;
  if (isRoot) {
    idmap = userns;
    if (!idmap) reasons.idmap = reasons.userns ?? "no user namespaces";
  } else if (!userns || !newuidmap || ranges === null) {
    reasons.idmap = reasons.userns ?? reasons.newuidmap ?? reasons.subids ?? "no subordinate ids";
  } else {
    const out = await runInMappedUserns(["cat", "/proc/self/uid_map"], ranges);
    idmap = out.ok && out.stdout.trim().split("\n").length >= 2;
    if (!idmap) reasons.idmap = `newuidmap could not map subordinate ids: ${out.stderr.trim()}`;
  }

  let overlayInUserns = false;
  if (userns && unshareTool !== null) {
    const o = await tryOverlayInUserns(unshareTool);
    overlayInUserns = o.ok;
    if (!o.ok) {
      reasons.overlayInUserns = `overlayfs does not mount in a user namespace: ${
        o.stderr || "mount failed"
      }`;
    }
  } else {
    reasons.overlayInUserns = reasons.userns ?? "no user namespaces";
  }

  // Device nodes are judged by their mode, owner and groups, as `trun info` judges them.
  const who: Who = { uid: Deno.uid() ?? 0, groups: [Deno.gid() ?? 0, ...supplementaryGroups()] };
  const fuseBin = await findTool("fuse-overlayfs");
  const fuseDev = deviceAccess("", "/dev/fuse", who).accessible;
  const fuseOverlayfs = fuseBin !== null && fuseDev ? fuseBin : null;
  if (fuseOverlayfs === null) {
    reasons.fuseOverlayfs = fuseBin === null
      ? "fuse-overlayfs missing (install fuse-overlayfs)"
      : "/dev/fuse is not readable and writable by this user";
  }

  const tun = deviceAccess("", "/dev/net/tun", who).accessible;
  const net = async (name: string, pkg: string): Promise<string | null> => {
    const bin = await findTool(name);
    if (bin !== null && tun) return bin;
    reasons[name] = bin === null
      ? `${name} missing (install ${pkg})`
      : "/dev/net/tun is not readable and writable by this user";
    return null;
  };
  const pasta = await net("pasta", "passt");
  const slirp4netns = await net("slirp4netns", "slirp4netns");

  const cgroup2 = cgroup2Mount(readMountInfo())?.mountPoint ?? null;
  if (cgroup2 === null) reasons.cgroup2 = "no cgroup2 hierarchy mounted";
  const cgroups = probeCgroups("", who, readMountInfo());
  const cgroupDelegated = cgroups.containerParent === null ? null : hierarchyDir(
    { root: cgroups.v2MountRoot ?? "/", mountPoint: cgroups.v2Mount! },
    cgroups.containerParent,
  );
  if (cgroupDelegated === null) {
    reasons.cgroupDelegated = cgroup2 === null
      ? "no cgroup2 hierarchy mounted"
      : `no cgroup v2 subtree delegated to this user (own cgroup ${cgroups.ownCgroup} is not ` +
        "writable; CI delegates one with scripts/cgroup_delegate.sh)";
  }

  const busybox = await findStaticBusybox();
  if (busybox === null) reasons.busybox = "no static busybox (install busybox-static)";

  const dockerRegistry = await Deno.stat(DOCKER_REGISTRY_BIN).then(() => DOCKER_REGISTRY_BIN)
    .catch(() => null);
  if (dockerRegistry === null) {
    reasons.dockerRegistry = "no docker-registry (install docker-registry)";
  }

  return {
    userns,
    newuidmap,
    subids,
    idmap,
    overlayInUserns,
    fuseOverlayfs,
    pasta,
    slirp4netns,
    cgroup2,
    cgroupDelegated,
    busybox,
    dockerRegistry,
    isRoot,
    rootOk,
    reasons,
  };
}

// ---------------------------------------------------------------------------
// Running the CLI under test

/** The repository root, found from this file's location. */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** The CLI entry point the tests run. */
export const MAIN_TS = `${REPO_ROOT}/main.ts`;

/** A private trun store, runtime directory and config directory for one test. */
export interface TrunSandbox {
  /** The temporary directory holding everything. */
  dir: string;
  /** `TRUN_ROOT`, `TRUN_RUNROOT`, `TRUN_CONFIG_DIR` pointing into `dir`. */
  env: Record<string, string>;
  /** `trunCommand(args, { ...opts, sandbox: this })`. */
  run(args: readonly string[], opts?: Omit<TrunCommandOptions, "sandbox">): Promise<TrunResult>;
  /**
   * Removes `dir`, including files owned by subordinate ids. Mounts left
   * under it are lazily unmounted first and then reported as an error, so
   * a test that leaks one fails.
   */
  cleanup(): Promise<void>;
  /** Same as `cleanup()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for `trunCommand()`. */
export interface TrunCommandOptions {
  /** Where trun keeps its state for this call. */
  sandbox: Pick<TrunSandbox, "env">;
  /** More environment variables (they win over the sandbox's). */
  env?: Record<string, string>;
  /** Bytes or text for stdin; without it stdin is /dev/null. */
  stdin?: string | Uint8Array;
  /** Kill trun and everything in its process group after this long (default 60 s). */
  timeoutMs?: number;
  /** Working directory (default the test's). */
  cwd?: string;
  /** Another script to run instead of `main.ts` (the harness's own tests use it). */
  entry?: string;
}

/** What one trun invocation did. */
export interface TrunResult {
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
  /** The signal that ended trun, if one did. */
  signal: Deno.Signal | null;
  /** Everything trun wrote to stdout. */
  stdout: string;
  /** Everything trun wrote to stderr (plus a harness note if a child held it open). */
  stderr: string;
  /** The timeout fired and the process group was killed. */
  timedOut: boolean;
  /** Wall time from spawn to exit and end of output. */
  durationMs: number;
}

async function readAll(stream: ReadableStream<Uint8Array>, stop: Promise<void>): Promise<string> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let done = false;
  void stop.then(() => {
    if (!done) reader.cancel().catch(() => {});
  });
  try {
    while (true) {
      const r = await reader.read();
      if (r.done) break;
      chunks.push(r.value);
    }
  } catch {
    // Cancelled: a leftover child still holds the pipe.
  }
  done = true;
  return dec.decode(concat(chunks));
}

/**
 * Runs `deno run -A main.ts ...args` with the sandbox's environment and
 * collects its output. trun runs in its own session (`setsid`), so a
 * timeout can kill it with everything it started. If trun exits but a
 * process it left behind keeps stdout or stderr open, reading stops 5 s
 * later and stderr says so, instead of the test hanging.
 */
export async function trunCommand(
  args: readonly string[],
  opts: TrunCommandOptions,
): Promise<TrunResult> {
  const started = performance.now();
  const env = { NO_COLOR: "1", ...opts.sandbox.env, ...opts.env };
  const entry = opts.entry ?? MAIN_TS;
  const child = new Deno.Command("setsid", {
    // --wait: should setsid have to fork, it still reports trun's status.
    args: ["--wait", Deno.execPath(), "run", "-A", "--quiet", entry, ...args],
    env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      // setsid made trun a process group leader: the negative pid is its group.
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }, opts.timeoutMs ?? 60_000);
  const stdinDone = opts.stdin === undefined ? Promise.resolve() : (async () => {
    const w = child.stdin.getWriter();
    const data = typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin;
    try {
      await w.write(data ?? new Uint8Array(0));
      await w.close();
    } catch {
      // trun exited without reading all of it.
    }
  })();
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  let held = false;
  const status = child.status;
  const grace = status.then(() =>
    new Promise<void>((resolve) => {
      graceTimer = setTimeout(() => {
        held = true;
        resolve();
      }, 5000);
    })
  );
  const [stdout, stderr, st] = await Promise.all([
    readAll(child.stdout, grace),
    readAll(child.stderr, grace),
    status,
    stdinDone,
  ]);
  clearTimeout(timer);
  clearTimeout(graceTimer);
  return {
    code: st.code,
    signal: st.signal,
    stdout,
    stderr: held ? `${stderr}\n[harness: trun exited but a child kept stdout/stderr open]` : stderr,
    timedOut,
    durationMs: performance.now() - started,
  };
}

/** Mount points at or under `dir`, deepest first, from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  const points = parseMountInfo(info).map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return points.sort((a, b) => b.length - a.length);
}

/**
 * Removes a directory tree a test made, including files owned by
 * subordinate ids or left without permissions (overlay work dirs): a
 * plain remove first, then, when not root, `rm -rf` as root of a user
 * namespace mapped like trun's containers.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
    return;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (Deno.uid() === 0 || !(e instanceof Deno.errors.PermissionDenied)) throw e;
  }
  const ranges = await subRanges();
  if (ranges === null) {
    throw new Error(
      `Cannot remove "${path}": permission denied and no subordinate ids to retry with`,
    );
  }
  const out = await runInMappedUserns(["rm", "-rf", "--", path], ranges);
  if (!out.ok) throw new Error(`Cannot remove "${path}" in a user namespace: ${out.stderr.trim()}`);
}

/** Creates a sandbox: a temporary directory for trun's store, runtime state and config. */
export async function trunSandbox(): Promise<TrunSandbox> {
  const dir = await Deno.makeTempDir({ prefix: "trun-test-" });
  const env = {
    TRUN_ROOT: `${dir}/root`,
    TRUN_RUNROOT: `${dir}/run`,
    TRUN_CONFIG_DIR: `${dir}/config`,
  };
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    // Containers a test left (a failed test, a killed client) run beside
    // their monitors: removed first, so no process outlives the test.
    const containers = await Array.fromAsync(Deno.readDir(`${env.TRUN_ROOT}/containers`)).catch(
      () => [],
    );
    if (containers.length > 0) {
      await trunCommand(["rm", "-f", ...containers.map((e) => e.name)], { sandbox });
    }
    const leaked = await mountsUnder(dir);
    for (const m of leaked) await run("umount", ["-l", m]);
    // A monitor may still be writing its last record for a moment.
    for (let i = 0;; i++) {
      try {
        await removeTree(dir);
        break;
      } catch (e) {
        if (i === 4) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    if (leaked.length > 0) throw new Error(`Test leaked mounts: ${leaked.join(", ")}`);
  };
  const sandbox: TrunSandbox = {
    dir,
    env,
    run: (args, opts = {}) => trunCommand(args, { ...opts, sandbox }),
    cleanup,
    [Symbol.asyncDispose]: cleanup,
  };
  return sandbox;
}

/**
 * Waits (up to 10 s) until no process but this one runs with the
 * sandbox's `TRUN_ROOT` in its environment. A monitor finishes after `rm
 * -f` returns (conmon's exit command `trun container-cleanup`, or trun's
 * own monitor recording the exit) and would recreate store files in a
 * sandbox being removed; call this between `rm -f` and `cleanup()`.
 */
export async function sandboxProcessesGone(sandbox: Pick<TrunSandbox, "env">): Promise<void> {
  const needle = `\0TRUN_ROOT=${sandbox.env.TRUN_ROOT}\0`;
  const latin1 = new TextDecoder("latin1");
  for (let i = 0; i < 100; i++) {
    let found = false;
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
      try {
        const env = `\0${latin1.decode(Deno.readFileSync(`/proc/${e.name}/environ`))}`;
        if (env.includes(needle)) found = true;
      } catch {
        // Gone, or not ours to read.
      }
    }
    if (!found) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
