/**
 * The container process's environment, built the way `docker run` builds it:
 * the image config's `Env`, the `--env-file` files, the `-e/--env` flags and
 * the defaults the engine adds (`PATH`, `HOSTNAME`, `TERM` with a TTY, and
 * `HOME` from the user's passwd entry).
 *
 * Precedence follows Docker: `-e` beats `--env-file`, which beats the image;
 * later beats earlier within each. The listing order follows Docker too, so
 * `env` inside a trun container prints what it prints under Docker:
 * `PATH`, `HOSTNAME`, `TERM`, then the user's variables (env files, then
 * flags), then the image's variables the user did not set, then `HOME` if
 * nothing set it. A name keeps the position where it first appeared.
 */

/** `PATH` when neither the image nor the user sets one (Docker's `DefaultPathEnv` on Linux). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A `--env-file` argument: its name for messages and its text. */
export interface EnvFile {
  /** Path as the user gave it, used in error messages. */
  name: string;
  /** File contents, decoded as UTF-8. */
  text: string;
}

/** Everything that contributes to the container's environment. */
export interface EnvironmentInput {
  /** The image config's `Env` (`NAME=VALUE` entries). */
  imageEnv: readonly string[];
  /** `--env-file` files, in command-line order. */
  envFiles: readonly EnvFile[];
  /** `-e/--env` values (`NAME=VALUE` or `NAME`), in command-line order. */
  envFlags: readonly string[];
  /** trun's own environment, for `-e NAME` and bare `NAME` lines in env files. */
  hostEnv: Readonly<Record<string, string | undefined>>;
  /** The container's hostname, for `HOSTNAME`. */
  hostname: string;
  /** The user's home directory (see `resolveUser`), for `HOME`. */
  home: string;
  /** Whether the container gets a terminal (`-t`), which adds `TERM=xterm`. */
  tty: boolean;
}

/** Splits `NAME=VALUE` at the first "="; `value` is `undefined` when there is no "=". */
function splitEntry(entry: string): { name: string; value: string | undefined } {
  const eq = entry.indexOf("=");
  return eq < 0
    ? { name: entry, value: undefined }
    : { name: entry.slice(0, eq), value: entry.slice(eq + 1) };
}

/**
 * Parses an `--env-file` like the Docker CLI (`opts.ParseEnvFile`): one
 * `NAME=VALUE` per line, the value taken verbatim (no quote removal, no
 * trimming, no `$` expansion); a line with just `NAME` takes the value from
 * `hostEnv` and is left out when `hostEnv` lacks it; blank lines and lines
 * starting with `#` are ignored; leading whitespace is trimmed; CRLF line
 * ends and a UTF-8 byte-order mark are accepted. Returns `NAME=VALUE`
 * entries in file order.
 *
 * Throws, naming the file and line, when a line has no name (`=x`) or the
 * name contains a space or tab (`FOO =bar` is a mistake Docker rejects too,
 * rather than defining a variable called "FOO ").
 */
export function parseEnvFile(
  text: string,
  fileName: string,
  hostEnv: Readonly<Record<string, string | undefined>>,
): string[] {
  const out: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] ?? "";
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (i === 0 && line.startsWith("\uFEFF")) line = line.slice(1);
    line = line.trimStart();
    if (line === "" || line.startsWith("#")) continue;

    const where = `in env file "${fileName}" line ${i + 1}`;
    const { name, value } = splitEntry(line);
    if (name === "") {
      throw new Error(`No variable name ${where}: "${line}"; use NAME=VALUE`);
    }
    if (/[ \t]/.test(name)) {
      throw new Error(
        `Invalid variable name "${name}" ${where}: names cannot contain spaces or tabs`,
      );
    }
    if (value !== undefined) {
      out.push(line);
    } else {
      const fromHost = hostEnv[name];
      if (fromHost !== undefined) out.push(`${name}=${fromHost}`);
    }
  }
  return out;
}

/**
 * Builds the container's environment as a `NAME=VALUE` list for execve(2)
 * (see the module comment for order and precedence).
 *
 * `-e NAME` without "=" copies `NAME` from `hostEnv`; when trun's
 * environment lacks it the variable is unset in the container, hiding an
 * image or env-file value, which is what Docker's daemon does with such an
 * entry. `HOME` is added only when nothing set it, so `-e HOME=` keeps an
 * empty value. Image entries without "=" carry no value and are ignored.
 *
 * Throws for a `-e` value with an empty name, for an unreadable env file
 * line (see `parseEnvFile`), and for a NUL byte anywhere, which execve(2)
 * cannot pass.
 */
export function buildEnvironment(input: EnvironmentInput): string[] {
  // The user's entries, with `null` for "unset this name". A Map keeps the
  // position where a name first appeared when a later entry replaces it.
  const user = new Map<string, string | null>();
  for (const file of input.envFiles) {
    for (const entry of parseEnvFile(file.text, file.name, input.hostEnv)) {
      const { name, value } = splitEntry(entry);
      user.set(name, value ?? "");
    }
  }
  for (const flag of input.envFlags) {
    const { name, value } = splitEntry(flag);
    if (name === "") {
      throw new Error(`Invalid environment variable "${flag}": the name is empty; use NAME=VALUE`);
    }
    user.set(name, value ?? input.hostEnv[name] ?? null);
  }

  const env = new Map<string, string | null>();
  env.set("PATH", DEFAULT_PATH);
  env.set("HOSTNAME", input.hostname);
  if (input.tty) env.set("TERM", "xterm");
  for (const [name, value] of user) env.set(name, value);
  for (const entry of input.imageEnv) {
    const { name, value } = splitEntry(entry);
    if (value === undefined || name === "" || user.has(name)) continue;
    env.set(name, value);
  }
  // runc sets HOME from the passwd entry when the environment lacks it; an
  // unset (null) HOME is re-added at the end, where runc's setenv puts it.
  if ((env.get("HOME") ?? null) === null) {
    env.delete("HOME");
    env.set("HOME", input.home);
  }

  const out: string[] = [];
  for (const [name, value] of env) {
    if (value === null) continue;
    const entry = `${name}=${value}`;
    if (entry.includes("\0")) {
      throw new Error(
        `Environment variable "${name}" contains a NUL byte, which cannot be passed to a process; remove it`,
      );
    }
    out.push(entry);
  }
  return out;
}

/**
 * The value of `name` in a `NAME=VALUE` list, or `undefined` when absent.
 * The first match wins, as getenv(3) does on a list with duplicates.
 */
export function envLookup(env: readonly string[], name: string): string | undefined {
  const prefix = `${name}=`;
  for (const entry of env) {
    if (entry.startsWith(prefix)) return entry.slice(prefix.length);
  }
  return undefined;
}
