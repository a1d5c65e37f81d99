/**
 * A private Podman for acceptance tests that drive trun's OCI runtime
 * through `podman --runtime`, kept apart from the user's own containers.
 *
 * `podmanSandbox()` makes one temporary directory holding everything
 * Podman would otherwise keep in the user's home or runtime directory:
 * the store (`--root`, `--runroot`, `--storage-driver vfs`), libpod's
 * temporary files (`--tmpdir`, where Podman 4 also keeps the pause
 * process's pid file), a `containers.conf` named by `CONTAINERS_CONF`
 * (Podman then reads no other containers.conf), a `storage.conf` named by
 * `CONTAINERS_STORAGE_CONF`, the CNI config directory, and the
 * `trun-runc` wrapper written by `scripts/install_runc_wrapper.sh`.
 *
 * `XDG_RUNTIME_DIR` is removed from Podman's environment: CI runs the
 * suite without it (as `su` or `runuser` give none), and Podman must then
 * fall back to its own directory (`/tmp/podman-run-UID`, or
 * `/run/user/UID` when that exists) and hand it on to conmon and trun.
 *
 * See podman(1) (`--root`, `--runroot`, `--tmpdir`, `--runtime`),
 * containers.conf(5), containers-storage.conf(5), script(1).
 */

import { findTool, removeTree, REPO_ROOT } from "./host.ts";

const dec = new TextDecoder();

/** Where Podman 4 looks for conmon when `$PATH` has none (containers.conf(5), `conmon_path`). */
const CONMON_PATHS = [
  "/usr/libexec/podman/conmon",
  "/usr/local/libexec/podman/conmon",
  "/usr/lib/podman/conmon",
  "/usr/libexec/crio/conmon",
];

/** The host tools Podman acceptance needs; a string is the tool's path, null when missing. */
export interface PodmanTools {
  /** `podman`. */
  podman: string | null;
  /** `conmon`, Podman's container monitor. */
  conmon: string | null;
  /** util-linux `script`, which gives `podman -it` a terminal. */
  script: string | null;
  /** GNU `tar`, to turn the rootfs into an image for `podman import`. */
  tar: string | null;
  /** Why each missing tool is missing, by name. */
  reasons: Record<string, string>;
}

/** Finds podman, conmon, script and tar, with a reason for each one missing. */
export async function podmanTools(): Promise<PodmanTools> {
  const reasons: Record<string, string> = {};
  const podman = await findTool("podman");
  if (podman === null) reasons.podman = "podman missing (install podman)";
  let conmon = await findTool("conmon");
  for (const p of CONMON_PATHS) {
    if (conmon !== null) break;
    conmon = await Deno.stat(p).then((s) => s.isFile ? p : null).catch(() => null);
  }
  if (conmon === null) reasons.conmon = "conmon missing (install conmon)";
  const script = await findTool("script");
  if (script === null) reasons.script = "script missing (install util-linux)";
  const tar = await findTool("tar");
  if (tar === null) reasons.tar = "tar missing (install tar)";
  return { podman, conmon, script, tar, reasons };
}

/** What one podman invocation did. */
export interface PodmanResult {
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
  /** Everything written to stdout (under `script`, the terminal's output: CR LF line ends). */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
  /** The timeout fired and the process was killed. */
  timedOut: boolean;
  /** Wall time from spawn to exit. */
  durationMs: number;
}

/** Options of `PodmanSandbox.podman()` and `podmanTty()`. */
export interface PodmanRunOptions {
  /** Kill podman (and, under `script`, its session) after this long (default 30 s). */
  timeoutMs?: number;
}

