/**
 * What the container runs and where: the argv from the image's
 * `Entrypoint`/`Cmd` and the `--entrypoint` flag and arguments (the rules of
 * moby's `merge` and `mergeAndVerifyConfig`), the paths execve(2) should try
 * for argv[0] (the search execvp(3) does, which the child program performs
 * as a list of execve calls because it cannot run libc code), and the
 * working directory.
 */

/** The inputs that decide the container's argv. */
export interface CommandInput {
  /** The image config's `Entrypoint`, if any. */
  imageEntrypoint?: readonly string[] | undefined;
  /** The image config's `Cmd`, if any. */
  imageCmd?: readonly string[] | undefined;
  /** `--entrypoint`, when given; "" resets the image's entrypoint. */
  entrypointFlag?: string | undefined;
  /** The arguments after the image name. */
  args: readonly string[];
}

/**
 * The `PATH` execvp(3) searches when the variable is unset: glibc's
 * `confstr(_CS_PATH)`. trun always sets `PATH` unless the user unsets it.
 */
export const EXECVP_DEFAULT_PATH = "/bin:/usr/bin";

/**
 * The container's argv, as Docker computes it:
 *
 * - without `--entrypoint`: the image's entrypoint, followed by the
 *   arguments, or by the image's `Cmd` when there are none;
 * - with `--entrypoint X`: `X` followed by the arguments; the image's `Cmd`
 *   is dropped because it was written for the image's entrypoint;
 * - `--entrypoint ""` clears the entrypoint and also drops the image's `Cmd`,
 *   so the arguments alone are the command;
 * - an image whose entrypoint is `[""]` is treated as having none.
 *
 * `--entrypoint` is one program name, not split on spaces (as in Docker).
 * Throws `No command specified` when the result is empty.
 */
export function resolveCommand(input: CommandInput): string[] {
  let entrypoint: readonly string[] = input.entrypointFlag === undefined
    ? []
    : [input.entrypointFlag];
  let cmd: readonly string[] = input.args;
  if (entrypoint.length === 0) {
    if (cmd.length === 0) cmd = input.imageCmd ?? [];
    entrypoint = input.imageEntrypoint ?? [];
  }
  if (entrypoint.length === 1 && entrypoint[0] === "") entrypoint = [];

  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    const why = input.entrypointFlag === ""
      ? `--entrypoint "" also clears the image's command`
      : "the image has no Entrypoint or Cmd";
    throw new Error(`No command specified: ${why}; give a command after the image name`);
  }
  return argv;
}

/**
 * The paths execve(2) should try, in order, to run `argv0`, as execvp(3)
 * searches them:
 *
 * - `argv0` containing "/" is returned as the only candidate, unchanged;
 * - otherwise each `PATH` entry joined with `argv0`, where an empty entry
 *   (leading, trailing or doubled ":") means the current directory and
 *   gives `./argv0`; duplicates are dropped since a second try cannot
 *   succeed where the first failed;
 * - `pathValue` undefined (no `PATH` at all) searches `EXECVP_DEFAULT_PATH`;
 * - an empty `argv0` gives no candidates: the caller reports "not found".
 *
 * A candidate not starting with "/" is relative to the working directory,
 * which is where execve resolves it once the child has chdir'd. Deciding
 * which errors move on to the next candidate (ENOENT, ENOTDIR, EACCES…) is
 * the executor's job.
 */
export function executableCandidates(argv0: string, pathValue: string | undefined): string[] {
  if (argv0 === "") return [];
  if (argv0.includes("/")) return [argv0];
  const candidates: string[] = [];
  for (const entry of (pathValue ?? EXECVP_DEFAULT_PATH).split(":")) {
    const dir = entry === "" ? "." : entry;
    const candidate = dir.endsWith("/") ? `${dir}${argv0}` : `${dir}/${argv0}`;
    if (!candidates.includes(candidate)) candidates.push(candidate);
  }
  return candidates;
}

/** Lexically cleans an absolute path, like Go's `path.Clean`: no ".", "..", "//" or trailing "/". */
function cleanAbsolute(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/**
 * The container's working directory: `-w/--workdir` when given, else the
 * image's `WorkingDir`, else "/"; cleaned ("/a/./b/" → "/a/b").
 *
 * `-w` must be absolute: Docker refuses a relative one, since it would be
 * relative to nothing the user can see. A relative image `WorkingDir` is
 * taken from "/" as Docker's daemon does (`filepath.Join("/", dir)`), because
 * an image the user did not write should still run. An empty flag counts as
 * not given.
 */
export function resolveWorkdir(flag?: string, imageWorkdir?: string): string {
  if (flag !== undefined && flag !== "") {
    if (!flag.startsWith("/")) {
      throw new Error(
        `Invalid working directory "${flag}": it must be an absolute path, such as "/${flag}"`,
      );
    }
    return cleanAbsolute(flag);
  }
  if (imageWorkdir !== undefined && imageWorkdir !== "") return cleanAbsolute(imageWorkdir);
  return "/";
}
