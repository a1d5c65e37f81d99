/**
 * Tables for image reference parsing: Docker's normalisation of valid
 * references and the messages for invalid ones.
 */

import assert from "node:assert/strict";
import {
  InvalidReferenceError,
  isValidDigest,
  parseReference,
  registryApiHost,
} from "../../lib/oci/reference.ts";

const D = "sha256:" + "a".repeat(64);
const E = "sha256:" + "0123456789abcdef".repeat(4);

interface Valid {
  input: string;
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  full: string;
  familiar: string;
}

const VALID: Valid[] = [
  {
    input: "ubuntu",
    registry: "docker.io",
    repository: "library/ubuntu",
    tag: "latest",
    full: "docker.io/library/ubuntu:latest",
    familiar: "ubuntu:latest",
  },
  {
    input: "ubuntu:22.04",
    registry: "docker.io",
    repository: "library/ubuntu",
    tag: "22.04",
    full: "docker.io/library/ubuntu:22.04",
    familiar: "ubuntu:22.04",
  },
  {
    input: "user/repo",
    registry: "docker.io",
    repository: "user/repo",
    tag: "latest",
    full: "docker.io/user/repo:latest",
    familiar: "user/repo:latest",
  },
  {
    input: "docker.io/library/alpine:3",
    registry: "docker.io",
    repository: "library/alpine",
    tag: "3",
    full: "docker.io/library/alpine:3",
    familiar: "alpine:3",
  },
  {
    input: "docker.io/alpine",
    registry: "docker.io",
    repository: "library/alpine",
    tag: "latest",
    full: "docker.io/library/alpine:latest",
    familiar: "alpine:latest",
  },
  {
    input: "index.docker.io/library/busybox",
    registry: "docker.io",
    repository: "library/busybox",
    tag: "latest",
    full: "docker.io/library/busybox:latest",
    familiar: "busybox:latest",
  },
  {
    input: "library/library/x",
    registry: "docker.io",
    repository: "library/library/x",
    tag: "latest",
    full: "docker.io/library/library/x:latest",
    familiar: "library/library/x:latest",
  },
  {
    input: "localhost/x",
    registry: "localhost",
    repository: "x",
    tag: "latest",
    full: "localhost/x:latest",
    familiar: "localhost/x:latest",
  },
  {
    input: "localhost:5000/x",
    registry: "localhost:5000",
    repository: "x",
    tag: "latest",
    full: "localhost:5000/x:latest",
    familiar: "localhost:5000/x:latest",
  },
  {
    input: "localhost:5000/a/b:v1",
    registry: "localhost:5000",
    repository: "a/b",
    tag: "v1",
    full: "localhost:5000/a/b:v1",
    familiar: "localhost:5000/a/b:v1",
  },
  {
    input: "127.0.0.1:5000/fixtures/busybox:latest",
    registry: "127.0.0.1:5000",
    repository: "fixtures/busybox",
    tag: "latest",
    full: "127.0.0.1:5000/fixtures/busybox:latest",
    familiar: "127.0.0.1:5000/fixtures/busybox:latest",
  },
  {
    input: "ghcr.io/owner/app:1.2.3",
    registry: "ghcr.io",
    repository: "owner/app",
    tag: "1.2.3",
    full: "ghcr.io/owner/app:1.2.3",
    familiar: "ghcr.io/owner/app:1.2.3",
  },
  {
    input: "Quay.IO/org/app",
    registry: "quay.io",
    repository: "org/app",
    tag: "latest",
    full: "quay.io/org/app:latest",
    familiar: "quay.io/org/app:latest",
  },
  {
    input: `ubuntu@${D}`,
    registry: "docker.io",
    repository: "library/ubuntu",
    digest: D,
    full: `docker.io/library/ubuntu@${D}`,
    familiar: `ubuntu@${D}`,
  },
  {
    input: `ubuntu:22.04@${E}`,
    registry: "docker.io",
    repository: "library/ubuntu",
    tag: "22.04",
    digest: E,
    full: `docker.io/library/ubuntu:22.04@${E}`,
    familiar: `ubuntu:22.04@${E}`,
  },
  {
    input: `localhost:5000/x@${D}`,
    registry: "localhost:5000",
    repository: "x",
    digest: D,
    full: `localhost:5000/x@${D}`,
    familiar: `localhost:5000/x@${D}`,
  },
  {
    input: "my-registry.example.com:443/team/sub/app:v1_2-3",
    registry: "my-registry.example.com:443",
    repository: "team/sub/app",
    tag: "v1_2-3",
    full: "my-registry.example.com:443/team/sub/app:v1_2-3",
    familiar: "my-registry.example.com:443/team/sub/app:v1_2-3",
  },
  {
    input: "a__b/c.d/e--f",
    registry: "docker.io",
    repository: "a__b/c.d/e--f",
    tag: "latest",
    full: "docker.io/a__b/c.d/e--f:latest",
    familiar: "a__b/c.d/e--f:latest",
  },
  {
    input: "[::1]:5000/x:y",
    registry: "[::1]:5000",
    repository: "x",
    tag: "y",
    full: "[::1]:5000/x:y",
    familiar: "[::1]:5000/x:y",
  },
  {
    input: "ubuntu:LATEST_Tag.1",
    registry: "docker.io",
    repository: "library/ubuntu",
    tag: "LATEST_Tag.1",
    full: "docker.io/library/ubuntu:LATEST_Tag.1",
    familiar: "ubuntu:LATEST_Tag.1",
  },
];

