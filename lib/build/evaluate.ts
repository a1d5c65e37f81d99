/**
 * What one build stage does, worked out before anything runs: each
 * instruction with its variables substituted (ENV before ARG, as Docker
 * gives them), the image config after each step, and the steps that need a
 * container (RUN) or files (COPY, ADD, WORKDIR). ENV and ARG values cannot
 * change while a build runs, so this is a pure function of the Dockerfile,
 * the base image's config and the build arguments.
 */
import { DockerfileError, flagValue, flagValues, type Instruction } from "./dockerfile.ts";
import { expandWord, expandWords, type VariableLookup } from "./shell_word.ts";
import { argDeclarations, findStage, splitKeyValueWords, type Stage } from "./stages.ts";
import type { HealthConfig, ImageRuntimeConfig } from "../oci/manifest.ts";
import { posix } from "node:path";

/** The shell of shell-form instructions when neither image nor SHELL sets one. */
export const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** ARGs every build has without declaring them (excluded from history, as Docker does). */
export const PROXY_ARGS = new Set([
  "HTTP_PROXY",
  "http_proxy",
  "HTTPS_PROXY",
  "https_proxy",
  "FTP_PROXY",
  "ftp_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
]);

/** A RUN, ready for the executor. */
export interface RunStep {
  kind: "run";
  /** The image config once this step is done (set by evaluateStage). */
  config?: ImageRuntimeConfig;
  /** The instruction. */
  ins: Instruction;
  /** The command: exec form, or the shell with the command (here-documents inline). */
  argv: string[];
  /** The environment: the config's, then the ARGs in scope that ENV does not set. */
  env: string[];
  /** The ARGs in scope, `NAME=value`, for the history line (`|2 A=1 B=2 /bin/sh -c …`). */
  args: string[];
  /** `--mount` values, variables substituted. */
  mounts: string[];
  /** `--network`: `default`, `none` or `host`. */
  network?: string;
  /** The config's working directory and user when it runs. */
  workdir: string;
  /** `user[:group]`, empty for root. */
  user: string;
}

/** A COPY or ADD, ready for the executor. */
export interface CopyStep {
  kind: "copy";
  /** The image config once this step is done (set by evaluateStage). */
  config?: ImageRuntimeConfig;
  /** The instruction. */
  ins: Instruction;
  /** ADD (archives unpacked, URLs) rather than COPY. */
  add: boolean;
  /** Sources, variables substituted; `<<NAME` for a here-document. */
  sources: string[];
  /** The destination, made absolute against the working directory. */
  dest: string;
  /** The destination as written ends in `/` (a directory). */
  destIsDir: boolean;
  /** `--from`: a stage's index or an image reference. */
  from?: { stage: number } | { image: string };
  /** `--chown`, substituted. */
  chown?: string;
  /** `--chmod`, substituted (octal). */
  chmod?: string;
  /** `--link`. */
  link: boolean;
  /** `--exclude` patterns. */
  exclude: string[];
  /** The here-documents, their content substituted unless the delimiter was quoted. */
  heredocs: { name: string; content: string }[];
}

/** A WORKDIR: the directory is made if missing. */
export interface WorkdirStep {
  kind: "workdir";
  /** The image config once this step is done (set by evaluateStage). */
  config?: ImageRuntimeConfig;
  /** The instruction. */
  ins: Instruction;
  /** The absolute path. */
  path: string;
  /** The config's user then (the directory's owner, as BuildKit). */
  user: string;
}

/** An instruction that only changes the config. */
export interface ConfigStep {
  kind: "config";
  /** The image config once this step is done (set by evaluateStage). */
  config?: ImageRuntimeConfig;
  /** The instruction. */
  ins: Instruction;
}

/** One step of a stage. */
export type Step = RunStep | CopyStep | WorkdirStep | ConfigStep;

