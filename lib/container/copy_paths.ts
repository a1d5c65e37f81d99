/**
 * Docker's path rules for `trun cp`, pure: which argument names a
 * container (`CONTAINER:PATH`), and, once both ends are looked at, where
 * the copy lands and under which name (moby's pkg/archive copy rules):
 *
 * - SRC a file: DEST an existing directory receives it under its own
 *   name; an existing file is overwritten; a missing DEST is created with
 *   that name, unless DEST ends with `/` (then: no such directory).
 * - SRC a directory: DEST an existing directory receives a copy of it
 *   (`SRC/.`: its content only); a missing DEST is created as a copy;
 *   an existing file is an error (cannot copy a directory onto a file).
 * - The parent of DEST must exist; `SRC/` or `SRC/.` must be a directory.
 */

/** One argument of `cp`: a path on this host, or in a container. */
export type CopyEndpoint =
  | { kind: "host"; path: string }
  | { kind: "container"; container: string; path: string }
  | { kind: "stream" };

/**
 * Docker's reading of a `cp` argument: `-` is a tar stream; an absolute
 * path, or one without `:`, or one whose part before the first `:` starts
 * with `.`, is a host path; otherwise `CONTAINER:PATH`, where a relative
 * PATH is taken from the container's root.
 */
export function parseCopyArg(arg: string): CopyEndpoint {
  if (arg === "-") return { kind: "stream" };
  if (arg.startsWith("/")) return { kind: "host", path: arg };
  const colon = arg.indexOf(":");
  if (colon < 0 || arg.startsWith(".")) return { kind: "host", path: arg };
  const path = arg.slice(colon + 1);
  return {
    kind: "container",
    container: arg.slice(0, colon),
    path: path.startsWith("/") ? path : `/${path}`,
  };
}

/** Whether `path` asserts a directory: it ends with `/` or its last component is `.`. */
export function assertsDirectory(path: string): boolean {
  return path.endsWith("/") || path === "." || path.endsWith("/.");
}

/** Whether `path` names a directory's content: its last component is `.` (`dir/.`). */
export function namesContent(path: string): boolean {
  return path === "." || path.endsWith("/.");
}

/**
 * Lexically cleans a path (`//`, `.` and `..` resolved, no trailing `/`),
 * keeping it relative when it is; `""` becomes `.`.
 */
export function cleanPath(path: string): string {
  const abs = path.startsWith("/");
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else {
      out.push(c);
    }
  }
  const joined = out.join("/");
  return abs ? `/${joined}` : joined === "" ? "." : joined;
}

/** The directory and last component of a cleaned path (`/` and `/`; `.` and `a` for `a`). */
export function splitPath(path: string): { dir: string; base: string } {
  const clean = cleanPath(path);
  if (clean === "/") return { dir: "/", base: "/" };
  const i = clean.lastIndexOf("/");
  if (i < 0) return { dir: ".", base: clean };
  return { dir: i === 0 ? "/" : clean.slice(0, i), base: clean.slice(i + 1) };
}

/** What is found at the destination path (after following a symlink there). */
export interface DestinationInfo {
  /** Whether something exists there. */
  exists: boolean;
  /** Whether that is a directory. */
  isDir: boolean;
}

/** Where a copy lands, or why it cannot. */
export type CopyPlan =
  | {
    ok: true;
    /** The directory the copy is written into. */
    destDir: string;
    /**
     * The name the source takes there; null when the source is a
     * directory whose content is copied into `destDir` itself.
     */
    name: string | null;
  }
  | { ok: false; message: string };

/**
 * Where a copy of `src` (a directory or not) lands for the destination
 * path `dest` as the user wrote it; `destShown` names it in messages
 * (`web:/tmp/x`).
 */
export function planCopy(
  src: { path: string; isDir: boolean },
  dest: string,
  found: DestinationInfo,
  destShown = dest,
): CopyPlan {
  const { base: srcBase } = splitPath(src.path);
  const { dir: destParent, base: destBase } = splitPath(dest);
  // `DIR/.` names the content; so does `/`, which has no name to give.
  const content = src.isDir && (namesContent(src.path) || srcBase === "/");
  if (found.exists && found.isDir) {
    return { ok: true, destDir: cleanPath(dest), name: content ? null : srcBase };
  }
  if (found.exists && src.isDir) {
    return {
      ok: false,
      message:
        `cannot copy a directory onto the file "${destShown}": name a directory, or a path that does not exist yet`,
    };
  }
  if (found.exists) return { ok: true, destDir: destParent, name: destBase };
  if (!src.isDir && assertsDirectory(dest)) {
    return {
      ok: false,
      message:
        `no such directory "${destShown}": a file cannot be copied to a directory that does not exist (drop the trailing "/" to name the new file)`,
    };
  }
  return { ok: true, destDir: destParent, name: destBase };
}
