/**
 * Build stages of a Dockerfile: the ARGs before the first FROM, one stage
 * per FROM with its name, and which stages a target needs (its base chain,
 * `COPY --from` and `RUN --mount from=`), so that only those are built, as
 * BuildKit does.
 */
import {
  type Dockerfile,
  DockerfileError,
  flagValue,
  flagValues,
  type Instruction,
} from "./dockerfile.ts";
import { expandWord, expandWords, type VariableLookup } from "./shell_word.ts";

/** One `FROM` and the instructions up to the next. */
export interface Stage {
  /** Position among the stages (0-based), which `--from=N` names. */
  index: number;
  /** `AS name`, lower-cased, if given. */
  name?: string;
  /** The FROM instruction. */
  from: Instruction;
  /** The base as written: an image reference, `scratch` or an earlier stage's name. */
  base: string;
  /** `FROM --platform=`, as written. */
  platform?: string;
  /** Instructions after FROM. */
  instructions: Instruction[];
}

/** A Dockerfile split into stages. */
export interface StagedDockerfile {
  /** ARG instructions before the first FROM (usable in FROM lines). */
  metaArgs: Instruction[];
  /** The stages in order. */
  stages: Stage[];
  /** The escape character (for word processing). */
  escape: string;
}

const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/;

/** Splits a Dockerfile into stages; only ARG may come before the first FROM. */
export function splitStages(
  df: Dockerfile,
  buildArgs: Record<string, string> = {},
): StagedDockerfile {
  const escape = df.directives.escape;
  const metaArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of df.instructions) {
    if (ins.keyword === "from") {
      stages.push(readFrom(ins, stages.length, metaArgs, buildArgs, escape, stages));
    } else if (stages.length === 0) {
      if (ins.keyword !== "arg") {
        throw new DockerfileError(
          ins.line,
          `${ins.keyword.toUpperCase()}: no build stage in current context: ` +
            "a Dockerfile starts with FROM (only ARG may come before it)",
        );
      }
      metaArgs.push(ins);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  if (stages.length === 0) {
    throw new DockerfileError(0, "file with no instructions: a Dockerfile needs a FROM");
  }
  return { metaArgs, stages, escape };
}

/** ARG's declarations: `NAME` or `NAME=default`, several per line. */
export function argDeclarations(
  ins: Instruction,
  escape: string,
  lookup: VariableLookup,
): { name: string; value?: string }[] {
  const words = splitKeyValueWords(ins.args);
  if (words.length === 0) throw new DockerfileError(ins.line, "ARG requires at least one argument");
  return words.map((w) => {
    const eq = w.indexOf("=");
    if (eq === 0) throw new DockerfileError(ins.line, `ARG names can not be blank: "${w}"`);
    if (eq < 0) return { name: w };
    return { name: w.slice(0, eq), value: expandWord(w.slice(eq + 1), lookup, escape) };
  });
}

/**
 * Words of `KEY=VALUE` lists (ENV, LABEL, ARG) split on whitespace outside
 * quotes, quotes kept for the later expansion.
 */
export function splitKeyValueWords(s: string): string[] {
  return s.match(/(?:"(?:\\[\s\S]|[^"\\])*"|'[^']*'|\\[\s\S]|[^\s"'\\])+/g) ?? [];
}

/** The meta ARGs' values: defaults, overridden by `--build-arg`. */
export function metaArgValues(
  staged: Pick<StagedDockerfile, "metaArgs" | "escape">,
  buildArgs: Record<string, string>,
): Map<string, string | undefined> {
  const values = new Map<string, string | undefined>();
  const lookup = (n: string) => values.get(n);
  for (const ins of staged.metaArgs) {
    for (const d of argDeclarations(ins, staged.escape, lookup)) {
      values.set(d.name, Object.hasOwn(buildArgs, d.name) ? buildArgs[d.name] : d.value);
    }
  }
  return values;
}

function readFrom(
  ins: Instruction,
  index: number,
  metaArgs: Instruction[],
  buildArgs: Record<string, string>,
  escape: string,
  earlier: Stage[],
): Stage {
  const meta = metaArgValues({ metaArgs, escape }, buildArgs);
  const words = expandWords(ins.args, (n) => meta.get(n), escape);
  const usage = "FROM requires either one or three arguments: FROM IMAGE [AS NAME]";
  if (words.length !== 1 && words.length !== 3) throw new DockerfileError(ins.line, usage);
  if (words.length === 3 && words[1]!.toLowerCase() !== "as") {
    throw new DockerfileError(ins.line, usage);
  }
  const stage: Stage = { index, from: ins, base: words[0]!, instructions: [] };
  if (stage.base === "") {
    throw new DockerfileError(ins.line, "FROM: the base image name is empty");
  }
  if (words.length === 3) {
    const name = words[2]!.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      throw new DockerfileError(
        ins.line,
        `invalid name for build stage: "${words[2]}", name can't start with a number or ` +
          "contain symbols",
      );
    }
    if (earlier.some((s) => s.name === name)) {
      throw new DockerfileError(ins.line, `duplicate name for build stage: "${name}"`);
    }
    stage.name = name;
  }
  const platform = flagValue(ins, "platform");
  if (platform) stage.platform = expandWord(platform, (n) => meta.get(n), escape);
  return stage;
}

