/**
 * Tables for manifest parsing, `--platform` parsing and choosing an index
 * entry for a platform.
 */

import assert from "node:assert/strict";
import {
  formatPlatform,
  hostPlatform,
  type ImageIndex,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  type Platform,
  selectManifest,
} from "../../lib/oci/manifest.ts";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dg = (c: string) => `sha256:${c.repeat(64)}`;

Deno.test("parsePlatform() accepts os/arch[/variant] and normalises aliases", () => {
  const cases: [string, string][] = [
    ["linux/amd64", "linux/amd64"],
    ["linux/x86_64", "linux/amd64"],
    ["linux/arm64", "linux/arm64/v8"],
    ["linux/aarch64", "linux/arm64/v8"],
    ["linux/arm64/v8", "linux/arm64/v8"],
    ["linux/arm64/8", "linux/arm64/v8"],
    ["linux/arm", "linux/arm/v7"],
    ["linux/arm/v6", "linux/arm/v6"],
    ["linux/armhf", "linux/arm/v7"],
    ["LINUX/AMD64", "linux/amd64"],
    ["amd64", "linux/amd64"],
    ["arm64", "linux/arm64/v8"],
    ["linux/riscv64", "linux/riscv64"],
    ["windows/amd64", "windows/amd64"],
  ];
  for (const [spec, want] of cases) assert.equal(formatPlatform(parsePlatform(spec)), want, spec);
});

Deno.test("parsePlatform() rejects malformed specs with the expected form", () => {
  const cases: [string, RegExp][] = [
    ["linux/", /Invalid platform "linux\/": it has empty or extra parts/],
    ["a/b/c/d", /empty or extra parts/],
    ["mips-xyz", /"mips-xyz" is not a known architecture/],
    ["lin ux/amd64", /"lin ux" is not an operating system name/],
    ["", /empty or extra parts/],
  ];
  for (const [spec, re] of cases) {
    assert.throws(() => parsePlatform(spec), re, spec);
    assert.throws(() => parsePlatform(spec), /use "os\/arch\[\/variant\]"/, spec);
  }
});

Deno.test("hostPlatform() maps Deno's arch names to Go's", () => {
  const p = hostPlatform();
  assert.equal(p.os, Deno.build.os);
  const expected: Record<string, string> = { "x86_64": "amd64", aarch64: "arm64" };
  assert.equal(p.architecture, expected[Deno.build.arch] ?? Deno.build.arch);
  if (p.architecture === "arm64") assert.equal(p.variant, "v8");
});

function index(platforms: (Platform & { tag: string })[]): ImageIndex {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: platforms.map(({ tag, ...platform }) => ({
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      digest: dg(tag),
      size: 100,
      platform,
    })),
  };
}

const MULTI = index([
  { tag: "1", os: "linux", architecture: "amd64" },
  { tag: "2", os: "linux", architecture: "arm64", variant: "v8" },
  { tag: "3", os: "linux", architecture: "arm", variant: "v7" },
  { tag: "4", os: "linux", architecture: "arm", variant: "v6" },
  { tag: "5", os: "windows", architecture: "amd64" },
  { tag: "6", os: "unknown", architecture: "unknown" },
]);

Deno.test("selectManifest() picks the platform's entry, with compatible variants", () => {
  const cases: [wanted: string, idx: ImageIndex, digestChar: string][] = [
    ["linux/amd64", MULTI, "1"],
    ["linux/arm64", MULTI, "2"],
    ["linux/arm64/v8", MULTI, "2"],
    ["linux/arm/v7", MULTI, "3"],
    ["linux/arm/v6", MULTI, "4"],
    ["linux/arm", MULTI, "3"],
    ["windows/amd64", MULTI, "5"],
    // An ARMv8 32-bit core runs v7 code.
    ["linux/arm/v8", MULTI, "3"],
    // arm64 without a variant in the index is v8.
    [
      "linux/arm64/v8",
      index([{ tag: "7", os: "linux", architecture: "arm64" }]),
      "7",
    ],
    // A v7 core can run v6 when nothing better is offered.
    [
      "linux/arm/v7",
      index([{ tag: "8", os: "linux", architecture: "arm", variant: "v6" }]),
      "8",
    ],
    // The first of equal fits wins.
    [
      "linux/amd64",
      index([
        { tag: "a", os: "linux", architecture: "amd64" },
        { tag: "b", os: "linux", architecture: "amd64" },
      ]),
      "a",
    ],
    // An exact variant beats a missing one.
    [
      "linux/amd64",
      index([
        { tag: "c", os: "linux", architecture: "amd64", variant: "v3" },
        { tag: "d", os: "linux", architecture: "amd64" },
      ]),
      "d",
    ],
  ];
  for (const [wanted, idx, c] of cases) {
    assert.equal(selectManifest(idx, parsePlatform(wanted), "x").digest, dg(c), wanted);
  }
});

