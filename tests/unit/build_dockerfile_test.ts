/**
 * Unit tests for trun build's front end: lib/build/shell_word.ts (Docker's
 * word processing), lib/build/dockerfile.ts (the parser), lib/build/stages.ts
 * (stages and which ones a target needs) and lib/build/evaluate.ts (a stage's
 * steps and config).
 */

import assert from "node:assert/strict";
import { expandWord, expandWords } from "../../lib/build/shell_word.ts";
import { DockerfileError, parseDockerfile } from "../../lib/build/dockerfile.ts";
import { metaArgValues, requiredStages, splitStages, targetStage } from "../../lib/build/stages.ts";
import {
  type CopyStep,
  evaluateStage,
  parseDuration,
  type RunStep,
} from "../../lib/build/evaluate.ts";
import type { ImageRuntimeConfig } from "../../lib/oci/manifest.ts";

const vars: Record<string, string> = { A: "a", EMPTY: "", SP: "x y", HOME: "/root" };
const look = (n: string) => vars[n];

Deno.test("expandWord() substitutes, removes quotes and keeps escaped characters", () => {
  const cases: [string, string][] = [
    ["$A", "a"],
    ["${A}b", "ab"],
    ["pre-$A-post", "pre-a-post"],
    ["$UNSET", ""],
    ["${UNSET:-def}", "def"],
    ["${EMPTY:-def}", "def"],
    ["${EMPTY-def}", ""],
    ["${UNSET-def}", "def"],
    ["${A:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET:-$A$A}", "aa"],
    ["'$A'", "$A"],
    ['"$A b"', "a b"],
    ['"\\$A"', "$A"],
    ['"a\\nb"', "a\\nb"],
    ["\\$A", "$A"],
    ["a\\ b", "a b"],
    ["$", "$"],
    ["$1x", "$1x"],
    ["x\\", "x\\"],
    ["a b", "a b"],
  ];
  for (const [input, want] of cases) assert.equal(expandWord(input, look), want, input);
  assert.equal(expandWord("`$A", look, "`"), "$A", "the backtick escape");
  assert.equal(expandWord("C:\\dir", look, "`"), "C:\\dir", "\\ is plain with the backtick");
});

Deno.test("expandWord() names what is wrong with a bad word", () => {
  assert.throws(() => expandWord("'open", look), /matching single-quote/);
  assert.throws(() => expandWord('"open', look), /matching double-quote/);
  assert.throws(() => expandWord("${A", look), /missing "}"/);
  assert.throws(() => expandWord("${}", look), /bad substitution/);
  assert.throws(() => expandWord("${A%x}", look), /unsupported modifier/);
  assert.throws(() => expandWord("${UNSET:?must be set}", look), /UNSET: must be set/);
  assert.equal(expandWord("${A:?x}", look), "a");
});

Deno.test("expandWords() splits on unquoted whitespace, and unquoted values split too", () => {
  assert.deepEqual(expandWords("a  b\tc", look), ["a", "b", "c"]);
  assert.deepEqual(expandWords('"a b" c', look), ["a b", "c"]);
  assert.deepEqual(expandWords("$SP z", look), ["x", "y", "z"]);
  assert.deepEqual(expandWords('"$SP" z', look), ["x y", "z"]);
  assert.deepEqual(expandWords("$EMPTY z", look), ["z"], "an empty unquoted value is no word");
  assert.deepEqual(expandWords('"" z', look), ["", "z"], "an empty quoted word stays");
  assert.deepEqual(expandWords("pre$SP", look), ["prex", "y"]);
});

Deno.test("parseDockerfile() reads directives, comments, continuations and keeps line numbers", () => {
  const df = parseDockerfile(
    [
      "# syntax=docker/dockerfile:1",
      "# escape=`",
      "",
      "# a comment",
      "FROM busybox AS base",
      "RUN echo one `",
      "  # a comment inside",
      "  two",
      "",
      "ENV A=1 `",
      "",
      "    B=2",
    ].join("\n"),
  );
  assert.equal(df.directives.escape, "`");
  assert.equal(df.directives.syntax, "docker/dockerfile:1");
  assert.deepEqual(df.instructions.map((i) => [i.keyword, i.line, i.endLine]), [
    ["from", 5, 5],
    ["run", 6, 8],
    ["env", 10, 12],
  ]);
  assert.equal(df.instructions[1]!.args, "echo one   two");
  assert.deepEqual(df.warnings, ["Dockerfile:11: empty continuation line"]);
});

