/**
 * How trun starts itself again (for helpers that must run inside a user
 * namespace): the single compiled binary is `Deno.execPath()` itself; under
 * `deno run` it is `deno run -A <main module>`. The one place that knows the
 * difference.
 */

/** argv (absolute program first) that runs trun with `args`. */
export function selfCommand(args: string[]): string[] {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  // A compiled trun's execPath is trun itself; only the deno CLI needs the
  // script named again.
  if (base !== "deno") return [exe, ...args];
  const main = new URL(Deno.mainModule);
  if (main.protocol !== "file:") throw new Error(`cannot re-run trun from "${Deno.mainModule}"`);
  return [exe, "run", "-A", "--quiet", "--no-prompt", decodeURIComponent(main.pathname), ...args];
}
