/**
 * Per-registry settings from `$XDG_CONFIG_HOME/trun/registries.json`: pull
 * mirrors and insecure (plain HTTP) registries. Like Docker,
 * a registry on a loopback address (`localhost`, `127.0.0.0/8`, `::1`) may
 * use plain HTTP without being listed; every other registry must be named
 * here. The file is small and optional: a missing file means "no settings".
 *
 * ```json
 * {
 *   "registries": {
 *     "docker.io": { "mirrors": ["https://mirror.example.com"] },
 *     "build.internal:5000": { "insecure": true }
 *   },
 *   "insecureRegistries": ["10.0.0.0/8", "legacy.internal"]
 * }
 * ```
 */

import { configRoot } from "../paths.ts";
import { normalizeRegistry, registryApiHost } from "../oci/reference.ts";

/** Settings for one registry. */
export interface RegistrySettings {
  /** Base URLs tried before the registry itself for pulls (`https://host[:port]`; a bare host means https). */
  mirrors: string[];
  /** Allow falling back to plain HTTP for this registry (TLS, when used, is still verified). */
  insecure: boolean;
}

/** All registry settings. */
export interface RegistriesConfig {
  /** Settings keyed by normalised registry name (`docker.io`, `host:5000`). */
  registries: Record<string, RegistrySettings>;
  /** Extra insecure registries: names (`host`, `host:port`) or IPv4 CIDR ranges. */
  insecureRegistries: string[];
}

/** One base URL to talk to for a registry, in the order they should be tried. */
export interface RegistryEndpoint {
  /** Base URL without trailing slash, e.g. `https://registry-1.docker.io`. */
  url: string;
  /** True for a pull mirror (a mirror that fails falls through to the next endpoint). */
  mirror: boolean;
  /** True when plain HTTP is acceptable for this endpoint. */
  insecure: boolean;
}

/** The empty configuration. */
export function emptyRegistriesConfig(): RegistriesConfig {
  return { registries: {}, insecureRegistries: [] };
}

/** Where the settings live: `<configRoot>/registries.json`. */
export function registriesConfigPath(): string {
  return `${configRoot()}/registries.json`;
}

/** Parses and checks the JSON text of a registries file; `source` (the path) appears in messages. */
export function parseRegistriesConfig(text: string, source: string): RegistriesConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `Cannot read registry settings "${source}": invalid JSON (${
        (e as Error).message
      }); fix or remove the file`,
    );
  }
  const bad = (field: string, want: string): never => {
    throw new Error(
      `Cannot read registry settings "${source}": "${field}" must be ${want}; fix the file`,
    );
  };
  if (!isObject(doc)) bad("the top level", "a JSON object");
  const top = doc as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (key !== "registries" && key !== "insecureRegistries") {
      throw new Error(
        `Cannot read registry settings "${source}": unknown key "${key}" (known: "registries", "insecureRegistries")`,
      );
    }
  }
  const config = emptyRegistriesConfig();
  if (top.registries !== undefined) {
    if (!isObject(top.registries)) bad("registries", "an object keyed by registry name");
    for (const [name, raw] of Object.entries(top.registries as Record<string, unknown>)) {
      const field = `registries.${name}`;
      if (!isObject(raw)) bad(field, "an object");
      const entry = raw as Record<string, unknown>;
      for (const key of Object.keys(entry)) {
        if (key !== "mirrors" && key !== "insecure") {
          throw new Error(
            `Cannot read registry settings "${source}": unknown key "${field}.${key}" (known: "mirrors", "insecure")`,
          );
        }
      }
      const mirrors = entry.mirrors ?? [];
      if (!Array.isArray(mirrors) || !mirrors.every((m) => typeof m === "string")) {
        bad(`${field}.mirrors`, "a list of URLs");
      }
      for (const m of mirrors as string[]) {
        if (mirrorUrl(m) === undefined) {
          bad(`${field}.mirrors`, `a list of http(s) URLs, not "${m}"`);
        }
      }
      const insecure = entry.insecure ?? false;
      if (typeof insecure !== "boolean") bad(`${field}.insecure`, "true or false");
      config.registries[normalizeRegistry(name)] = {
        mirrors: (mirrors as string[]).map((m) => mirrorUrl(m)!),
        insecure: insecure as boolean,
      };
    }
  }
  if (top.insecureRegistries !== undefined) {
    const list = top.insecureRegistries;
    if (!Array.isArray(list) || !list.every((m) => typeof m === "string")) {
      bad("insecureRegistries", "a list of registry names or CIDR ranges");
    }
    for (const entry of list as string[]) {
      if (entry.includes("/") && parseCidr(entry) === undefined) {
        bad("insecureRegistries", `a list of names or IPv4 CIDR ranges, and "${entry}" is neither`);
      }
    }
    config.insecureRegistries = (list as string[]).map((s) => s.toLowerCase());
  }
  return config;
}