Deno.test("parseDockerfile() stops reading directives at the first other line", () => {
  const df = parseDockerfile("# unknown=1\n# escape=`\nFROM x\nRUN a \\\n b\n");
  assert.equal(df.directives.escape, "\\", "a directive after an unknown one is a comment");
  assert.equal(df.instructions[1]!.args, "a  b");
  assert.throws(
    () => parseDockerfile("# escape=\\\n# escape=`\nFROM x"),
    /Dockerfile:2: only one escape parser directive can be used/,
  );
  assert.throws(() => parseDockerfile("# escape=x\nFROM x"), /invalid escape token 'x'/);
});

Deno.test("parseDockerfile() reads flags, the JSON form and the shell form", () => {
  const df = parseDockerfile(
    [
      "FROM --platform=$P alpine",
      'COPY --from=build --chown="1:2" ["a b", "/dst/"]',
      "RUN --mount=type=cache,target=/c --network=none make all",
      'CMD ["sh", "-c", "x"]',
      "CMD [not json",
      "ENTRYPOINT -- run",
    ].join("\n"),
  );
  const [from, copy, run, cmd, bad, ep] = df.instructions;
  assert.deepEqual(from!.flags, [{ name: "platform", value: "$P" }]);
  assert.deepEqual(copy!.flags, [{ name: "from", value: "build" }, {
    name: "chown",
    value: '"1:2"',
  }]);
  assert.deepEqual(copy!.json, ["a b", "/dst/"]);
  assert.deepEqual(run!.flags.map((f) => f.name), ["mount", "network"]);
  assert.equal(run!.args, "make all");
  assert.deepEqual(cmd!.json, ["sh", "-c", "x"]);
  assert.equal(bad!.json, null);
  assert.equal(bad!.args, "[not json");
  assert.equal(ep!.args, "run");
});

Deno.test("parseDockerfile() reads here-documents: plain, quoted, <<- and several on a line", () => {
  const df = parseDockerfile(
    [
      "FROM x",
      "RUN <<EOF",
      "echo $HOME",
      "EOF",
      "COPY <<-'A' <<B /dst/",
      "\tkept $X",
      "\tA",
      "b",
      "B",
      "RUN cat 3<<X >/f",
      "x",
      "X",
      "ENV Y=<<notdoc",
    ].join("\n"),
  );
  const [, run, copy, run2, env] = df.instructions;
  assert.deepEqual(run!.heredocs, [{
    name: "EOF",
    content: "echo $HOME\n",
    expand: true,
    chomp: false,
  }]);
  assert.equal(run!.endLine, 4);
  assert.deepEqual(copy!.heredocs.map((h) => [h.name, h.content, h.expand, h.chomp]), [
    ["A", "kept $X\n", false, true],
    ["B", "b\n", true, false],
  ]);
  assert.equal(run2!.heredocs[0]!.fd, 3);
  assert.deepEqual(env!.heredocs, [], "only RUN, COPY and ADD take here-documents");
  assert.throws(() => parseDockerfile("FROM x\nRUN <<EOF\nno end"), /Dockerfile:2: unterminated/);
});

Deno.test("parseDockerfile() refuses unknown instructions and bad ONBUILD triggers", () => {
  assert.throws(() => parseDockerfile("FROM x\nRUNN y"), /Dockerfile:2: unknown instruction: RUNN/);
  assert.throws(
    () => parseDockerfile("FROM x\nONBUILD FROM y"),
    /FROM isn't allowed as an ONBUILD trigger/,
  );
  const df = parseDockerfile("from x\nonbuild run echo hi");
  assert.equal(df.instructions[1]!.trigger!.keyword, "run");
  assert.equal(df.instructions[1]!.trigger!.original, "run echo hi");
});

Deno.test("splitStages(): meta ARGs in FROM, names, and only ARG before FROM", () => {
  const df = parseDockerfile(
    "ARG BASE=alpine\nARG TAG\nFROM $BASE:${TAG:-3} AS Build\nRUN x\nFROM scratch\nCOPY --from=build /a /",
  );
  const staged = splitStages(df, { TAG: "3.19" });
  assert.deepEqual(staged.stages.map((s) => [s.base, s.name]), [
    ["alpine:3.19", "build"],
    ["scratch", undefined],
  ]);
  assert.equal(splitStages(df).stages[0]!.base, "alpine:3");
  assert.deepEqual(
    [...metaArgValues(staged, { TAG: "1" })],
    [["BASE", "alpine"], ["TAG", "1"]],
  );
  assert.throws(() => splitStages(parseDockerfile("RUN x\nFROM y")), /no build stage/);
  assert.throws(() => splitStages(parseDockerfile("FROM a b")), /one or three arguments/);
  assert.throws(() => splitStages(parseDockerfile("FROM a AS 1x")), /invalid name/);
  assert.throws(
    () => splitStages(parseDockerfile("FROM a AS x\nFROM b AS X")),
    /duplicate name for build stage: "x"/,
  );
});