/** A private Podman store and configuration in one temporary directory. */
export interface PodmanSandbox {
  /** The temporary directory holding everything. */
  dir: string;
  /** The `trun-runc` wrapper Podman runs as its OCI runtime. */
  runtime: string;
  /** Podman's global flags (`--root`, `--runroot`, `--storage-driver`, `--tmpdir`, `--runtime`). */
  flags: string[];
  /** The environment podman runs with. */
  env: Record<string, string>;
  /** Runs `podman FLAGS ...args` with stdin from /dev/null. */
  podman(args: readonly string[], opts?: PodmanRunOptions): Promise<PodmanResult>;
  /** Runs `podman FLAGS ...args` on a pseudo-terminal (`script -qefc`), for `-it`. */
  podmanTty(args: readonly string[], opts?: PodmanRunOptions): Promise<PodmanResult>;
  /** Packs `rootfs` as a root-owned tar and imports it as the image `ref`. */
  importRootfs(rootfs: string, ref: string): Promise<void>;
  /** Processes still running whose command line names `dir` (conmon, trun), as "pid: cmdline". */
  leftoverProcesses(): Promise<string[]>;
  /**
   * Removes every container, the store (in Podman's user namespace, as it
   * holds files of subordinate ids), this sandbox's pause process and
   * `dir`. Safe to call twice.
   */
  cleanup(): Promise<void>;
  /** A best-effort `cleanup()` without awaiting, for an `unload` handler. */
  cleanupSync(): void;
}

