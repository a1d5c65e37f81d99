/** Lexical path arithmetic shared by the spec writer and the engine's spec reader. */

/**
 * Normalises an absolute path lexically: collapses `//`, `.` and `..` (never
 * above `/`) and drops a trailing `/`. Unlike `@std/path`'s `normalize`, the
 * result is always absolute and never ends in `/`, which is what mount
 * targets and spec paths are compared as.
 */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return "/" + out.join("/");
}
