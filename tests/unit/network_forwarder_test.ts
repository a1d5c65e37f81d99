import assert from "node:assert/strict";
import { forwarderPlan, listenAddresses } from "../../lib/network/forwarder.ts";
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