/** A stage worked out. */
export interface EvaluatedStage {
  /** Its steps in order. */
  steps: Step[];
  /** The image config after the last step. */
  config: ImageRuntimeConfig;
  /** `MAINTAINER`, if any. */
  author?: string;
  /** Names of the ARGs it declared (for the "not consumed" warning). */
  declaredArgs: Set<string>;
}

/** The inputs of {@link evaluateStage}. */
export interface EvaluateInput {
  /** The stage. */
  stage: Stage;
  /** Every stage (for `--from`). */
  stages: Stage[];
  /** The base's runtime config (an image's, or the earlier stage's result). */
  base: ImageRuntimeConfig;
  /** The meta ARGs' values (a stage's `ARG NAME` without a value takes the meta value). */
  meta: Map<string, string | undefined>;
  /** `--build-arg`s. */
  buildArgs: Record<string, string>;
  /** ARGs the builder defines (TARGETPLATFORM, TARGETOS, TARGETARCH…): used once declared. */
  automaticArgs?: Record<string, string>;
  /** The escape character. */
  escape: string;
}

const ALLOWED_FLAGS: Record<string, string[]> = {
  run: ["mount", "network", "security"],
  copy: ["from", "chown", "chmod", "link", "exclude", "parents"],
  add: ["chown", "chmod", "link", "exclude", "checksum", "keep-git-dir"],
  healthcheck: ["interval", "timeout", "start-period", "start-interval", "retries"],
  from: ["platform"],
};

/** Works out one stage. Throws {@link DockerfileError} naming the line. */
export function evaluateStage(input: EvaluateInput): EvaluatedStage {
  const { stage, escape, buildArgs } = input;
  const config: ImageRuntimeConfig = structuredClone(input.base);
  const args = new Map<string, string | undefined>();
  const declaredArgs = new Set<string>();
  const steps: Step[] = [];
  let author: string | undefined;
  let cmdSetHere = false;
  const envValue = (name: string) => {
    const entry = (config.Env ?? []).find((e) => e.startsWith(`${name}=`));
    return entry?.slice(name.length + 1);
  };
  // ENV wins over ARG (Docker's rule), and undeclared build args are not seen.
  const lookup: VariableLookup = (name) => envValue(name) ?? args.get(name);
  const word = (s: string) => expandWord(s, lookup, escape);
  for (const ins of stage.instructions) {
    checkFlags(ins);
    const at = <T>(f: () => T): T => withLine(ins, f);
    switch (ins.keyword) {
      case "arg":
        at(() => {
          for (const d of argDeclarations(ins, escape, lookup)) {
            declaredArgs.add(d.name);
            const value = Object.hasOwn(buildArgs, d.name)
              ? buildArgs[d.name]
              : d.value ?? input.meta.get(d.name) ?? input.automaticArgs?.[d.name];
            args.set(d.name, value);
          }
        });
        steps.push({ kind: "config", ins });
        break;
      case "env":
      case "label": {
        const pairs = at(() => keyValues(ins, escape, lookup));
        if (ins.keyword === "env") {
          for (const [k, v] of pairs) config.Env = setEnv(config.Env ?? [], k, v);
        } else {
          config.Labels = { ...config.Labels, ...Object.fromEntries(pairs) };
        }
        steps.push({ kind: "config", ins });
        break;
      }
      case "workdir": {
        const dir = at(() => word(required(ins)));
        config.WorkingDir = posix.resolve(config.WorkingDir || "/", dir);
        steps.push({ kind: "workdir", ins, path: config.WorkingDir, user: config.User ?? "" });
        break;
      }
      case "user":
        config.User = at(() => word(required(ins)));
        steps.push({ kind: "config", ins });
        break;
      case "cmd":
      case "entrypoint": {
        const argv = ins.json ?? [...(config.Shell ?? DEFAULT_SHELL), required(ins)];
        if (ins.keyword === "cmd") {
          config.Cmd = argv;
          cmdSetHere = true;
        } else {
          config.Entrypoint = argv;
          // An inherited CMD does not fit a new ENTRYPOINT (Docker resets it).
          if (!cmdSetHere) config.Cmd = null;
        }
        steps.push({ kind: "config", ins });
        break;
      }
      case "shell":
        if (ins.json === null || ins.json.length === 0) {
          throw new DockerfileError(ins.line, "SHELL requires the arguments to be in JSON form");
        }
        config.Shell = ins.json;
        steps.push({ kind: "config", ins });
        break;
      case "expose": {
        const ports = at(() => expandWords(required(ins), lookup, escape));
        const exposed = { ...config.ExposedPorts };
        for (const p of ports) for (const key of exposedPorts(p, ins.line)) exposed[key] = {};
        config.ExposedPorts = exposed;
        steps.push({ kind: "config", ins });
        break;
      }
      case "volume": {
        const paths = at(() =>
          ins.json ? ins.json.map(word) : expandWords(required(ins), lookup, escape)
        );
        if (paths.length === 0 || paths.some((p) => p === "")) {
          throw new DockerfileError(ins.line, "VOLUME specified can not be an empty string");
        }
        config.Volumes = { ...config.Volumes, ...Object.fromEntries(paths.map((p) => [p, {}])) };
        steps.push({ kind: "config", ins });
        break;
      }
      case "stopsignal":
        config.StopSignal = at(() => word(required(ins)));
        steps.push({ kind: "config", ins });
        break;
      case "healthcheck":
        config.Healthcheck = at(() => healthcheck(ins));
        steps.push({ kind: "config", ins });
        break;
      case "onbuild":
        config.OnBuild = [...(config.OnBuild ?? []), ins.trigger!.original];
        steps.push({ kind: "config", ins });
        break;
      case "maintainer":
        author = required(ins);
        steps.push({ kind: "config", ins });
        break;
      case "run":
        steps.push(at(() => runStep(ins, config, args, lookup, escape)));
        break;
      case "copy":
      case "add":
        steps.push(at(() => copyStep(ins, input, config, lookup)));
        break;
      default:
        throw new DockerfileError(ins.line, `${ins.keyword.toUpperCase()} is not allowed here`);
    }
    steps.at(-1)!.config = structuredClone(config);
  }
  return { steps, config, ...(author !== undefined ? { author } : {}), declaredArgs };
}