Deno.test("requiredStages() follows FROM, COPY --from and RUN --mount from=, and nothing else", () => {
  const df = parseDockerfile(
    [
      "ARG SRC=deps",
      "FROM alpine AS deps",
      "FROM alpine AS unused",
      "FROM alpine AS tools",
      "FROM deps AS build",
      "COPY --from=$SRC /x /x",
      "RUN --mount=type=bind,from=tools,target=/t make",
      "FROM scratch AS final",
      "COPY --from=build /out /",
      "COPY --from=busybox:latest /bin/sh /sh",
    ].join("\n"),
  );
  const staged = splitStages(df);
  const names = (t?: string) =>
    requiredStages(staged, targetStage(staged, t), {}).map((s) => s.name);
  assert.deepEqual(names(), ["deps", "tools", "build", "final"]);
  assert.deepEqual(names("tools"), ["tools"]);
  assert.deepEqual(names("BUILD"), ["deps", "tools", "build"]);
  assert.throws(() => targetStage(staged, "nope"), /target stage "nope" could not be found/);
  const forward = splitStages(
    parseDockerfile("FROM a AS one\nCOPY --from=two /x /\nFROM b AS two"),
  );
  assert.throws(
    () => requiredStages(forward, targetStage(forward, "one"), {}),
    /Dockerfile:2: COPY: stage "two" is defined after this stage/,
  );
});

function evaluate(text: string, base: ImageRuntimeConfig = {}, buildArgs = {}, stage = 0) {
  const staged = splitStages(parseDockerfile(text), buildArgs);
  return evaluateStage({
    stage: staged.stages[stage]!,
    stages: staged.stages,
    base,
    meta: metaArgValues(staged, buildArgs),
    buildArgs,
    automaticArgs: { TARGETARCH: "amd64" },
    escape: staged.escape,
  });
}

Deno.test("evaluateStage(): ENV, ARG scoping and precedence, and the config", () => {
  const r = evaluate(
    [
      "ARG V=meta",
      "FROM x",
      "ARG V",
      "ARG W=$V-w",
      "ARG TARGETARCH",
      'ENV A=1 B=$A C="$V" D=${W}',
      "ENV A=2",
      "ENV E $A and more",
      'LABEL "k 1"=v1 k2=$A',
      "WORKDIR $HOME/app",
      "WORKDIR sub",
      "USER ${U:-app}:grp",
      "EXPOSE 80 53/udp 8000-8001",
      "VOLUME /data $HOME/cache",
      "STOPSIGNAL SIGINT",
      "ARG TARGETARCH",
      "RUN echo $TARGETARCH",
    ].join("\n"),
    { Env: ["PATH=/bin", "HOME=/home/base", "B=base"], Cmd: ["sh"] },
    { V: "cli" },
  );
  assert.deepEqual(r.config.Env, [
    "PATH=/bin",
    "HOME=/home/base",
    "B=",
    "A=2",
    "C=cli",
    "D=cli-w",
    "E=2 and more",
  ]);
  assert.deepEqual(r.config.Labels, { "k 1": "v1", k2: "2" });
  assert.equal(r.config.WorkingDir, "/home/base/app/sub");
  assert.equal(r.config.User, "app:grp");
  assert.deepEqual(Object.keys(r.config.ExposedPorts!), [
    "80/tcp",
    "53/udp",
    "8000/tcp",
    "8001/tcp",
  ]);
  assert.deepEqual(Object.keys(r.config.Volumes!), ["/data", "/home/base/cache"]);
  assert.equal(r.config.StopSignal, "SIGINT");
  assert.deepEqual(r.config.Cmd, ["sh"], "CMD is inherited");
  assert.deepEqual([...r.declaredArgs], ["V", "W", "TARGETARCH"]);
  const run = r.steps.at(-1) as RunStep;
  assert.deepEqual(run.argv, ["/bin/sh", "-c", "echo $TARGETARCH"]);
  assert.deepEqual(run.args, ["V=cli", "W=cli-w", "TARGETARCH=amd64"]);
  assert.ok(run.env.includes("V=cli") && run.env.includes("TARGETARCH=amd64"));
  assert.equal(run.workdir, "/home/base/app/sub");
  assert.equal(run.user, "app:grp");
  const wd = r.steps.filter((s) => s.kind === "workdir").map((s) => s.kind === "workdir" && s.path);
  assert.deepEqual(wd, ["/home/base/app", "/home/base/app/sub"]);
});