Deno.test("selectManifest() lists what the image offers when nothing fits", () => {
  const cases: [string, RegExp][] = [
    ["linux/riscv64", /No image for platform "linux\/riscv64" in "img"/],
    ["linux/arm/v5", /it offers linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7, linux\/arm\/v6/],
    ["linux/s390x", /pick one with --platform/],
  ];
  for (const [wanted, re] of cases) {
    assert.throws(() => selectManifest(MULTI, parsePlatform(wanted), "img"), re);
  }
  // Attestation entries (unknown/unknown) are not offered.
  assert.throws(
    () => selectManifest(MULTI, parsePlatform("linux/s390x"), "img"),
    (e: Error) => !e.message.includes("unknown"),
  );
});

const CONFIG = { mediaType: "application/vnd.oci.image.config.v1+json", digest: dg("c"), size: 10 };
const LAYER = {
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: dg("d"),
  size: 20,
};

Deno.test("parseManifest() tells indexes from manifests by header, field or shape", () => {
  const cases: [name: string, doc: unknown, contentType: string, kind: string, type: string][] = [
    [
      "OCI manifest by header",
      { schemaVersion: 2, config: CONFIG, layers: [LAYER] },
      MEDIA_TYPE_OCI_MANIFEST,
      "manifest",
      MEDIA_TYPE_OCI_MANIFEST,
    ],
    [
      "Docker manifest by field",
      { schemaVersion: 2, mediaType: MEDIA_TYPE_DOCKER_MANIFEST, config: CONFIG, layers: [] },
      "application/json",
      "manifest",
      MEDIA_TYPE_DOCKER_MANIFEST,
    ],
    [
      "Docker list with charset",
      { schemaVersion: 2, manifests: [] },
      `${MEDIA_TYPE_DOCKER_MANIFEST_LIST}; charset=utf-8`,
      "index",
      MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    ],
    [
      "OCI index by shape",
      { schemaVersion: 2, manifests: [{ ...CONFIG, mediaType: MEDIA_TYPE_OCI_MANIFEST }] },
      "",
      "index",
      MEDIA_TYPE_OCI_INDEX,
    ],
  ];
  for (const [name, doc, contentType, kind, type] of cases) {
    const parsed = parseManifest(enc(doc), contentType, "img");
    assert.equal(parsed.kind, kind, name);
    assert.equal(parsed.mediaType, type, name);
  }
});

Deno.test("parseManifest() rejects what trun cannot pull, saying why", () => {
  const cases: [doc: unknown, contentType: string, re: RegExp][] = [
    [{ schemaVersion: 1, name: "x" }, "", /obsolete Docker schema 1/],
    [
      { schemaVersion: 2 },
      "application/vnd.docker.distribution.manifest.v1+prettyjws",
      /obsolete Docker schema 1/,
    ],
    [{ schemaVersion: 3 }, "", /schemaVersion 3: only version 2/],
    [{ schemaVersion: 2, config: CONFIG }, MEDIA_TYPE_OCI_MANIFEST, /has no "layers" list/],
    [
      { schemaVersion: 2, config: { ...CONFIG, digest: "sha256:zz" }, layers: [] },
      MEDIA_TYPE_OCI_MANIFEST,
      /img config has an invalid digest "sha256:zz"/,
    ],
    [
      { schemaVersion: 2, config: CONFIG, layers: [{ ...LAYER, size: -1 }] },
      MEDIA_TYPE_OCI_MANIFEST,
      /img layers\[0\] has an invalid size -1/,
    ],
    [{ schemaVersion: 2, artifactType: "x" }, "application/octet-stream", /not an image/],
    [[1, 2], "", /not a JSON object/],
  ];
  for (const [doc, contentType, re] of cases) {
    assert.throws(() => parseManifest(enc(doc), contentType, "img"), re);
  }
  assert.throws(
    () => parseManifest(new TextEncoder().encode("{nope"), "", "img"),
    /manifest of "img" is not valid JSON/,
  );
});

Deno.test("parseImageConfig() requires os, architecture and rootfs.diff_ids", () => {
  const ok = {
    os: "linux",
    architecture: "amd64",
    rootfs: { type: "layers", diff_ids: [dg("e")] },
  };
  assert.equal(parseImageConfig(enc(ok), "img").architecture, "amd64");
  const cases: [unknown, RegExp][] = [
    [{ ...ok, rootfs: undefined }, /no valid "rootfs.diff_ids"/],
    [{ ...ok, rootfs: { type: "layers", diff_ids: ["nope"] } }, /no valid "rootfs.diff_ids"/],
    [{ ...ok, os: undefined }, /does not say its "os" and "architecture"/],
  ];
  for (const [doc, re] of cases) assert.throws(() => parseImageConfig(enc(doc), "img"), re);
});