/** Runs `f`, turning word errors into errors that name the line and instruction. */
function withLine<T>(ins: Instruction, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DockerfileError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    const name = ins.keyword.toUpperCase();
    throw new DockerfileError(
      ins.line,
      message.startsWith(`${name} `) ? message : `${name}: ${message}`,
    );
  }
}

function checkFlags(ins: Instruction): void {
  const allowed = ALLOWED_FLAGS[ins.keyword] ?? [];
  for (const f of ins.flags) {
    if (!allowed.includes(f.name)) {
      throw new DockerfileError(
        ins.line,
        `${ins.keyword.toUpperCase()}: unknown flag: --${f.name}`,
      );
    }
  }
}

function required(ins: Instruction): string {
  if (ins.args === "") {
    throw new DockerfileError(
      ins.line,
      `${ins.keyword.toUpperCase()} requires at least one argument`,
    );
  }
  return ins.args;
}

/** ENV/LABEL pairs: `K=V …`, or the legacy `ENV K V` with one pair. */
function keyValues(
  ins: Instruction,
  escape: string,
  lookup: VariableLookup,
): [string, string][] {
  const words = splitKeyValueWords(required(ins));
  const name = ins.keyword.toUpperCase();
  if (!words[0]!.includes("=")) {
    // The legacy form: the first word is the key, the rest of the line the value.
    const key = words[0]!;
    const value = ins.args.slice(ins.args.indexOf(key) + key.length).trim();
    if (value === "") {
      throw new DockerfileError(ins.line, `${name} must have two arguments`);
    }
    return [[key, expandWord(value, lookup, escape)]];
  }
  // All values see the variables as they were before this instruction.
  return words.map((w) => {
    const eq = w.indexOf("=");
    if (eq < 0) {
      throw new DockerfileError(
        ins.line,
        `Syntax error - can't find = in "${w}". Must be of the form: name=value`,
      );
    }
    const key = expandWord(w.slice(0, eq), lookup, escape);
    if (key === "") throw new DockerfileError(ins.line, `${name} names can not be blank`);
    return [key, expandWord(w.slice(eq + 1), lookup, escape)];
  });
}

