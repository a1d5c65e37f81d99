/**
 * Unit tests for lib/spec/env.ts: `--env-file` parsing and the order,
 * precedence and defaults of the container environment.
 */

import assert from "node:assert/strict";
import {
  buildEnvironment,
  DEFAULT_PATH,
  type EnvironmentInput,
  envLookup,
  parseEnvFile,
} from "../../lib/spec/env.ts";

const HOST = { USER: "alice", EMPTY: "", LANG: "C.UTF-8" };

Deno.test("parseEnvFile() reads values verbatim and skips comments and blank lines", () => {
  const text = [
    "\uFEFFFIRST=1",
    "# comment",
    "",
    "   ",
    "  INDENTED=kept  ",
    'QUOTED="not stripped"',
    "EQUALS=a=b=c",
    "EMPTYVALUE=",
    "USER",
    "MISSING",
    "EMPTY",
    "CRLF=yes\r",
    "  # indented comment",
  ].join("\n");
  assert.deepEqual(parseEnvFile(text, "app.env", HOST), [
    "FIRST=1",
    "INDENTED=kept  ",
    'QUOTED="not stripped"',
    "EQUALS=a=b=c",
    "EMPTYVALUE=",
    "USER=alice",
    "EMPTY=",
    "CRLF=yes",
  ]);
});

const FILE_ERRORS: { name: string; text: string; message: string }[] = [
  {
    name: "a name with a space before '='",
    text: "OK=1\n\nFOO BAR=2\n",
    message: 'Invalid variable name "FOO BAR" in env file "a.env" line 3: ' +
      "names cannot contain spaces or tabs",
  },
  {
    name: "a bare name with trailing whitespace",
    text: "# c\nUSER \n",
    message: 'Invalid variable name "USER " in env file "a.env" line 2: ' +
      "names cannot contain spaces or tabs",
  },
  {
    name: "a line with no name",
    text: "=value\n",
    message: 'No variable name in env file "a.env" line 1: "=value"; use NAME=VALUE',
  },
];

for (const c of FILE_ERRORS) {
  Deno.test(`parseEnvFile() rejects ${c.name} with the file and line`, () => {
    assert.throws(() => parseEnvFile(c.text, "a.env", HOST), { message: c.message });
  });
}

function input(over: Partial<EnvironmentInput>): EnvironmentInput {
  return {
    imageEnv: [],
    envFiles: [],
    envFlags: [],
    hostEnv: HOST,
    hostname: "c0ffee",
    home: "/root",
    tty: false,
    ...over,
  };
}

const CASES: { name: string; input: EnvironmentInput; want: string[] }[] = [
  {
    name: "adds PATH, HOSTNAME and HOME to an empty image",
    input: input({}),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "HOME=/root"],
  },
  {
    name: "adds TERM=xterm only with a TTY",
    input: input({ tty: true }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "TERM=xterm", "HOME=/root"],
  },
  {
    name: "lets the image replace PATH and TERM in place",
    input: input({ tty: true, imageEnv: ["TERM=vt100", "PATH=/opt/bin", "LANG=C"] }),
    want: ["PATH=/opt/bin", "HOSTNAME=c0ffee", "TERM=vt100", "LANG=C", "HOME=/root"],
  },
  {
    name: "orders user variables before image ones, with -e over env files over the image",
    input: input({
      imageEnv: ["A=image", "B=image", "C=image"],
      envFiles: [{ name: "one.env", text: "B=file1\nD=file1\n" }, {
        name: "two.env",
        text: "D=file2\n",
      }],
      envFlags: ["C=flag", "E=flag"],
    }),
    want: [
      `PATH=${DEFAULT_PATH}`,
      "HOSTNAME=c0ffee",
      "B=file1",
      "D=file2",
      "C=flag",
      "E=flag",
      "A=image",
      "HOME=/root",
    ],
  },
  {
    name: "keeps the first position when a later -e replaces a name",
    input: input({ envFlags: ["X=1", "Y=2", "X=3"] }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "X=3", "Y=2", "HOME=/root"],
  },
  {
    name: "takes -e NAME from the host and keeps an empty host value",
    input: input({ envFlags: ["USER", "EMPTY"] }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "USER=alice", "EMPTY=", "HOME=/root"],
  },
  {
    name: "drops -e NAME unset on the host, hiding the image's and env file's value",
    input: input({
      imageEnv: ["GONE=image", "KEPT=image"],
      envFiles: [{ name: "f.env", text: "ALSO=file\n" }],
      envFlags: ["GONE", "ALSO", "NEVER"],
    }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "KEPT=image", "HOME=/root"],
  },
  {
    name: "lets a later -e NAME=VALUE revive a name unset before",
    input: input({ imageEnv: ["V=image"], envFlags: ["V", "V=again"] }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "V=again", "HOME=/root"],
  },
  {
    name: "keeps an explicit HOME, even empty, and HOSTNAME from -e",
    input: input({ imageEnv: ["HOME=/image"], envFlags: ["HOSTNAME=mine", "HOME="] }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=mine", "HOME="],
  },
  {
    name: "uses the image's HOME over the user's home directory",
    input: input({ imageEnv: ["HOME=/srv"], home: "/home/bob" }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "HOME=/srv"],
  },
  {
    name: "ignores image entries without '=' and lets the last duplicate win",
    input: input({ imageEnv: ["NOVALUE", "DUP=1", "DUP=2", "=x"] }),
    want: [`PATH=${DEFAULT_PATH}`, "HOSTNAME=c0ffee", "DUP=2", "HOME=/root"],
  },
  {
    name: "can unset PATH with -e PATH when the host has none",
    input: input({ envFlags: ["PATH"], hostEnv: {} }),
    want: ["HOSTNAME=c0ffee", "HOME=/root"],
  },
];

for (const c of CASES) {
  Deno.test(`buildEnvironment() ${c.name}`, () => {
    assert.deepEqual(buildEnvironment(c.input), c.want);
  });
}

const BUILD_ERRORS: { name: string; input: EnvironmentInput; message: string }[] = [
  {
    name: "a -e value with an empty name",
    input: input({ envFlags: ["=x"] }),
    message: 'Invalid environment variable "=x": the name is empty; use NAME=VALUE',
  },
  {
    name: "an empty -e value",
    input: input({ envFlags: [""] }),
    message: 'Invalid environment variable "": the name is empty; use NAME=VALUE',
  },
  {
    name: "a bad env file line, naming the file",
    input: input({ envFiles: [{ name: "ok.env", text: "A=1" }, { name: "bad.env", text: "A B" }] }),
    message: 'Invalid variable name "A B" in env file "bad.env" line 1: ' +
      "names cannot contain spaces or tabs",
  },
  {
    name: "a NUL byte in a value",
    input: input({ imageEnv: ["BAD=a\0b"] }),
    message:
      'Environment variable "BAD" contains a NUL byte, which cannot be passed to a process; remove it',
  },
];

for (const c of BUILD_ERRORS) {
  Deno.test(`buildEnvironment() rejects ${c.name}`, () => {
    assert.throws(() => buildEnvironment(c.input), { message: c.message });
  });
}

Deno.test("envLookup() finds the first value and tells empty from absent", () => {
  const env = ["A=1", "AB=2", "EMPTY=", "A=3", "EQ=x=y"];
  const cases: [string, string | undefined][] = [
    ["A", "1"],
    ["AB", "2"],
    ["EMPTY", ""],
    ["EQ", "x=y"],
    ["B", undefined],
    ["", undefined],
  ];
  for (const [name, want] of cases) assert.equal(envLookup(env, name), want, name);
});