Deno.test("evaluateStage(): ENV wins over ARG, and undeclared build args are not seen", () => {
  const r = evaluate("FROM x\nARG A=arg\nENV A=env\nENV B=$A C=$UNDECLARED", {}, {
    UNDECLARED: "x",
  });
  assert.deepEqual(r.config.Env, ["A=env", "B=env", "C="]);
});

Deno.test("evaluateStage(): CMD, ENTRYPOINT and SHELL as Docker sets them", () => {
  const inherited = evaluate('FROM x\nENTRYPOINT ["/app"]', { Cmd: ["sh"] });
  assert.equal(inherited.config.Cmd, null, "a new ENTRYPOINT drops an inherited CMD");
  const own = evaluate('FROM x\nCMD ["a"]\nENTRYPOINT ["/app"]', { Cmd: ["sh"] });
  assert.deepEqual(own.config.Cmd, ["a"]);
  const shell = evaluate('FROM x\nSHELL ["/bin/bash", "-ec"]\nCMD run it\nRUN make');
  assert.deepEqual(shell.config.Cmd, ["/bin/bash", "-ec", "run it"]);
  assert.deepEqual((shell.steps.at(-1) as RunStep).argv, ["/bin/bash", "-ec", "make"]);
  assert.throws(() => evaluate("FROM x\nSHELL /bin/bash"), /SHELL requires the arguments/);
});

Deno.test("evaluateStage(): RUN here-documents go to the shell; a lone one is the script", () => {
  const r = evaluate("FROM x\nRUN <<EOF\necho hi\nEOF\nRUN cat <<'A' > /f\n$HOME\nA");
  const [lone, inline] = r.steps as RunStep[];
  assert.deepEqual(lone!.argv, ["/bin/sh", "-c", "echo hi\n"]);
  assert.deepEqual(inline!.argv, ["/bin/sh", "-c", "cat <<'A' > /f\n$HOME\nA\n"]);
});

Deno.test("evaluateStage(): COPY and ADD with flags, here-documents and destinations", () => {
  const r = evaluate(
    [
      "FROM x AS one",
      "FROM x",
      "ARG OWNER=1000",
      "WORKDIR /app",
      "COPY --chown=$OWNER:$OWNER --chmod=0640 a b ./",
      "COPY --from=one /x rel",
      "COPY --from=alpine:3 /y /abs",
      "COPY <<EOF /etc/motd",
      "hello $OWNER",
      "EOF",
      'ADD ["s p", "/d/"]',
    ].join("\n"),
    {},
    {},
    1,
  );
  const copies = r.steps.filter((s) => s.kind === "copy") as CopyStep[];
  assert.deepEqual(copies[0]!.sources, ["a", "b"]);
  assert.equal(copies[0]!.dest, "/app");
  assert.equal(copies[0]!.destIsDir, true);
  assert.equal(copies[0]!.chown, "1000:1000");
  assert.equal(copies[0]!.chmod, "0640");
  assert.deepEqual(copies[1]!.from, { stage: 0 });
  assert.equal(copies[1]!.dest, "/app/rel");
  assert.deepEqual(copies[2]!.from, { image: "alpine:3" });
  assert.deepEqual(copies[3]!.sources, ["<<EOF"]);
  assert.deepEqual(copies[3]!.heredocs, [{ name: "EOF", content: "hello 1000\n" }]);
  assert.equal(copies[4]!.add, true);
  assert.deepEqual(copies[4]!.sources, ["s p"]);
  assert.throws(() => evaluate("FROM x\nCOPY a"), /Dockerfile:2: COPY requires at least two/);
  assert.throws(() => evaluate("FROM x\nCOPY a b c"), /destination must be a directory/);
  assert.throws(() => evaluate("FROM x\nCOPY --bogus a b"), /COPY: unknown flag: --bogus/);
  assert.throws(() => evaluate("FROM x\nCOPY --chmod=u+x a b"), /only octal modes/);
});