/** `env` with `key` set to `value`, in place when present. */
export function setEnv(env: string[], key: string, value: string): string[] {
  const i = env.findIndex((e) => e.startsWith(`${key}=`));
  const out = [...env];
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** EXPOSE's keys: `80` → `80/tcp`; ranges expand. */
function exposedPorts(spec: string, line: number): string[] {
  const m = spec.match(/^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i);
  if (!m) throw new DockerfileError(line, `EXPOSE: invalid port "${spec}"`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || hi < lo) {
    throw new DockerfileError(line, `EXPOSE: invalid port range "${spec}"`);
  }
  const proto = (m[3] ?? "tcp").toLowerCase();
  return Array.from({ length: hi - lo + 1 }, (_, i) => `${lo + i}/${proto}`);
}

/** Go duration strings (`30s`, `1m30s`, `500ms`) in nanoseconds. */
export function parseDuration(s: string): number {
  const units: Record<string, number> = {
    ns: 1,
    us: 1e3,
    "µs": 1e3,
    ms: 1e6,
    s: 1e9,
    m: 60e9,
    h: 3600e9,
  };
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * units[m[2]!]!;
    end = m.index! + m[0].length;
  }
  if (s === "" || end !== s.length) throw new Error(`invalid duration "${s}"`);
  return Math.round(total);
}

function healthcheck(ins: Instruction): HealthConfig {
  const text = required(ins);
  const [first] = text.split(/\s+/, 1);
  if (first!.toUpperCase() === "NONE") {
    if (text.trim().toUpperCase() !== "NONE" || ins.flags.length > 0) {
      throw new Error("HEALTHCHECK NONE takes no other arguments");
    }
    return { Test: ["NONE"] };
  }
  if (first!.toUpperCase() !== "CMD") {
    throw new Error(`unknown type "${first}" in HEALTHCHECK (try CMD)`);
  }
  const rest = text.slice(first!.length).trim();
  if (rest === "") throw new Error("HEALTHCHECK CMD requires a command");
  let json: string[] | null = null;
  try {
    const v: unknown = JSON.parse(rest);
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) json = v as string[];
  } catch {
    // The shell form.
  }
  const health: HealthConfig = { Test: json ? ["CMD", ...json] : ["CMD-SHELL", rest] };
  const durations = [
    ["interval", "Interval"],
    ["timeout", "Timeout"],
    ["start-period", "StartPeriod"],
    ["start-interval", "StartInterval"],
  ] as const;
  for (const [flag, field] of durations) {
    const v = flagValue(ins, flag);
    if (v === undefined || v === null) continue;
    const ns = parseDuration(v);
    if (ns !== 0 && ns < 1e6) throw new Error(`--${flag} cannot be less than 1ms`);
    health[field] = ns;
  }
  const retries = flagValue(ins, "retries");
  if (retries !== undefined && retries !== null) {
    if (!/^\d+$/.test(retries) || Number(retries) < 1) {
      throw new Error(`--retries must be at least 1, not "${retries}"`);
    }
    health.Retries = Number(retries);
  }
  return health;
}

