/**
 * trun's version and the versions of what it runs on, for `trun version`
 * and `trun info` (the fields of docker-version(1)'s client section).
 *
 * The version is a TypeScript constant, not read from deno.json: the single
 * binary must never read files of the source tree. Keep it equal to
 * deno.json's "version" when releasing.
 */

/** trun's release version (semver). */
export const VERSION = "0.1.0";

/** What `trun version --format json` prints. */
export interface VersionInfo {
  /** trun's version. */
  version: string;
  /** The Deno runtime's version. */
  deno: string;
  /** V8's version. */
  v8: string;
  /** The TypeScript version Deno bundles. */
  typescript: string;
  /** `linux`. */
  os: string;
  /** Go-style architecture name, as Docker prints it: `amd64`, `arm64`. */
  arch: string;
  /** Whether this is a `deno compile` single binary. */
  standalone: boolean;
}

/** Docker names architectures as Go does; Deno as Rust targets do. */
const GO_ARCH: Readonly<Record<string, string>> = { "x86_64": "amd64", "aarch64": "arm64" };

/** The versions of trun and its runtime. */
export function versionInfo(): VersionInfo {
  return {
    version: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: Deno.build.os,
    arch: GO_ARCH[Deno.build.arch] ?? Deno.build.arch,
    standalone: Deno.build.standalone === true,
  };
}

/** The text `trun version` prints, aligned as docker-version(1) does. */
export function versionText(info: VersionInfo = versionInfo()): string {
  return [
    `trun version ${info.version}`,
    ` Deno:         ${info.deno}`,
    ` V8:           ${info.v8}`,
    ` TypeScript:   ${info.typescript}`,
    ` OS/Arch:      ${info.os}/${info.arch}`,
    ` Binary:       ${info.standalone ? "single binary (deno compile)" : "deno run"}`,
  ].join("\n");
}
