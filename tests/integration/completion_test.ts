// `trun completion`: the scripts run in their shells. bash is driven as
// readline would (COMP_WORDS/COMP_CWORD, then the completion function,
// then COMPREPLY), without the bash-completion package; zsh's candidate
// function is called with words/CURRENT set (compadd exists only inside a
// completion widget); fish answers `complete -C`. Live names come from a
// real trun (a running container) or from a stand-in trun printing image
// names (ids and `a:b` words, which bash splits at ':'); a trun without
// `volume` leaves completion quiet.
import assert from "node:assert/strict";
import {
  findTool,
  hostCapabilities,
  MAIN_TS,
  requires,
  sandboxProcessesGone,
  type TrunSandbox,
  trunSandbox,
} from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const scripts = requires(caps);
const live = requires(caps, "userns", "busybox");
const zsh = await findTool("zsh");
const fish = await findTool("fish");

/** Runs `shell args` with `env`; its stdout, failing on a non-zero status or any stderr. */
async function shell(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stderr, "");
  return new TextDecoder().decode(out.stdout);
}

/**
 * A directory with `trun` in it: the real one (through deno, with the
 * sandbox's environment) or a stand-in printing two images and a dangling
 * one, and failing for anything else (no volumes, no containers).
 */
async function trunBin(dir: string, kind: "real" | "images"): Promise<string> {
  const bin = `${dir}/bin-${kind}`;
  await Deno.mkdir(bin);
  const body = kind === "real"
    ? `exec '${Deno.execPath()}' run -A --quiet '${MAIN_TS}' "$@"`
    : `[ "$1" = images ] || { echo "trun: no" >&2; exit 125; }
printf '%s\\n' busybox:latest localhost:5000/app:1.0 '<none>:<none>'`;
  await Deno.writeTextFile(`${bin}/trun`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return bin;
}

/** Writes `trun completion SHELL` into the sandbox; returns its path. */
async function writeScript(sb: TrunSandbox, shell: "bash" | "zsh" | "fish"): Promise<string> {
  const gen = await sb.run(["completion", shell]);
  assert.equal(gen.code, 0, gen.stderr);
  const script = `${sb.dir}/trun.${shell}`;
  await Deno.writeTextFile(script, gen.stdout);
  return script;
}

/**
 * Runs `fn` with container `name` (a detached sleep) running and a PATH
 * whose `trun` is the real one on the sandbox; removes the container after.
 */
async function withContainer(
  sb: TrunSandbox,
  name: string,
  fn: (env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const rootfs = await busyboxRootfs();
  const r = await sb.run(["run", "-d", "--name", name, "--rootfs", rootfs, "sleep", "1000"]);
  assert.equal(r.code, 0, r.stderr);
  try {
    await fn({ ...sb.env, PATH: `${await trunBin(sb.dir, "real")}:/usr/bin:/bin` });
  } finally {
    await sb.run(["rm", "-f", name]);
    await sandboxProcessesGone(sb);
  }
}

/** The lines of a bash session that completes each line of `lines` (words split at spaces). */
function bashSession(script: string, lines: string[][]): string {
  const q = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`;
  return [
    `source ${q(script)}`,
    // Completes the words given: the last one is where the cursor is.
    't() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _trun; echo "$*|${COMPREPLY[*]}"; }',
    ...lines.map((words) => `t ${words.map(q).join(" ")}`),
  ].join("\n");
}

/** `line|candidates` output as a map from the typed line to its candidates. */
function answers(out: string): Map<string, string[]> {
  return new Map(
    out.trimEnd().split("\n").map((l) => {
      const [line, cands = ""] = l.split("|");
      return [line!, cands.split(" ").filter((c) => c !== "")];
    }),
  );
}

Deno.test({
  name: `completion: bash completes commands, flags, flag values and live names${live.suffix}`,
  ignore: live.ignore,
  fn: async () => {
    await using sb = await trunSandbox();
    const script = await writeScript(sb, "bash");
    await withContainer(sb, "tab-web", async (env) => {
      const got = answers(
        await shell("bash", [
          "-c",
          bashSession(script, [
            ["trun", "st"],
            ["trun", "-"],
            ["trun", "container", "l"],
            ["trun", "image", "r"],
            ["trun", "run", "--na"],
            ["trun", "run", "--name", ""],
            ["trun", "run", "--name", "-"],
            ["trun", "run", "-e", ""],
            ["trun", "run", "-it", "--rm", "img", "--na"],
            ["trun", "logs", ""],
            ["trun", "logs", "--tail", ""],
            ["trun", "logs", "--tail", "5", "-f", "tab"],
            ["trun", "container", "stop", "tab-web", ""],
            ["trun", "rename", "tab-web", ""],
            ["trun", "top", ""],
            ["trun", "diff", ""],
            ["trun", "container", "export", "-o", "x.tar", ""],
            ["trun", "exec", "-i", ""],
            ["trun", "completion", ""],
            ["trun", "frob", ""],
          ]),
        ], env),
      );
      assert.deepEqual(got.get("trun st")?.toSorted(), ["start", "stats", "stop"]);
      assert.deepEqual(got.get("trun -"), ["--help", "--version"]);
      assert.deepEqual(got.get("trun container l"), ["list", "logs", "ls"]);
      assert.deepEqual(got.get("trun image r"), ["remove", "rm"]);
      assert.deepEqual(got.get("trun run --na"), ["--name"]);
      // A flag's value: nothing from trun (bash's own file completion), never a flag.
      assert.deepEqual(got.get("trun run --name "), []);
      assert.deepEqual(got.get("trun run --name -"), []);
      assert.deepEqual(got.get("trun run -e "), []);
      // run's flags end at the image: what follows is the container's.
      assert.deepEqual(got.get("trun run -it --rm img --na"), []);
      for (
        const line of [
          "trun logs ",
          "trun container stop tab-web ",
          "trun top ",
          "trun exec -i ",
          "trun diff ",
          "trun container export -o x.tar ",
        ]
      ) {
        assert.deepEqual(got.get(line), ["tab-web"], line);
      }
      assert.deepEqual(got.get("trun logs --tail "), []);
      assert.deepEqual(got.get("trun logs --tail 5 -f tab"), ["tab-web"]);
      assert.deepEqual(got.get("trun rename tab-web "), []);
      assert.deepEqual(got.get("trun completion "), ["bash", "zsh", "fish"]);
      assert.deepEqual(got.get("trun frob "), []);
    });
  },
});

Deno.test({
  name: `completion: bash image names across ':' and a trun without volumes${scripts.suffix}`,
  ignore: scripts.ignore,
  fn: async () => {
    await using sb = await trunSandbox();
    const script = await writeScript(sb, "bash");
    const env = { PATH: `${await trunBin(sb.dir, "images")}:/usr/bin:/bin` };
    // bash cuts words at ':' (COMP_WORDBREAKS): `busybox:la` is three words.
    const got = answers(
      await shell("bash", [
        "-c",
        bashSession(script, [
          ["trun", "rmi", ""],
          ["trun", "rmi", "busybox", ":", "la"],
          ["trun", "tag", "localhost", ":", "5000/app", ":", ""],
          ["trun", "run", "--rm", "-e", "A=1", "b"],
          ["trun", "history", "x"],
          ["trun", "logs", ""],
        ]) + '\n__trun_names volume; echo "volumes: $?"',
      ], env),
    );
    assert.deepEqual(got.get("trun rmi "), ["busybox:latest", "localhost:5000/app:1.0"]);
    // Only what follows the last ':' is replaced by bash.
    assert.deepEqual(got.get("trun rmi busybox : la"), ["latest"]);
    assert.deepEqual(got.get("trun tag localhost : 5000/app : "), ["1.0"]);
    assert.deepEqual(got.get("trun run --rm -e A=1 b"), ["busybox:latest"]);
    assert.deepEqual(got.get("trun history x"), []);
    // A trun that cannot list (here: containers, volumes) says nothing.
    assert.deepEqual(got.get("trun logs "), []);
    assert.deepEqual(got.get("volumes: 0"), []);
  },
});

Deno.test({
  name: `completion: zsh accepts its script and offers commands, flags and live names${
    zsh ? live.suffix : " (skipped: zsh not installed)"
  }`,
  ignore: live.ignore || zsh === null,
  fn: async () => {
    await using sb = await trunSandbox();
    const script = await writeScript(sb, "zsh");
    await shell(zsh!, ["-n", script], {});
    await withContainer(sb, "tab-zsh", async (env) => {
      const lines = [
        ["trun", "st"],
        ["trun", "container", ""],
        ["trun", "logs", "-"],
        ["trun", "run", "--name", ""],
        ["trun", "logs", "-f", ""],
        ["trun", "completion", ""],
      ];
      const out = await shell(zsh!, [
        "-f",
        "-c",
        [
          // compdef comes with compinit, which a test shell does not run.
          "compdef() { : }",
          `source '${script}'`,
          't() { words=("$@"); CURRENT=$#; local -a __trun_reply; local __trun_kind; __trun_candidates; print -r -- "$*|$__trun_kind|${(j:,:)__trun_reply}"; }',
          ...lines.map((w) => `t ${w.map((x) => `'${x}'`).join(" ")}`),
        ].join("\n"),
      ], env);
      const got = new Map(
        out.trimEnd().split("\n").map((l) => {
          const [line, kind, cands] = l.split("|");
          return [line!, { kind, cands: cands!.split(",").filter((c) => c !== "") }];
        }),
      );
      const words = (line: string) => got.get(line)!.cands.map((c) => c.split(":")[0]);
      // zsh's _describe filters by the typed prefix: every command is offered.
      assert.equal(got.get("trun st")!.kind, "described");
      assert.ok(words("trun st").includes("start") && words("trun st").includes("stop"));
      assert.ok(
        got.get("trun st")!.cands.includes("top:Display the running processes of a container"),
      );
      assert.ok(words("trun container ").includes("top"));
      assert.ok(!words("trun container ").includes("run"));
      assert.ok(words("trun logs -").includes("--follow") && words("trun logs -").includes("-f"));
      assert.deepEqual(got.get("trun run --name "), { kind: "files", cands: [] });
      assert.deepEqual(got.get("trun logs -f "), { kind: "plain", cands: ["tab-zsh"] });
      assert.deepEqual(got.get("trun completion "), {
        kind: "plain",
        cands: ["bash", "zsh", "fish"],
      });
    });
  },
});

Deno.test({
  name: `completion: fish accepts its script and completes commands, flags and live names${
    fish ? live.suffix : " (skipped: fish not installed)"
  }`,
  ignore: live.ignore || fish === null,
  fn: async () => {
    await using sb = await trunSandbox();
    const script = await writeScript(sb, "fish");
    await shell(fish!, ["-n", script], {});
    await withContainer(sb, "tab-fish", async (real) => {
      const env = {
        ...real,
        HOME: sb.dir,
        XDG_CONFIG_HOME: `${sb.dir}/config-home`,
        XDG_DATA_HOME: `${sb.dir}/data-home`,
      };
      const lines = [
        "trun st",
        "trun image l",
        "trun run --na",
        "trun run --name -",
        "trun logs -f ",
        "trun logs --tail -",
        "trun completion ",
      ];
      const out = await shell(fish!, [
        "--no-config",
        "-c",
        [
          `source '${script}'`,
          ...lines.map((l) =>
            `set -l c (complete -C'${l}' | string replace -r '\\t.*' '' | string join ,); echo '${l}|'"$c"`
          ),
        ].join("\n"),
      ], env);
      const got = new Map(
        out.trimEnd().split("\n").map((l) => {
          const [line, cands = ""] = l.split("|");
          return [line!, cands.split(",").filter((c) => c !== "")];
        }),
      );
      assert.deepEqual(got.get("trun st")?.toSorted(), ["start", "stats", "stop"]);
      assert.deepEqual(got.get("trun image l"), ["list", "load", "ls"]);
      assert.deepEqual(got.get("trun run --na"), ["--name"]);
      // A flag's value is never completed as a flag.
      assert.deepEqual(got.get("trun run --name -"), []);
      assert.deepEqual(got.get("trun logs --tail -"), []);
      assert.deepEqual(got.get("trun logs -f "), ["tab-fish"]);
      assert.deepEqual(got.get("trun completion "), ["bash", "fish", "zsh"]);
    });
  },
});
