/**
 * Unit tests for lib/spec/command.ts: Docker's entrypoint/cmd rules, the
 * execvp(3) search list and the working directory.
 */

import assert from "node:assert/strict";
import {
  type CommandInput,
  executableCandidates,
  resolveCommand,
  resolveWorkdir,
} from "../../lib/spec/command.ts";

const IMAGE = { imageEntrypoint: ["/entry.sh"], imageCmd: ["serve", "--port", "80"] };

const COMMANDS: { name: string; input: CommandInput; want: string[] }[] = [
  { name: "runs the image's Cmd alone", input: { imageCmd: ["sh"], args: [] }, want: ["sh"] },
  {
    name: "appends the image's Cmd to its Entrypoint",
    input: { ...IMAGE, args: [] },
    want: ["/entry.sh", "serve", "--port", "80"],
  },
  {
    name: "replaces the image's Cmd with the arguments",
    input: { ...IMAGE, args: ["bash", "-l"] },
    want: ["/entry.sh", "bash", "-l"],
  },
  {
    name: "replaces a Cmd-only image's command with the arguments",
    input: { imageCmd: ["sh"], args: ["echo", "hi"] },
    want: ["echo", "hi"],
  },
  {
    name: "runs an Entrypoint-only image",
    input: { imageEntrypoint: ["/bin/app", "-v"], args: [] },
    want: ["/bin/app", "-v"],
  },
  {
    name: "drops the image's Cmd with --entrypoint",
    input: { ...IMAGE, entrypointFlag: "/bin/sh", args: [] },
    want: ["/bin/sh"],
  },
  {
    name: "passes the arguments to --entrypoint",
    input: { ...IMAGE, entrypointFlag: "/bin/sh", args: ["-c", "id"] },
    want: ["/bin/sh", "-c", "id"],
  },
  {
    name: "does not split --entrypoint on spaces",
    input: { entrypointFlag: "my prog", args: [] },
    want: ["my prog"],
  },
  {
    name: 'runs only the arguments with --entrypoint ""',
    input: { ...IMAGE, entrypointFlag: "", args: ["ls", "/"] },
    want: ["ls", "/"],
  },
  {
    name: 'treats an image Entrypoint of [""] as none',
    input: { imageEntrypoint: [""], imageCmd: ["sh"], args: [] },
    want: ["sh"],
  },
  {
    name: "keeps an empty-string argument",
    input: { imageEntrypoint: ["echo"], args: [""] },
    want: ["echo", ""],
  },
];

for (const c of COMMANDS) {
  Deno.test(`resolveCommand() ${c.name}`, () => {
    assert.deepEqual(resolveCommand(c.input), c.want);
  });
}

const COMMAND_ERRORS: { name: string; input: CommandInput; message: string }[] = [
  {
    name: "an image with no command and no arguments",
    input: { args: [] },
    message:
      "No command specified: the image has no Entrypoint or Cmd; give a command after the image name",
  },
  {
    name: 'an image with empty lists and an Entrypoint of [""]',
    input: { imageEntrypoint: [""], imageCmd: [], args: [] },
    message:
      "No command specified: the image has no Entrypoint or Cmd; give a command after the image name",
  },
  {
    name: '--entrypoint "" without arguments, even when the image has a Cmd',
    input: { ...IMAGE, entrypointFlag: "", args: [] },
    message: 'No command specified: --entrypoint "" also clears the image\'s command; ' +
      "give a command after the image name",
  },
];

for (const c of COMMAND_ERRORS) {
  Deno.test(`resolveCommand() rejects ${c.name}`, () => {
    assert.throws(() => resolveCommand(c.input), { message: c.message });
  });
}

const CANDIDATES: { name: string; argv0: string; path: string | undefined; want: string[] }[] = [
  {
    name: "joins each PATH entry in order",
    argv0: "ls",
    path: "/usr/local/bin:/usr/bin:/bin",
    want: ["/usr/local/bin/ls", "/usr/bin/ls", "/bin/ls"],
  },
  {
    name: "reads an empty entry as the current directory, wherever it is",
    argv0: "app",
    path: ":/bin::/usr/bin:",
    want: ["./app", "/bin/app", "/usr/bin/app"],
  },
  { name: "treats an empty PATH as the current directory", argv0: "x", path: "", want: ["./x"] },
  {
    name: "searches /bin:/usr/bin without PATH",
    argv0: "sh",
    path: undefined,
    want: ["/bin/sh", "/usr/bin/sh"],
  },
  {
    name: "does not double a trailing slash and drops duplicates",
    argv0: "sh",
    path: "/bin/:/bin:/usr/bin",
    want: ["/bin/sh", "/usr/bin/sh"],
  },
  { name: "keeps relative PATH entries relative", argv0: "t", path: "bin", want: ["bin/t"] },
  { name: "uses an absolute argv0 as is", argv0: "/bin/sh", path: "/usr/bin", want: ["/bin/sh"] },
  {
    name: "uses a relative argv0 with a slash as is",
    argv0: "./run.sh",
    path: "/usr/bin",
    want: ["./run.sh"],
  },
  { name: "gives nothing for an empty argv0", argv0: "", path: "/bin", want: [] },
];

for (const c of CANDIDATES) {
  Deno.test(`executableCandidates() ${c.name}`, () => {
    assert.deepEqual(executableCandidates(c.argv0, c.path), c.want);
  });
}

const WORKDIRS: { name: string; flag?: string; image?: string; want: string }[] = [
  { name: "defaults to /", want: "/" },
  { name: "uses the image's WorkingDir", image: "/app", want: "/app" },
  { name: "prefers -w over the image", flag: "/srv", image: "/app", want: "/srv" },
  { name: "treats an empty -w as not given", flag: "", image: "/app", want: "/app" },
  { name: "cleans the path", flag: "/a/./b//../c/", want: "/a/c" },
  { name: "does not climb above /", flag: "/../..", want: "/" },
  { name: "roots a relative image WorkingDir at /", image: "app/src", want: "/app/src" },
];

for (const c of WORKDIRS) {
  Deno.test(`resolveWorkdir() ${c.name}`, () => {
    assert.equal(resolveWorkdir(c.flag, c.image), c.want);
  });
}

Deno.test("resolveWorkdir() rejects a relative -w", () => {
  assert.throws(() => resolveWorkdir("app", "/srv"), {
    message: 'Invalid working directory "app": it must be an absolute path, such as "/app"',
  });
});
