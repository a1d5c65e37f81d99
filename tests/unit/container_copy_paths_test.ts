// lib/container/copy_paths.ts: Docker's `cp` argument reading and where a
// copy lands, one table row per rule of moby's copy logic.
import assert from "node:assert/strict";
import {
  assertsDirectory,
  cleanPath,
  type CopyPlan,
  parseCopyArg,
  planCopy,
  splitPath,
} from "../../lib/container/copy_paths.ts";
import { containerPath } from "../../lib/container/copy.ts";

Deno.test("parseCopyArg() reads Docker's CONTAINER:PATH, host paths and -", () => {
  const rows: [string, ReturnType<typeof parseCopyArg>][] = [
    ["web:/etc/passwd", { kind: "container", container: "web", path: "/etc/passwd" }],
    ["web:etc", { kind: "container", container: "web", path: "/etc" }],
    ["web:", { kind: "container", container: "web", path: "/" }],
    ["/abs/with:colon", { kind: "host", path: "/abs/with:colon" }],
    ["./rel:colon", { kind: "host", path: "./rel:colon" }],
    ["plain", { kind: "host", path: "plain" }],
    ["-", { kind: "stream" }],
  ];
  for (const [arg, want] of rows) assert.deepEqual(parseCopyArg(arg), want, arg);
});

Deno.test("cleanPath(), splitPath() and assertsDirectory() keep Docker's meaning of / and /.", () => {
  assert.equal(cleanPath("/a//b/./c/../d/"), "/a/b/d");
  assert.equal(cleanPath("/../.."), "/");
  assert.equal(cleanPath("a/../../b"), "../b");
  assert.equal(cleanPath(""), ".");
  assert.deepEqual(splitPath("/etc/passwd"), { dir: "/etc", base: "passwd" });
  assert.deepEqual(splitPath("/etc/"), { dir: "/", base: "etc" });
  assert.deepEqual(splitPath("/"), { dir: "/", base: "/" });
  assert.deepEqual(splitPath("out"), { dir: ".", base: "out" });
  for (const p of ["dir/", "dir/.", ".", "/"]) assert.ok(assertsDirectory(p), p);
  for (const p of ["dir", "dir/..", "./file"]) assert.ok(!assertsDirectory(p), p);
  assert.equal(containerPath("etc/."), "/etc/.");
  assert.equal(containerPath("/etc/"), "/etc/");
  assert.equal(containerPath("a/../../b"), "/b");
  assert.equal(containerPath("/"), "/");
});

const ok = (destDir: string, name: string | null): CopyPlan => ({ ok: true, destDir, name });

Deno.test("planCopy() lands a copy where Docker's cp does", () => {
  const rows: {
    name: string;
    src: { path: string; isDir: boolean };
    dest: string;
    found: { exists: boolean; isDir: boolean };
    want: CopyPlan | RegExp;
  }[] = [
    {
      name: "file into an existing directory keeps its name",
      src: { path: "/etc/passwd", isDir: false },
      dest: "/tmp/out",
      found: { exists: true, isDir: true },
      want: ok("/tmp/out", "passwd"),
    },
    {
      name: "file onto an existing file overwrites it",
      src: { path: "/etc/passwd", isDir: false },
      dest: "/tmp/out/pw",
      found: { exists: true, isDir: false },
      want: ok("/tmp/out", "pw"),
    },
    {
      name: "file to a missing path is created with that name",
      src: { path: "/etc/passwd", isDir: false },
      dest: "/tmp/new",
      found: { exists: false, isDir: false },
      want: ok("/tmp", "new"),
    },
    {
      name: "file to a missing path with a trailing / is an error",
      src: { path: "/etc/passwd", isDir: false },
      dest: "/tmp/new/",
      found: { exists: false, isDir: false },
      want: /no such directory "\/tmp\/new\/"/,
    },
    {
      name: "directory into an existing directory is copied as itself",
      src: { path: "/etc", isDir: true },
      dest: "/tmp/out",
      found: { exists: true, isDir: true },
      want: ok("/tmp/out", "etc"),
    },
    {
      name: "directory/. into an existing directory copies its content",
      src: { path: "/etc/.", isDir: true },
      dest: "/tmp/out",
      found: { exists: true, isDir: true },
      want: ok("/tmp/out", null),
    },
    {
      name: "the root into an existing directory copies its content",
      src: { path: "/", isDir: true },
      dest: "out",
      found: { exists: true, isDir: true },
      want: ok("out", null),
    },
    {
      name: "directory to a missing path becomes that path",
      src: { path: "/etc/", isDir: true },
      dest: "copy",
      found: { exists: false, isDir: false },
      want: ok(".", "copy"),
    },
    {
      name: "directory/. to a missing path becomes that path too",
      src: { path: "/etc/.", isDir: true },
      dest: "/tmp/copy",
      found: { exists: false, isDir: false },
      want: ok("/tmp", "copy"),
    },
    {
      name: "directory onto an existing file is an error",
      src: { path: "/etc", isDir: true },
      dest: "/tmp/file",
      found: { exists: true, isDir: false },
      want: /cannot copy a directory onto the file "\/tmp\/file"/,
    },
  ];
  for (const r of rows) {
    const got = planCopy(r.src, r.dest, r.found);
    if (r.want instanceof RegExp) {
      assert.equal(got.ok, false, r.name);
      assert.match((got as { message: string }).message, r.want, r.name);
    } else {
      assert.deepEqual(got, r.want, r.name);
    }
  }
});
