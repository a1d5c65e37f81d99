import assert from "node:assert/strict";
import { listenAddresses } from "../../lib/network/forwarder.ts";
import { forwarderPlan } from "../../lib/network/forwarder_plan.ts";
import { DatagramReader, frameDatagram } from "../../lib/network/relay.ts";
import type { ContainerRecord } from "../../lib/store/containers.ts";

const TCP = { hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80, protocol: "tcp" as const };

Deno.test("forwarderPlan() targets the first network's address, only with published ports", () => {
  const rec = (network: object) => ({ id: "x", network }) as unknown as ContainerRecord;
  const networks = {
    a: { ip: "10.89.0.5", aliases: [] },
    b: { ip: "10.89.1.5", aliases: [] },
  };
  const plan = forwarderPlan(rec({ mode: "a,b", ports: [TCP], networks }));
  assert.equal(plan?.ip, "10.89.0.5");
  assert.deepEqual(plan?.ports, [TCP]);
  assert.equal(typeof plan?.store, "string");
  assert.equal(forwarderPlan(rec({ mode: "a", networks })), undefined);
  assert.equal(forwarderPlan(rec({ mode: "pasta", ports: [TCP] })), undefined);
});

Deno.test("listenAddresses(): every address is IPv6's dual-stack any, then IPv4's", () => {
  assert.deepEqual(listenAddresses(""), ["::", "0.0.0.0"]);
  assert.deepEqual(listenAddresses("127.0.0.1"), ["127.0.0.1"]);
  assert.deepEqual(listenAddresses("::1"), ["::1"]);
});

Deno.test("frameDatagram() and DatagramReader: datagrams survive any split of the stream", () => {
  const a = new TextEncoder().encode("hello");
  const b = new Uint8Array(300).fill(7);
  const empty = new Uint8Array(0);
  const stream = new Uint8Array([
    ...frameDatagram(a),
    ...frameDatagram(empty),
    ...frameDatagram(b),
  ]);
  assert.deepEqual([...frameDatagram(a).subarray(0, 2)], [0, 5]);
  for (const cut of [1, 2, 3, 7, 8, 100, stream.length]) {
    const r = new DatagramReader();
    const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
    assert.deepEqual(got, [a, empty, b], `cut at ${cut}`);
  }
  // One byte at a time.
  const r = new DatagramReader();
  const got: Uint8Array[] = [];
  for (const byte of stream) got.push(...r.push(new Uint8Array([byte])));
  assert.deepEqual(got, [a, empty, b]);
});