function runStep(
  ins: Instruction,
  config: ImageRuntimeConfig,
  args: Map<string, string | undefined>,
  lookup: VariableLookup,
  escape: string,
): RunStep {
  const shell = config.Shell ?? DEFAULT_SHELL;
  let argv: string[];
  if (ins.json !== null) {
    if (ins.json.length === 0) throw new Error("RUN requires at least one argument");
    argv = ins.json;
  } else if (ins.heredocs.length === 1 && /^\d*<<-?['"]?[^\s]+$/.test(required(ins))) {
    // `RUN <<EOF` alone: the document is the script.
    argv = [...shell, ins.heredocs[0]!.content];
  } else {
    // Here-documents go to the shell as written; it does the substitution
    // (none for a quoted delimiter), as BuildKit hands them over.
    const docs = ins.heredocs.map((h) => `${h.content}${h.name}\n`).join("");
    argv = [...shell, docs === "" ? required(ins) : `${ins.args}\n${docs}`];
  }
  const env = config.Env ?? [];
  const inScope = [...args].filter(([, v]) => v !== undefined) as [string, string][];
  const fromArgs = inScope
    .filter(([k]) => !env.some((e) => e.startsWith(`${k}=`)))
    .map(([k, v]) => `${k}=${v}`);
  const network = flagValue(ins, "network");
  if (network !== undefined && !["default", "none", "host"].includes(network ?? "")) {
    throw new Error(`unsupported --network "${network}": use default, none or host`);
  }
  return {
    kind: "run",
    ins,
    argv,
    env: [...env, ...fromArgs],
    args: inScope.filter(([k]) => !PROXY_ARGS.has(k)).map(([k, v]) => `${k}=${v}`),
    mounts: flagValues(ins, "mount").map((m) => expandWord(m, lookup, escape)),
    ...(network ? { network } : {}),
    workdir: config.WorkingDir || "/",
    user: config.User ?? "",
  };
}

function copyStep(
  ins: Instruction,
  input: EvaluateInput,
  config: ImageRuntimeConfig,
  lookup: VariableLookup,
): CopyStep {
  const escape = input.escape;
  const word = (s: string) => expandWord(s, lookup, escape);
  const name = ins.keyword.toUpperCase();
  const words = ins.json ? ins.json.map(word) : expandWords(required(ins), lookup, escape);
  if (words.length < 2) {
    throw new Error(
      `${name} requires at least two arguments, but only one was provided. ` +
        "Destination could not be determined",
    );
  }
  const rawDest = words.at(-1)!;
  const heredocs = ins.heredocs.map((h) => ({
    name: h.name,
    content: h.expand ? word(h.content) : h.content,
  }));
  const sources = words.slice(0, -1).map((s) => {
    const h = s.match(/^\d*<<-?(.+)$/);
    return h && heredocs.some((d) => d.name === h[1]) ? `<<${h[1]}` : s;
  });
  const destIsDir = rawDest.endsWith("/") || rawDest.endsWith("/.");
  const dest = posix.resolve(config.WorkingDir || "/", rawDest);
  const step: CopyStep = {
    kind: "copy",
    ins,
    add: ins.keyword === "add",
    sources,
    dest,
    destIsDir,
    link: flagValue(ins, "link") !== undefined && flagValue(ins, "link") !== "false",
    exclude: flagValues(ins, "exclude").map(word),
    heredocs,
  };
  if (sources.length > 1 && !destIsDir) {
    throw new Error(
      `When using ${name} with more than one source file, the destination must be a directory and end with a /`,
    );
  }
  const chown = flagValue(ins, "chown");
  if (chown) step.chown = word(chown);
  const chmod = flagValue(ins, "chmod");
  if (chmod) {
    step.chmod = word(chmod);
    if (!/^[0-7]{3,4}$/.test(step.chmod)) {
      throw new Error(`invalid --chmod "${step.chmod}": only octal modes (0755) are supported`);
    }
  }
  const from = flagValue(ins, "from");
  if (from) {
    const ref = word(from);
    const s = findStage(input.stages, ref, input.stage.index);
    step.from = s ? { stage: s.index } : { image: ref };
  }
  return step;
}