/** Reads the settings file; a missing file gives the empty configuration. */
export async function loadRegistriesConfig(
  path: string = registriesConfigPath(),
): Promise<RegistriesConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return emptyRegistriesConfig();
    throw new Error(`Cannot read registry settings "${path}": ${(e as Error).message}`);
  }
  return parseRegistriesConfig(text, path);
}

/**
 * True when plain HTTP is allowed for a registry host (with optional port):
 * loopback addresses always, others only when the settings say so.
 */
export function isInsecureRegistry(config: RegistriesConfig, registry: string): boolean {
  const host = normalizeRegistry(registry);
  if (config.registries[host]?.insecure) return true;
  const bare = hostWithoutPort(host);
  if (isLoopback(bare)) return true;
  for (const entry of config.insecureRegistries) {
    if (entry === host || entry === bare) return true;
    const cidr = entry.includes("/") ? parseCidr(entry) : undefined;
    const ip = parseIpv4(bare);
    if (cidr !== undefined && ip !== undefined && (ip & cidr.mask) === (cidr.base & cidr.mask)) {
      return true;
    }
  }
  return false;
}

/**
 * The base URLs to try for a registry, best first: its mirrors (for pulls
 * only), then the registry itself over HTTPS, then, if it is insecure, over
 * plain HTTP (Docker's order: try TLS first, fall back).
 */
export function registryEndpoints(
  config: RegistriesConfig,
  registry: string,
  purpose: "pull" | "push",
): RegistryEndpoint[] {
  const name = normalizeRegistry(registry);
  const out: RegistryEndpoint[] = [];
  if (purpose === "pull") {
    for (const m of config.registries[name]?.mirrors ?? []) {
      const host = new URL(m).host;
      const insecure = m.startsWith("http:") || isInsecureRegistry(config, host);
      out.push({ url: m, mirror: true, insecure });
    }
  }
  const host = registryApiHost(name);
  const insecure = isInsecureRegistry(config, name);
  out.push({ url: `https://${host}`, mirror: false, insecure });
  if (insecure) out.push({ url: `http://${host}`, mirror: false, insecure });
  return out;
}

function mirrorUrl(s: string): string | undefined {
  const withScheme = /^[a-z]+:\/\//i.test(s) ? s : `https://${s}`;
  try {
    const u = new URL(withScheme);
    if (u.protocol !== "https:" && u.protocol !== "http:") return undefined;
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  const ip = parseIpv4(host);
  return ip !== undefined && ip >>> 24 === 127;
}

function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((acc, p) => (acc * 256 + p) >>> 0, 0);
}

function parseCidr(s: string): { base: number; mask: number } | undefined {
  const [addr = "", bits = ""] = s.split("/", 2);
  const base = parseIpv4(addr);
  const n = Number(bits);
  if (base === undefined || !/^\d{1,2}$/.test(bits) || n > 32) return undefined;
  return { base, mask: n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0 };
}
