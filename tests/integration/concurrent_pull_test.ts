// Two `trun pull` processes of one image at once into one store: both
// succeed, and each blob crosses the network once.
import assert from "node:assert/strict";
import { hostCapabilities, requires, trunSandbox } from "../_harness/host.ts";
import { startFixtureRegistry } from "../_harness/registry.ts";

const caps = await hostCapabilities();
const gate = requires(caps, "userns", "dockerRegistry");

/**
 * A proxy in front of the registry that counts blob downloads and slows
 * them, so the two pulls surely overlap.
 */
function countingProxy(upstream: string, delayMs: number) {
  const blobGets = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const m = url.pathname.match(/\/blobs\/(sha256:[0-9a-f]{64})$/);
    if (m && req.method === "GET") {
      blobGets.set(m[1]!, (blobGets.get(m[1]!) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, delayMs));
    }
    const res = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      redirect: "manual",
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
  return { host: `127.0.0.1:${server.addr.port}`, blobGets, stop: () => server.shutdown() };
}

Deno.test({
  name: `two trun pulls of one image at once both succeed with one download per blob${gate.suffix}`,
  ignore: gate.ignore,
  fn: async () => {
    await using reg = await startFixtureRegistry({ images: ["trun-fixtures/layered:latest"] });
    const proxy = countingProxy(reg.host, 400);
    try {
      await using sb = await trunSandbox();
      const ref = `${proxy.host}/trun-fixtures/layered:latest`;
      const [a, b] = await Promise.all([sb.run(["pull", ref]), sb.run(["pull", ref])]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      const images = await sb.run(["images", "-q", "--no-trunc"]);
      const ids = images.stdout.trim().split("\n");
      assert.equal(ids.length, 1);
      // The config is read by each pull's resolve step (a few hundred bytes,
      // outside the store's locks); every layer must come down once.
      const layers = [...proxy.blobGets].filter(([digest]) => digest !== ids[0]);
      assert.equal(layers.length, 3, `3 layers fetched: ${[...proxy.blobGets.keys()]}`);
      for (const [digest, n] of layers) assert.equal(n, 1, `layer ${digest} downloaded ${n} times`);
      const run = await sb.run(["run", "--pull", "never", ref, "ls", "/data"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, "b\ndir\n");
    } finally {
      await proxy.stop();
    }
  },
});