for (const c of VALID) {
  Deno.test(`parseReference() normalises "${c.input}" to "${c.full}"`, () => {
    const r = parseReference(c.input);
    assert.equal(r.registry, c.registry);
    assert.equal(r.repository, c.repository);
    assert.equal(r.tag, c.tag);
    assert.equal(r.digest, c.digest);
    assert.equal(r.toString(), c.full);
    assert.equal(r.familiar, c.familiar);
    // Parsing the full form again is a fixed point.
    assert.equal(parseReference(r.toString()).toString(), c.full);
  });
}

const INVALID: [input: string, message: string][] = [
  ["Foo/bar", 'invalid reference "Foo/bar": repository name must be lowercase'],
  ["Ubuntu", 'invalid reference "Ubuntu": repository name must be lowercase'],
  ["", 'invalid reference "": the reference is empty'],
  ["ubuntu:", 'invalid reference "ubuntu:": tag "" is not valid'],
  ["ubuntu:-bad", 'invalid reference "ubuntu:-bad": tag "-bad" is not valid'],
  ["ubuntu:" + "t".repeat(129), "is not valid: use up to 128"],
  ["ubuntu@sha256:abc", 'digest "sha256:abc" is not valid'],
  ["ubuntu@sha256:" + "A".repeat(64), "is not valid"],
  ["ubuntu@md5", 'digest "md5" is not valid'],
  ["a//b", "empty path component"],
  ["/ubuntu", "empty path component"],
  ["ubuntu/", "empty path component"],
  ["bad_-name/x", '"bad_-name" is not a valid repository path component'],
  ["-lead/x", '"-lead" is not a valid repository path component'],
  ["a..b/x", 'registry host "a..b" is not valid'],
  ["host:99999/x", 'registry port in "host:99999" is not valid'],
  ["host:/x", 'registry port in "host:" is not valid'],
  ["localhost:5000/", 'the repository name after "localhost:5000/" is missing'],
  ["with space", "cannot contain spaces"],
  ["a".repeat(64 + 0).replace(/a/g, "f"), "looks like an image ID"],
  ["docker.io/" + "a/".repeat(130) + "b", "longer than 255"],
  [":tag", "the repository name is missing"],
];

for (const [input, message] of INVALID) {
  Deno.test(`parseReference() rejects "${input.slice(0, 40)}" naming the bad part`, () => {
    assert.throws(
      () => parseReference(input),
      (e: unknown) => {
        assert.ok(e instanceof InvalidReferenceError, `got ${e}`);
        assert.ok(
          e.message.includes(message),
          `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(message)}`,
        );
        assert.ok(e.message.startsWith(`invalid reference "${input}"`));
        return true;
      },
    );
  });
}

Deno.test("registryApiHost() maps docker.io to registry-1.docker.io only", () => {
  const cases: [string, string][] = [
    ["docker.io", "registry-1.docker.io"],
    ["ghcr.io", "ghcr.io"],
    ["localhost:5000", "localhost:5000"],
  ];
  for (const [registry, host] of cases) assert.equal(registryApiHost(registry), host);
});

Deno.test("ImageReference.withDigest() and withTag() keep registry and repository", () => {
  const r = parseReference("ghcr.io/o/app:1");
  assert.equal(r.withDigest(D).toString(), `ghcr.io/o/app:1@${D}`);
  assert.equal(r.withDigest(D).apiReference, D);
  assert.equal(r.withTag("2").toString(), "ghcr.io/o/app:2");
  assert.equal(r.apiReference, "1");
  assert.equal(parseReference("ubuntu").familiarName, "ubuntu");
  assert.equal(parseReference("ubuntu").name, "docker.io/library/ubuntu");
  assert.throws(() => r.withTag("bad tag"), /Invalid tag "bad tag"/);
});

Deno.test("isValidDigest() checks the hex length for sha256 and sha512", () => {
  const cases: [string, boolean][] = [
    [D, true],
    ["sha256:" + "a".repeat(63), false],
    ["sha512:" + "b".repeat(128), true],
    ["sha512:" + "b".repeat(64), false],
    ["sha256:" + "g".repeat(64), false],
    ["nocolon", false],
  ];
  for (const [digest, ok] of cases) assert.equal(isValidDigest(digest), ok, digest);
});