/**
 * The stage `ref` names: an `AS` name (any case) or an index. Undefined when
 * none, which for `--from` means an image.
 */
export function findStage(stages: Stage[], ref: string, before = stages.length): Stage | undefined {
  const lower = ref.toLowerCase();
  const named = stages.slice(0, before).find((s) => s.name === lower);
  if (named) return named;
  if (/^\d+$/.test(ref)) {
    const n = Number(ref);
    return n < before ? stages[n] : undefined;
  }
  return undefined;
}

/** The stage `--target` names; the last one without a target. */
export function targetStage(staged: StagedDockerfile, target?: string): Stage {
  if (target === undefined || target === "") return staged.stages.at(-1)!;
  const s = staged.stages.find((s) => s.name === target.toLowerCase());
  if (!s) throw new DockerfileError(0, `target stage "${target}" could not be found`);
  return s;
}

/**
 * The stages `target` needs, in Dockerfile order: its base if that is a
 * stage, the stages its `COPY --from`/`ADD --from` and `RUN --mount from=`
 * name, and theirs in turn. `--from` values are expanded with the meta ARGs.
 */
export function requiredStages(
  staged: StagedDockerfile,
  target: Stage,
  buildArgs: Record<string, string>,
): Stage[] {
  const meta = metaArgValues(staged, buildArgs);
  const lookup = (n: string) => buildArgs[n] ?? meta.get(n);
  const need = new Set<number>();
  const visit = (s: Stage) => {
    if (need.has(s.index)) return;
    need.add(s.index);
    const base = findStage(staged.stages, s.base, s.index);
    if (base) visit(base);
    for (const ins of s.instructions) {
      for (const ref of stageReferences(ins, staged.escape, lookup)) {
        const dep = findStage(staged.stages, ref, s.index);
        if (dep) visit(dep);
        else if (findStage(staged.stages, ref)) {
          throw new DockerfileError(
            ins.line,
            `${ins.keyword.toUpperCase()}: stage "${ref}" is defined after this stage ` +
              "and cannot be used here",
          );
        }
      }
    }
  };
  visit(target);
  return staged.stages.filter((s) => need.has(s.index));
}

/** The `--from` of COPY/ADD and the `from=` of RUN's mounts. */
function stageReferences(ins: Instruction, escape: string, lookup: VariableLookup): string[] {
  const refs: string[] = [];
  if (ins.keyword === "copy" || ins.keyword === "add") {
    const from = flagValue(ins, "from");
    if (from) refs.push(expandWord(from, lookup, escape));
  }
  if (ins.keyword === "run") {
    for (const mount of flagValues(ins, "mount")) {
      for (const field of expandWord(mount, lookup, escape).split(",")) {
        const [k, v] = field.split("=", 2);
        if (k === "from" && v) refs.push(v);
      }
    }
  }
  return refs;
}