/** Quotes `args` for `sh -c`. */
export function shellQuote(args: readonly string[]): string {
  return args.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

async function collect(
  cmd: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
  group: boolean,
): Promise<PodmanResult> {
  const started = performance.now();
  // With `group`, setsid makes the command a process group leader, so a
  // timeout kills script(1) and the podman it runs together.
  const child = new Deno.Command(group ? "setsid" : cmd, {
    args: group ? ["--wait", cmd, ...args] : [...args],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      Deno.kill(group ? -child.pid : child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    timedOut,
    durationMs: performance.now() - started,
  };
}

/** Whether `pid` runs, and its command line with spaces for NULs. */
async function cmdlineOf(pid: number): Promise<string | null> {
  try {
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ").trim();
  } catch {
    return null;
  }
}

/**
 * Creates a sandbox: the directory, `containers.conf` and `storage.conf`,
 * and the wrapper (installed by the project's script, as the current user,
 * so it embeds this user's deno and DENO_DIR).
 */
export async function podmanSandbox(
  tools: PodmanTools,
  opts: { network: "slirp4netns" | "none" },
): Promise<PodmanSandbox> {
  if (tools.podman === null || tools.conmon === null || tools.script === null) {
    throw new Error("Cannot make a Podman sandbox: podman, conmon or script is missing");
  }
  const podman = tools.podman, script = tools.script;
  const dir = await Deno.makeTempDir({ prefix: "trun-podman-" });
  // Container processes run as subordinate ids: they must reach the store.
  await Deno.chmod(dir, 0o755);
  const paths = {
    storage: `${dir}/storage`,
    runroot: `${dir}/runroot`,
    tmp: `${dir}/tmp`,
    net: `${dir}/cni`,
    containersConf: `${dir}/containers.conf`,
    storageConf: `${dir}/storage.conf`,
  };
  await Deno.mkdir(paths.net);
  await Deno.writeTextFile(
    paths.containersConf,
    [
      "[containers]",
      // Logs in a file under the store, not in the journal.
      'log_driver = "k8s-file"',
      // Rootless Podman 4.3 defaults to slirp4netns; without it, no network.
      ...(opts.network === "none" ? ['netns = "none"'] : []),
      "",
      "[engine]",
      // Without a systemd user session (CI has none) Podman would fall
      // back to cgroupfs with a warning on every command.
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `conmon_path = ["${tools.conmon}"]`,
      `network_config_dir = "${paths.net}"`,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    paths.storageConf,
    [
      "[storage]",
      'driver = "vfs"',
      `graphroot = "${paths.storage}"`,
      `runroot = "${paths.runroot}"`,
      "",
    ].join("\n"),
  );

  const runtime = `${dir}/trun-runc`;
  const install = await new Deno.Command("sh", {
    args: [`${REPO_ROOT}/scripts/install_runc_wrapper.sh`, runtime],
    stdin: "null",
  }).output();
  if (!install.success) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`install_runc_wrapper.sh failed: ${dec.decode(install.stderr).trim()}`);
  }

  const env = Deno.env.toObject();
  // Tested as CI runs it: Podman must find its runtime directory itself.
  delete env.XDG_RUNTIME_DIR;
  env.CONTAINERS_CONF = paths.containersConf;
  env.CONTAINERS_STORAGE_CONF = paths.storageConf;
  env.NO_COLOR = "1";
  const flags = [
    "--root",
    paths.storage,
    "--runroot",
    paths.runroot,
    "--storage-driver",
    "vfs",
    "--tmpdir",
    paths.tmp,
    "--runtime",
    runtime,
  ];

  const run = (args: readonly string[], o: PodmanRunOptions = {}) =>
    collect(podman, [...flags, ...args], env, o.timeoutMs ?? 30_000, false);
  const runTty = (args: readonly string[], o: PodmanRunOptions = {}) =>
    collect(
      script,
      // -e: script exits with podman's status; -f: flush as output comes.
      ["-qefc", shellQuote([podman, ...flags, ...args]), "/dev/null"],
      env,
      o.timeoutMs ?? 30_000,
      true,
    );

  const leftoverProcesses = async (): Promise<string[]> => {
    const found: string[] = [];
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
      const cmdline = await cmdlineOf(Number(e.name));
      if (cmdline !== null && cmdline.includes(dir)) found.push(`${e.name}: ${cmdline}`);
    }
    return found;
  };

  // Podman 4 keeps the pid of the pause process that holds its user
  // namespace in `--tmpdir`, so this sandbox starts its own (catatonit -P).
  // It is Podman's, not trun's; it would outlive the test, so cleanup ends
  // it by its pid once nothing uses the namespace any more.
  const pausePid = async (): Promise<number | null> => {
    const text = await Deno.readTextFile(`${paths.tmp}/pause.pid`).catch(() => "");
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 1) return null;
    const cmdline = await cmdlineOf(pid);
    return cmdline !== null && /catatonit|podman/.test(cmdline) ? pid : null;
  };

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    const problems: string[] = [];
    const rm = await run(["rm", "--all", "--force", "--time", "0"]);
    if (rm.code !== 0) problems.push(`podman rm -af: ${rm.stderr.trim()}`);
    // vfs layers hold files of subordinate ids: remove them as Podman's root.
    const un = await run(["unshare", "rm", "-rf", paths.storage, paths.runroot]);
    if (un.code !== 0) problems.push(`podman unshare rm -rf: ${un.stderr.trim()}`);
    const pause = await pausePid();
    if (pause !== null) {
      try {
        Deno.kill(pause, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await removeTree(dir);
    if (problems.length > 0) throw new Error(`Podman sandbox cleanup: ${problems.join("; ")}`);
  };

  const cleanupSync = () => {
    if (cleaned) return;
    cleaned = true;
    const quiet = (args: string[]) => {
      try {
        new Deno.Command(podman, {
          args: [...flags, ...args],
          env,
          clearEnv: true,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).outputSync();
      } catch {
        // Best effort.
      }
    };
    let pause = 0;
    try {
      pause = Number(Deno.readTextFileSync(`${paths.tmp}/pause.pid`).trim());
    } catch {
      // No pause process was started.
    }
    quiet(["rm", "--all", "--force", "--time", "0"]);
    quiet(["unshare", "rm", "-rf", paths.storage, paths.runroot]);
    try {
      if (pause > 1 && /catatonit|podman/.test(Deno.readTextFileSync(`/proc/${pause}/cmdline`))) {
        Deno.kill(pause, "SIGKILL");
      }
    } catch {
      // Already gone.
    }
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Left for the tmp cleaner.
    }
  };

  return {
    dir,
    runtime,
    flags,
    env,
    podman: run,
    podmanTty: runTty,
    async importRootfs(rootfs: string, ref: string): Promise<void> {
      const tarball = `${dir}/rootfs.tar`;
      // Owned by root in the image, as in a real one, not by the host user.
      const tar = await new Deno.Command(tools.tar ?? "tar", {
        args: ["-C", rootfs, "--owner=0", "--group=0", "--numeric-owner", "-cf", tarball, "."],
        stdin: "null",
      }).output();
      if (!tar.success) throw new Error(`tar failed: ${dec.decode(tar.stderr).trim()}`);
      const r = await run(["import", "--quiet", tarball, ref]);
      await Deno.remove(tarball);
      if (r.code !== 0) throw new Error(`podman import exited ${r.code}: ${r.stderr.trim()}`);
    },
    leftoverProcesses,
    cleanup,
    cleanupSync,
  };
}
