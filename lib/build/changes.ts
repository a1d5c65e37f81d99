/**
 * `--change`/`-c` of `trun commit` and `trun import`: Dockerfile
 * instructions applied to an image config, with the same rules as `trun
 * build` applies them (Docker allows CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
 * ONBUILD, USER, VOLUME, WORKDIR and STOPSIGNAL; trun also HEALTHCHECK and
 * SHELL, as Podman does).
 */
import { DockerfileError, parseDockerfile } from "./dockerfile.ts";
import { evaluateStage } from "./evaluate.ts";
import { splitStages } from "./stages.ts";
import type { ImageRuntimeConfig } from "../oci/manifest.ts";

/** The instructions a change may be. */
export const CHANGE_INSTRUCTIONS = new Set([
  "cmd",
  "entrypoint",
  "env",
  "expose",
  "healthcheck",
  "label",
  "onbuild",
  "shell",
  "stopsignal",
  "user",
  "volume",
  "workdir",
]);

/** `config` with `changes` applied in order. Throws a message that names the bad change. */
export function applyChanges(
  config: ImageRuntimeConfig,
  changes: readonly string[],
): ImageRuntimeConfig {
  let out = config;
  for (const change of changes) {
    const bad = (why: string) => new Error(`invalid --change "${change}": ${why}`);
    if (/[\r\n]/.test(change)) throw bad("a change is one line");
    try {
      const df = parseDockerfile(`FROM scratch\n${change}`);
      const ins = df.instructions[1];
      if (ins === undefined) throw bad("it is empty");
      if (!CHANGE_INSTRUCTIONS.has(ins.keyword)) {
        throw bad(`${ins.keyword.toUpperCase()} is not a valid change command`);
      }
      const staged = splitStages(df);
      out = evaluateStage({
        stage: staged.stages[0]!,
        stages: staged.stages,
        base: out,
        meta: new Map(),
        buildArgs: {},
        escape: staged.escape,
      }).config;
    } catch (e) {
      if (!(e instanceof DockerfileError)) throw e;
      throw bad(e.message.replace(/^Dockerfile:\d*:? ?/, ""));
    }
  }
  return out;
}
