import assert from "node:assert/strict";
import {
  dockerPortMaps,
  isIPv6,
  parseExpose,
  parsePublish,
  portLines,
  portsColumn,
  publishAllBindings,
  publishBindings,
} from "../../lib/spec/ports.ts";

const PUBLISH: [string, ReturnType<typeof parsePublish>][] = [
  ["80", { hostIp: "", hostPorts: [0, 0], containerPorts: [80, 80], protocol: "tcp" }],
  ["8080:80", { hostIp: "", hostPorts: [8080, 8080], containerPorts: [80, 80], protocol: "tcp" }],
  ["127.0.0.1::80/udp", {
    hostIp: "127.0.0.1",
    hostPorts: [0, 0],
    containerPorts: [80, 80],
    protocol: "udp",
  }],
  ["[::1]:8080:80", {
    hostIp: "::1",
    hostPorts: [8080, 8080],
    containerPorts: [80, 80],
    protocol: "tcp",
  }],
  ["::1:8080:80", {
    hostIp: "::1",
    hostPorts: [8080, 8080],
    containerPorts: [80, 80],
    protocol: "tcp",
  }],
  ["8000-8001:80-81/TCP", {
    hostIp: "",
    hostPorts: [8000, 8001],
    containerPorts: [80, 81],
    protocol: "tcp",
  }],
  ["8000-8010:80", {
    hostIp: "",
    hostPorts: [8000, 8010],
    containerPorts: [80, 80],
    protocol: "tcp",
  }],
];

for (const [value, want] of PUBLISH) {
  Deno.test(`parsePublish() reads "${value}"`, () => {
    assert.deepEqual(parsePublish(value), want);
  });
}

const PUBLISH_ERRORS: [string, string][] = [
  ["8080:", "no port specified: 8080:<empty>"],
  ["1.2.3:8080:80", "invalid IP address: 1.2.3"],
  ["8080:http", "invalid containerPort: http"],
  ["x:80", "invalid hostPort: x"],
  ["0:80", "invalid hostPort: 0"],
  ["8080:70000", "invalid containerPort: 70000"],
  ["80/icmp", "invalid proto: icmp"],
  ["8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"],
  ["81-80", "invalid containerPort: 81-80"],
];

for (const [value, message] of PUBLISH_ERRORS) {
  Deno.test(`parsePublish() refuses "${value}" with Docker's message`, () => {
    assert.throws(() => parsePublish(value), { message });
  });
}

Deno.test("parsePublish() refuses sctp, which no helper forwards", () => {
  assert.throws(() => parsePublish("80/sctp"), /sctp: trun's network helpers forward only/);
});

Deno.test("isIPv6() accepts shortened and IPv4-tailed addresses, refuses others", () => {
  for (const a of ["::", "::1", "fe80::1", "2001:db8::8:800:200c:417a", "::ffff:1.2.3.4"]) {
    assert.equal(isIPv6(a), true, a);
  }
  for (const a of ["1.2.3.4", ":::", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7"]) {
    assert.equal(isIPv6(a), false, a);
  }
});

Deno.test("publishBindings() pairs ranges port by port and keeps a host range for one port", () => {
  assert.deepEqual(
    publishBindings([parsePublish("8000-8001:80-81"), parsePublish("9000-9005:53/udp")]),
    [
      { hostIp: "", hostPort: 8000, containerPort: 80, protocol: "tcp" },
      { hostIp: "", hostPort: 8001, containerPort: 81, protocol: "tcp" },
      { hostIp: "", hostPort: 0, containerPort: 53, protocol: "udp", hostPortRange: [9000, 9005] },
    ],
  );
  assert.deepEqual(publishBindings([parsePublish("80-81")]), [
    { hostIp: "", hostPort: 0, containerPort: 80, protocol: "tcp" },
    { hostIp: "", hostPort: 0, containerPort: 81, protocol: "tcp" },
  ]);
});

Deno.test("publishAllBindings() publishes exposed ports not already published", () => {
  const published = publishBindings([parsePublish("8080:80")]);
  assert.deepEqual(publishAllBindings(["80/tcp", "53/udp", "90-91"], published), [
    { hostIp: "", hostPort: 0, containerPort: 53, protocol: "udp" },
    { hostIp: "", hostPort: 0, containerPort: 90, protocol: "tcp" },
    { hostIp: "", hostPort: 0, containerPort: 91, protocol: "tcp" },
  ]);
});

Deno.test("parseExpose() refuses a bad port", () => {
  assert.throws(() => parseExpose("eighty"), /invalid range format for --expose specification/);
});

const BINDINGS = [
  { hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" as const },
  { hostIp: "127.0.0.1", hostPort: 5353, containerPort: 53, protocol: "udp" as const },
  { hostIp: "::1", hostPort: 8443, containerPort: 443, protocol: "tcp" as const },
];

Deno.test("portLines() prints Docker's lines, sorted by container port", () => {
  assert.deepEqual(portLines(BINDINGS, "web"), [
    "53/udp -> 127.0.0.1:5353",
    "80/tcp -> 0.0.0.0:8080",
    "80/tcp -> [::]:8080",
    "443/tcp -> [::1]:8443",
  ]);
  assert.deepEqual(portLines(BINDINGS, "web", "80"), ["0.0.0.0:8080", "[::]:8080"]);
  assert.deepEqual(portLines(BINDINGS, "web", "53/udp"), ["127.0.0.1:5353"]);
});

Deno.test("portLines() says which port is not published", () => {
  assert.throws(() => portLines(BINDINGS, "web", "53"), {
    message: "No public port '53/tcp' published for web",
  });
  assert.throws(() => portLines(BINDINGS, "web", "x"), { message: "Invalid port: x" });
});

Deno.test("dockerPortMaps() gives NetworkSettings.Ports and HostConfig.PortBindings", () => {
  const { ports, portBindings } = dockerPortMaps(BINDINGS.slice(0, 2), ["80/tcp", "9000/tcp"]);
  assert.deepEqual(ports, {
    "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }, { HostIp: "::", HostPort: "8080" }],
    "9000/tcp": null,
    "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }],
  });
  assert.deepEqual(portBindings, {
    "80/tcp": [{ HostIp: "", HostPort: "8080" }],
    "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }],
  });
});

Deno.test("portsColumn() is ps's PORTS", () => {
  assert.equal(
    portsColumn(BINDINGS.slice(0, 2)),
    "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:5353->53/udp",
  );
});
