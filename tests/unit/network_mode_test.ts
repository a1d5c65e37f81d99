/** Unit tests for lib/spec/network_mode.ts: `--network` values. */

import assert from "node:assert/strict";
import { formatNetworkMode, parseNetworkMode } from "../../lib/spec/network_mode.ts";

Deno.test("parseNetworkMode() reads the default names as the private network", () => {
  for (const v of [undefined, "", "default", "bridge", "private"]) {
    assert.deepEqual(parseNetworkMode(v), { kind: "private" }, String(v));
  }
});

Deno.test("parseNetworkMode() reads none, host, helpers with options, container: and names", () => {
  assert.deepEqual(parseNetworkMode("none"), { kind: "none" });
  assert.deepEqual(parseNetworkMode("host"), { kind: "host" });
  assert.deepEqual(parseNetworkMode("pasta"), { kind: "pasta", options: [] });
  assert.deepEqual(parseNetworkMode("pasta:-T,8080,--ipv4-only"), {
    kind: "pasta",
    options: ["-T", "8080", "--ipv4-only"],
  });
  assert.deepEqual(parseNetworkMode("slirp4netns:allow_host_loopback=true,mtu=1500"), {
    kind: "slirp4netns",
    options: ["allow_host_loopback=true", "mtu=1500"],
  });
  assert.deepEqual(parseNetworkMode("container:web"), { kind: "container", container: "web" });
  assert.deepEqual(parseNetworkMode("app_net-1.x"), { kind: "network", name: "app_net-1.x" });
});

Deno.test("parseNetworkMode() refuses malformed values with the accepted forms", () => {
  assert.throws(() => parseNetworkMode("container:"), /container: needs a name or id/);
  assert.throws(() => parseNetworkMode("pasta:-T,,x"), /empty option/);
  assert.throws(() => parseNetworkMode("bogus:x"), /use none, host, pasta/);
  assert.throws(() => parseNetworkMode("-net"), /use none, host, pasta/);
  assert.throws(() => parseNetworkMode("a b"), /invalid --network "a b"/);
});

Deno.test("formatNetworkMode() gives back what parseNetworkMode() read", () => {
  for (const v of ["none", "host", "private", "pasta", "pasta:-T,80", "slirp4netns:mtu=9000"]) {
    assert.equal(formatNetworkMode(parseNetworkMode(v)), v);
  }
  assert.equal(formatNetworkMode(parseNetworkMode("container:abc")), "container:abc");
  assert.equal(formatNetworkMode(parseNetworkMode("backend")), "backend");
});
