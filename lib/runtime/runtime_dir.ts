/**
 * The runtime state directory (`$XDG_RUNTIME_DIR/trun`, or a private
 * `/tmp/trun-run-<uid>` when a plain `su`/`runuser` login has none), made
 * sure to exist, to belong to the caller and to be private.
 */
import { runtimeRoot } from "../paths.ts";

/** Creates (0700) and checks the runtime root; returns its path. */
export function ensureRuntimeRoot(root: string = runtimeRoot()): string {
  Deno.mkdirSync(root, { recursive: true, mode: 0o700 });
  const info = Deno.lstatSync(root);
  const uid = Deno.uid();
  if (!info.isDirectory) throw new Error(`runtime directory "${root}" is not a directory`);
  if (uid !== null && info.uid !== uid) {
    // Another user could have made /tmp/trun-run-<uid> first to watch or
    // redirect our mounts; refuse rather than use it.
    throw new Error(
      `runtime directory "${root}" belongs to uid ${info.uid}, not to you (uid ${uid}): remove it, or set XDG_RUNTIME_DIR`,
    );
  }
  if ((info.mode ?? 0) & 0o077) Deno.chmodSync(root, 0o700);
  return root;
}
