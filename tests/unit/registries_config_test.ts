/**
 * Tables for registries.json: parsing, error messages, which registries may
 * use plain HTTP, and the order of endpoints tried.
 */

import assert from "node:assert/strict";
import {
  emptyRegistriesConfig,
  isInsecureRegistry,
  loadRegistriesConfig,
  parseRegistriesConfig,
  registryEndpoints,
} from "../../lib/image/registries_config.ts";

Deno.test("parseRegistriesConfig() reads mirrors and insecure registries", () => {
  const c = parseRegistriesConfig(
    JSON.stringify({
      registries: {
        "index.docker.io": { mirrors: ["mirror.example.com", "http://10.1.2.3:5000/"] },
        "Build.Internal:5000": { insecure: true },
      },
      insecureRegistries: ["10.0.0.0/8", "Legacy.Internal"],
    }),
    "/x/registries.json",
  );
  assert.deepEqual(c, {
    registries: {
      "docker.io": {
        mirrors: ["https://mirror.example.com", "http://10.1.2.3:5000"],
        insecure: false,
      },
      "build.internal:5000": { mirrors: [], insecure: true },
    },
    insecureRegistries: ["10.0.0.0/8", "legacy.internal"],
  });
  assert.deepEqual(parseRegistriesConfig("{}", "f"), emptyRegistriesConfig());
});

Deno.test("parseRegistriesConfig() errors name the file, the field and the fix", () => {
  const cases: [string, RegExp][] = [
    [
      "{not json",
      /Cannot read registry settings "\/c\/r.json": invalid JSON \(.*\); fix or remove the file/,
    ],
    ["[]", /"the top level" must be a JSON object/],
    ['{"mirrors": []}', /unknown key "mirrors" \(known: "registries", "insecureRegistries"\)/],
    ['{"registries": []}', /"registries" must be an object keyed by registry name/],
    ['{"registries": {"a.io": 1}}', /"registries.a.io" must be an object/],
    [
      '{"registries": {"a.io": {"mirrors": "x"}}}',
      /"registries.a.io.mirrors" must be a list of URLs/,
    ],
    [
      '{"registries": {"a.io": {"mirrors": ["ftp://m"]}}}',
      /"registries.a.io.mirrors" must be a list of http\(s\) URLs, not "ftp:\/\/m"/,
    ],
    [
      '{"registries": {"a.io": {"insecure": "yes"}}}',
      /"registries.a.io.insecure" must be true or false/,
    ],
    ['{"registries": {"a.io": {"secure": true}}}', /unknown key "registries.a.io.secure"/],
    ['{"insecureRegistries": "a"}', /"insecureRegistries" must be a list/],
    ['{"insecureRegistries": ["10.0.0.0/33"]}', /"10.0.0.0\/33" is neither/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseRegistriesConfig(text, "/c/r.json"), re, text);
  }
});

Deno.test("isInsecureRegistry() allows loopback by default and listed hosts and ranges", () => {
  const config = parseRegistriesConfig(
    JSON.stringify({
      registries: { "build.internal:5000": { insecure: true } },
      insecureRegistries: ["10.0.0.0/8", "legacy.internal", "192.168.1.5:5000"],
    }),
    "f",
  );
  const cases: [string, boolean][] = [
    ["localhost", true],
    ["localhost:5000", true],
    ["127.0.0.1:5000", true],
    ["127.5.6.7", true],
    ["[::1]:5000", true],
    ["build.internal:5000", true],
    ["build.internal:6000", false],
    ["10.20.30.40:5000", true],
    ["11.0.0.1", false],
    ["legacy.internal:443", true],
    ["192.168.1.5:5000", true],
    ["192.168.1.5:6000", false],
    ["docker.io", false],
    ["localhost.example.com", false],
    ["128.0.0.1", false],
  ];
  for (const [host, want] of cases) assert.equal(isInsecureRegistry(config, host), want, host);
  assert.equal(isInsecureRegistry(emptyRegistriesConfig(), "10.1.1.1"), false);
});

Deno.test("registryEndpoints() puts mirrors first for pulls and HTTP after HTTPS when insecure", () => {
  const config = parseRegistriesConfig(
    JSON.stringify({ registries: { "docker.io": { mirrors: ["https://m.example"] } } }),
    "f",
  );
  const cases: [string, "pull" | "push", string[]][] = [
    ["docker.io", "pull", ["https://m.example", "https://registry-1.docker.io"]],
    ["docker.io", "push", ["https://registry-1.docker.io"]],
    ["ghcr.io", "pull", ["https://ghcr.io"]],
    ["localhost:5000", "pull", ["https://localhost:5000", "http://localhost:5000"]],
    ["127.0.0.1:5000", "push", ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]],
  ];
  for (const [registry, purpose, urls] of cases) {
    assert.deepEqual(
      registryEndpoints(config, registry, purpose).map((e) => e.url),
      urls,
      `${registry} ${purpose}`,
    );
  }
  assert.deepEqual(registryEndpoints(config, "docker.io", "pull").map((e) => e.mirror), [
    true,
    false,
  ]);
});

Deno.test("loadRegistriesConfig() treats a missing file as empty and reads a present one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "trun-regconf-" });
  try {
    assert.deepEqual(await loadRegistriesConfig(`${dir}/none.json`), emptyRegistriesConfig());
    await Deno.writeTextFile(`${dir}/r.json`, '{"insecureRegistries": ["a.internal"]}');
    assert.deepEqual((await loadRegistriesConfig(`${dir}/r.json`)).insecureRegistries, [
      "a.internal",
    ]);
    await Deno.writeTextFile(`${dir}/bad.json`, "{");
    await assert.rejects(loadRegistriesConfig(`${dir}/bad.json`), /bad.json": invalid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
