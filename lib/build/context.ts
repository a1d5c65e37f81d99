/**
 * The build context: the directory `trun build` was given, what
 * `.dockerignore` leaves of it (Docker's rules, through
 * `@balena/dockerignore`, a port of Docker's own matcher), the files a
 * COPY or ADD source names (with Go's `filepath.Match` wildcards, as
 * Docker), and a content hash of them for the build cache.
 */
import ignoreModule, { type Ignore } from "@balena/dockerignore";
import { createHash } from "node:crypto";

/** A build context directory and its ignore rules. */
export interface BuildContext {
  /** The context directory (absolute). */
  dir: string;
  /** Whether a path relative to the context (`a/b`) is excluded. */
  ignored(rel: string): boolean;
}

/** One file, directory or symlink of the context that a source names. */
export interface ContextEntry {
  /** Path relative to the context (`src/main.c`); "" for the context itself. */
  rel: string;
  /** Its status (not following symlinks). */
  info: Deno.FileInfo;
}

/** `.dockerignore` lines as patterns: comments and blank lines dropped, `./` and `/` trimmed. */
export function ignorePatterns(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Opens context `dir` with its `.dockerignore` (or `ignoreFile`, BuildKit's
 * `Dockerfile.dockerignore` beside the Dockerfile, when it exists).
 */
export function openContext(dir: string, ignoreFile?: string): BuildContext {
  let text = "";
  for (const path of [ignoreFile, `${dir}/.dockerignore`]) {
    if (path === undefined) continue;
    try {
      text = Deno.readTextFileSync(path);
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const patterns = ignorePatterns(text);
  // The package is CommonJS: its default export is the factory itself.
  const ig = (ignoreModule as unknown as () => Ignore)().add(patterns);
  return {
    dir,
    ignored: (rel) => rel !== "" && patterns.length > 0 && ig.ignores(rel),
  };
}

/** Go's `filepath.Match` for one path component, as a RegExp. */
export function componentPattern(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < glob.length) re += escapeRe(glob[++i]!);
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) throw new Error(`syntax error in pattern "${glob}"`);
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith("^")) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * A source path as written, cleaned: relative to the context, without `./`
 * or a leading `/`. Refuses a path that leaves the context.
 */
export function cleanSource(source: string): string {
  const parts: string[] = [];
  for (const p of source.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) {
        throw new Error(`"${source}": forbidden path outside the build context`);
      }
      parts.pop();
    } else parts.push(p);
  }
  return parts.join("/");
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/**
 * The context entries `source` names: one path, or the matches of its
 * wildcards, in name order; ignored paths are not there. Throws Docker's
 * "not found" when nothing matches.
 */
export function resolveSource(ctx: BuildContext, source: string): ContextEntry[] {
  const rel = cleanSource(source);
  if (!/[*?[\\]/.test(rel)) {
    const info = lstatOrNull(`${ctx.dir}/${rel}`);
    if (info === null || ctx.ignored(rel)) {
      throw new Error(`"${source}" not found in the build context (or excluded by .dockerignore)`);
    }
    return [{ rel, info }];
  }
  let found: string[] = [""];
  for (const part of rel.split("/")) {
    const re = componentPattern(part);
    const next: string[] = [];
    for (const base of found) {
      let names: string[];
      try {
        names = [...Deno.readDirSync(`${ctx.dir}/${base}`)].map((e) => e.name).sort();
      } catch {
        continue;
      }
      for (const n of names) if (re.test(n)) next.push(base === "" ? n : `${base}/${n}`);
    }
    found = next;
  }
  const out = found.filter((r) => !ctx.ignored(r)).map((r) => ({
    rel: r,
    info: Deno.lstatSync(`${ctx.dir}/${r}`),
  }));
  if (out.length === 0) {
    throw new Error(`no source files were specified: "${source}" matches nothing in the context`);
  }
  return out;
}

/**
 * Everything under directory `rel` that .dockerignore leaves (a directory's
 * content, for COPY), parents before children, in name order.
 */
export function walkContext(ctx: BuildContext, rel: string): ContextEntry[] {
  const out: ContextEntry[] = [];
  const visit = (dir: string) => {
    const names = [...Deno.readDirSync(`${ctx.dir}/${dir}`)].map((e) => e.name).sort();
    for (const n of names) {
      const r = dir === "" ? n : `${dir}/${n}`;
      const info = Deno.lstatSync(`${ctx.dir}/${r}`);
      // An excluded directory may still hold re-included paths (`!dir/keep`).
      if (!ctx.ignored(r)) out.push({ rel: r, info });
      if (info.isDirectory) visit(r);
    }
  };
  visit(rel);
  return out;
}

/**
 * A hash of what COPY would read: each entry's path, type, permission
 * bits, link target and content (not times or owners, which COPY does not
 * keep, as Docker's cache ignores them). Equal hashes mean an equal layer.
 */
export function hashEntries(ctx: BuildContext, entries: readonly ContextEntry[]): string {
  const h = createHash("sha256");
  for (const e of entries) {
    const path = `${ctx.dir}/${e.rel}`;
    const type = e.info.isSymlink ? "l" : e.info.isDirectory ? "d" : "f";
    h.update(`${type} ${(e.info.mode ?? 0) & 0o7777} ${e.rel}\0`);
    if (e.info.isSymlink) h.update(Deno.readLinkSync(path));
    else if (e.info.isFile) h.update(Deno.readFileSync(path));
    h.update("\0");
  }
  return `sha256:${h.digest("hex")}`;
}
