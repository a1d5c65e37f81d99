/**
 * `--security-opt`: Docker's and Podman's options, parsed into what the
 * spec needs. `seccomp=PATH` only names the file here; the CLI reads it.
 */

/** The parsed options (absent fields: not given). */
export interface SecurityOptions {
  /** `no-new-privileges[=true|false]`. */
  noNewPrivileges?: boolean;
  /** `mask=/a:/b`: more masked paths. */
  mask: string[];
  /** `unmask=/a:/b` (patterns with `*`) or `ALL`: default masked or read-only paths to leave. */
  unmask: string[];
  /** `seccomp=unconfined` or `seccomp=PATH`. */
  seccomp?: { kind: "unconfined" } | { kind: "file"; path: string };
}

function boolValue(opt: string, value: string): boolean {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new Error(`invalid --security-opt "${opt}": the value must be true or false`);
}

function pathList(opt: string, value: string, allowAll: boolean): string[] {
  if (allowAll && value === "ALL") return ["ALL"];
  const paths = value.split(":");
  for (const p of paths) {
    if (!p.startsWith("/")) {
      throw new Error(`invalid --security-opt "${opt}": "${p}" is not an absolute path`);
    }
  }
  return paths;
}

/**
 * Parses every `--security-opt` value, later ones winning. Accepts Docker's
 * legacy `key:value` spelling too. Refuses what trun cannot do (SELinux
 * labels, AppArmor profiles) rather than ignoring it.
 */
export function parseSecurityOpts(list: readonly string[]): SecurityOptions {
  const out: SecurityOptions = { mask: [], unmask: [] };
  for (const opt of list) {
    if (opt === "no-new-privileges") {
      out.noNewPrivileges = true;
      continue;
    }
    const sep = opt.search(/[=:]/);
    if (sep < 0) throw new Error(`invalid --security-opt 1: "${opt}"`);
    const key = opt.slice(0, sep);
    const value = opt.slice(sep + 1);
    switch (key) {
      case "no-new-privileges":
        out.noNewPrivileges = boolValue(opt, value);
        break;
      case "mask":
        out.mask.push(...pathList(opt, value, false));
        break;
      case "unmask":
        out.unmask.push(...pathList(opt, value, true));
        break;
      case "systempaths":
        // Docker's spelling of "no masked or read-only paths".
        if (value !== "unconfined") {
          throw new Error(
            `invalid --security-opt "${opt}": systempaths=unconfined is the only supported value`,
          );
        }
        out.unmask.push("ALL");
        break;
      case "seccomp":
        if (value === "") throw new Error(`invalid --security-opt "${opt}": no profile given`);
        out.seccomp = value === "unconfined"
          ? { kind: "unconfined" }
          : { kind: "file", path: value };
        break;
      case "apparmor":
        // As Podman on a host without AppArmor: unconfined is what it gets.
        if (value !== "unconfined") {
          throw new Error(
            `invalid --security-opt "${opt}": trun does not load AppArmor profiles; ` +
              "only apparmor=unconfined is accepted",
          );
        }
        break;
      case "label":
        // Disabling labels is what a runtime without SELinux does anyway.
        if (value !== "disable") {
          throw new Error(
            `invalid --security-opt "${opt}": trun does not support SELinux labels; ` +
              "only label=disable is accepted",
          );
        }
        break;
      default:
        throw new Error(`invalid --security-opt 2: "${opt}"`);
    }
  }
  return out;
}

/** Whether `path` matches `pattern`, where `*` is any run of characters but `/`, as a shell glob. */
function globMatch(pattern: string, path: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\?]/g, "\\$&").replace(/\*/g, "[^/]*");
  return new RegExp(`^${re}$`).test(path);
}

/**
 * The masked and read-only paths: the defaults less `unmask` (ALL, a path
 * or a glob), with `mask` added; `--privileged` starts from none.
 */
export function maskedAndReadonlyPaths(
  defaults: { masked: readonly string[]; readonly: readonly string[] },
  opts: { mask?: readonly string[]; unmask?: readonly string[]; privileged?: boolean },
): { masked: string[]; readonly: string[] } {
  const unmask = opts.unmask ?? [];
  const keep = (p: string) =>
    !opts.privileged && !unmask.includes("ALL") && !unmask.some((u) => globMatch(u, p));
  const masked = defaults.masked.filter(keep);
  for (const p of opts.mask ?? []) if (!masked.includes(p)) masked.push(p);
  return { masked, readonly: defaults.readonly.filter(keep) };
}
