/**
 * Where trun keeps its data and runtime state, following the XDG base
 * directory spec for users and the FHS for root (as Podman does).
 */

/** The environment and identity these paths depend on (parameters so tests can point elsewhere). */
export interface PathEnv {
  /** Effective uid of the caller. */
  uid: number;
  /** Environment variables (XDG_DATA_HOME, XDG_RUNTIME_DIR, HOME, TRUN_ROOT, TRUN_RUNROOT). */
  env: Readonly<Record<string, string | undefined>>;
}

/** The caller's real identity and environment. */
export function currentPathEnv(): PathEnv {
  return { uid: Deno.uid() ?? 0, env: Deno.env.toObject() };
}

/**
 * The store root: `$TRUN_ROOT`, else `/var/lib/trun` for root, else
 * `$XDG_DATA_HOME/trun`, else `$HOME/.local/share/trun`.
 */
export function storeRoot(p: PathEnv = currentPathEnv()): string {
  const { env, uid } = p;
  if (env.TRUN_ROOT) return env.TRUN_ROOT;
  if (uid === 0) return "/var/lib/trun";
  if (env.XDG_DATA_HOME) return `${env.XDG_DATA_HOME}/trun`;
  if (!env.HOME) {
    throw new Error("Cannot find a store directory: HOME is not set; set HOME or TRUN_ROOT");
  }
  return `${env.HOME}/.local/share/trun`;
}

/**
 * The runtime state root: `$TRUN_RUNROOT`, else `/run/trun` for root, else
 * `$XDG_RUNTIME_DIR/trun`. A plain `runuser` or `su` login has no
 * XDG_RUNTIME_DIR; like Podman we then fall back to `/tmp/trun-run-<uid>`
 * (created 0700 and checked to be ours by the caller).
 */
export function runtimeRoot(p: PathEnv = currentPathEnv()): string {
  const { env, uid } = p;
  if (env.TRUN_RUNROOT) return env.TRUN_RUNROOT;
  if (uid === 0) return "/run/trun";
  if (env.XDG_RUNTIME_DIR) return `${env.XDG_RUNTIME_DIR}/trun`;
  return `/tmp/trun-run-${uid}`;
}

/** The config directory: `$XDG_CONFIG_HOME/trun`, else `$HOME/.config/trun` (root: `/etc/trun`). */
export function configRoot(p: PathEnv = currentPathEnv()): string {
  const { env, uid } = p;
  if (env.TRUN_CONFIG_DIR) return env.TRUN_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return `${env.XDG_CONFIG_HOME}/trun`;
  if (uid === 0 && !env.HOME) return "/etc/trun";
  return `${env.HOME ?? "/"}/.config/trun`;
}