Deno.test("evaluateStage(): HEALTHCHECK, ONBUILD and errors that name the line", () => {
  const r = evaluate(
    'FROM x\nHEALTHCHECK --interval=1m30s --retries=3 CMD ["curl", "-f", "x"]\nONBUILD RUN make',
  );
  assert.deepEqual(r.config.Healthcheck, {
    Test: ["CMD", "curl", "-f", "x"],
    Interval: 90e9,
    Retries: 3,
  });
  assert.deepEqual(r.config.OnBuild, ["RUN make"]);
  assert.deepEqual(evaluate("FROM x\nHEALTHCHECK CMD curl x").config.Healthcheck, {
    Test: ["CMD-SHELL", "curl x"],
  });
  assert.deepEqual(evaluate("FROM x\nHEALTHCHECK NONE").config.Healthcheck, { Test: ["NONE"] });
  assert.throws(() => evaluate("FROM x\nHEALTHCHECK --retries=0 CMD x"), /Dockerfile:2: .*retries/);
  assert.throws(() => evaluate("FROM x\nENV A"), /Dockerfile:2: ENV must have two arguments/);
  assert.throws(() => evaluate("FROM x\nLABEL a=1 b"), /can't find = in "b"/);
  assert.throws(() => evaluate("FROM x\nWORKDIR ${A"), /Dockerfile:2: WORKDIR: missing "}"/);
  assert.throws(() => evaluate("FROM x\nEXPOSE 70000"), /invalid port range/);
  assert.ok(
    (() => {
      try {
        evaluate("FROM x\n\nUSER");
      } catch (e) {
        return e instanceof DockerfileError && e.line === 3;
      }
      return false;
    })(),
  );
  assert.equal(parseDuration("500ms"), 5e8);
  assert.throws(() => parseDuration("5 s"), /invalid duration/);
});

Deno.test("applyChanges() applies --change instructions to a config, and names a bad one", async () => {
  const { applyChanges } = await import("../../lib/build/changes.ts");
  const base: ImageRuntimeConfig = { Env: ["PATH=/bin"], Cmd: ["sh"], WorkingDir: "/srv" };
  const out = applyChanges(base, [
    'CMD ["/app", "--serve"]',
    "ENV MODE=prod PATH=/app/bin:$PATH",
    "EXPOSE 8080",
    "WORKDIR data",
    "LABEL version=2",
  ]);
  assert.deepEqual(out, {
    Env: ["PATH=/app/bin:/bin", "MODE=prod"],
    Cmd: ["/app", "--serve"],
    WorkingDir: "/srv/data",
    ExposedPorts: { "8080/tcp": {} },
    Labels: { version: "2" },
  });
  assert.deepEqual(base.Cmd, ["sh"], "the input is not changed");
  assert.throws(
    () => applyChanges(base, ["RUN make"]),
    /invalid --change "RUN make": RUN is not a valid change command/,
  );
  assert.throws(
    () => applyChanges(base, ["BOGUS x"]),
    /invalid --change "BOGUS x": unknown instruction: BOGUS/,
  );
  assert.throws(
    () => applyChanges(base, ["ENV A"]),
    /invalid --change "ENV A": ENV must have two arguments/,
  );
  assert.throws(() => applyChanges(base, ["CMD a\nRUN b"]), /a change is one line/);
});

Deno.test("parseRunMount() and parseSecret() read BuildKit's mount and secret syntax", async () => {
  const { parseRunMount, parseSecret, cacheDirName } = await import(
    "../../lib/build/run_mounts.ts"
  );
  assert.deepEqual(parseRunMount("type=cache,target=.cache", "/app"), {
    type: "cache",
    target: "/app/.cache",
    id: "/app/.cache",
  });
  assert.deepEqual(parseRunMount("target=/src,source=lib", "/"), {
    type: "bind",
    target: "/src",
    source: "lib",
  });
  assert.deepEqual(parseRunMount("type=secret,id=npm", "/"), {
    type: "secret",
    id: "npm",
    target: "/run/secrets/npm",
    required: false,
  });
  assert.deepEqual(parseRunMount("type=tmpfs,dst=/t,size=1m", "/"), {
    type: "tmpfs",
    target: "/t",
    size: "1m",
  });
  assert.throws(
    () => parseRunMount("type=ssh", "/"),
    /type "ssh" is not bind, cache, tmpfs or secret/,
  );
  assert.throws(() => parseRunMount("type=cache", "/"), /target= is required/);
  assert.throws(() => parseRunMount("type=tmpfs,target=/t,id=x", "/"), /"id" is not an option/);
  assert.deepEqual(parseSecret("id=a,src=/f"), { id: "a", src: "/f" });
  assert.deepEqual(parseSecret("id=TOKEN,type=env"), { id: "TOKEN", env: "TOKEN" });
  assert.throws(() => parseSecret("src=/f"), /id= is required/);
  assert.equal(cacheDirName("/root/.cache/go build"), "_2Froot_2F.cache_2Fgo_20build");
});
