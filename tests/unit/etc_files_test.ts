/** Unit tests for lib/spec/etc_files.ts: /etc/hosts, /etc/resolv.conf and the flags behind them. */

import assert from "node:assert/strict";
import {
  checkDnsSearch,
  checkDnsServer,
  containerModeConflict,
  etcFileContents,
  type EtcFilesInput,
  hostsFile,
  isIpAddress,
  isLoopbackAddress,
  parseExtraHost,
  resolvConfFile,
} from "../../lib/spec/etc_files.ts";
import type { NetworkMode } from "../../lib/spec/network_mode.ts";

const LOOPBACK = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
const HOST_HOSTS = "127.0.0.1\tlocalhost\n192.168.1.10\tbuildhost\n";
const HOST_RESOLV = "nameserver 192.168.1.1\n";

function input(o: Partial<EtcFilesInput> = {}): EtcFilesInput {
  return {
    hostname: "web",
    network: { kind: "none" },
    host: { hosts: HOST_HOSTS, resolvConf: HOST_RESOLV },
    ...o,
  };
}

// ---------------------------------------------------------------------------
// addresses and flag values

Deno.test("isIpAddress() takes IPv4 and IPv6 as Go's net.ParseIP does", () => {
  for (
    const ok of [
      "10.0.0.1",
      "0.0.0.0",
      "255.255.255.255",
      "::1",
      "2001:db8::1",
      "::ffff:1.2.3.4",
      "fe80::1",
    ]
  ) {
    assert.equal(isIpAddress(ok), true, ok);
  }
  for (
    const bad of [
      "1.2.3",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.4.5",
      "",
      "host",
      "::1%lo",
      "[::1]",
      "1:2:3:4:5:6:7:8:9",
      "a.b.c.d",
    ]
  ) {
    assert.equal(isIpAddress(bad), false, bad);
  }
});

Deno.test("isLoopbackAddress() knows 127.0.0.0/8 and ::1, and nothing else", () => {
  for (const ip of ["127.0.0.1", "127.0.0.53", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1"]) {
    assert.equal(isLoopbackAddress(ip), true, ip);
  }
  for (const ip of ["10.0.0.1", "192.168.1.1", "2001:db8::1", "fe80::1"]) {
    assert.equal(isLoopbackAddress(ip), false, ip);
  }
});

const EXTRA_HOSTS: [string, { name: string; address: string }][] = [
  ["db:10.0.0.5", { name: "db", address: "10.0.0.5" }],
  ["db=10.0.0.5", { name: "db", address: "10.0.0.5" }],
  ["v6:::1", { name: "v6", address: "::1" }],
  ["v6:2001:db8::1", { name: "v6", address: "2001:db8::1" }],
  ["v6:[2001:db8::1]", { name: "v6", address: "2001:db8::1" }],
  ["v6=[::1]", { name: "v6", address: "::1" }],
  ["gw:host-gateway", { name: "gw", address: "host-gateway" }],
];
for (const [value, want] of EXTRA_HOSTS) {
  Deno.test(`parseExtraHost() reads "${value}"`, () =>
    assert.deepEqual(parseExtraHost(value), want));
}

const BAD_EXTRA_HOSTS: [string, RegExp][] = [
  ["db", /bad format for add-host: "db"$/],
  [":10.0.0.5", /bad format for add-host/],
  ["=10.0.0.5", /bad format for add-host/],
  ["db:", /invalid IP address in add-host: ""$/],
  ["db:10.0.0", /invalid IP address in add-host: "10.0.0"$/],
  ["db:somehost", /invalid IP address in add-host: "somehost"$/],
  ["db:[10.0.0.5", /invalid IP address in add-host: "\[10.0.0.5"$/],
];
for (const [value, want] of BAD_EXTRA_HOSTS) {
  Deno.test(`parseExtraHost() refuses "${value}" with Docker's message`, () => {
    assert.throws(() => parseExtraHost(value), want);
  });
}

Deno.test("checkDnsServer() takes IP addresses and refuses names with Docker's message", () => {
  assert.equal(checkDnsServer("1.1.1.1"), "1.1.1.1");
  assert.equal(checkDnsServer(" 2001:4860:4860::8888 "), "2001:4860:4860::8888");
  assert.throws(
    () => checkDnsServer("dns.example"),
    /^Error: IP address is not correctly formatted: dns.example$/,
  );
  assert.throws(() => checkDnsServer("1.2.3"), /not correctly formatted: 1.2.3/);
});

Deno.test("checkDnsSearch() takes domains and '.', refuses malformed ones", () => {
  for (const ok of [".", "example.org", "corp.local.", "a", "x-1.y2"]) {
    assert.equal(checkDnsSearch(ok), ok);
  }
  for (const bad of ["-a.org", "a..org", "a_b.org", "x".repeat(256), ""]) {
    assert.throws(() => checkDnsSearch(bad), /is not a valid domain/, bad);
  }
});

Deno.test("containerModeConflict() gives Docker's message for each flag that container: decides", () => {
  assert.equal(containerModeConflict({}), undefined);
  assert.equal(
    containerModeConflict({ hostname: "x" }),
    "conflicting options: hostname and the network mode",
  );
  assert.equal(
    containerModeConflict({ dns: ["1.1.1.1"] }),
    "conflicting options: dns and the network mode",
  );
  assert.equal(
    containerModeConflict({ dnsSearch: ["a.org"] }),
    "conflicting options: dns and the network mode",
  );
  assert.equal(
    containerModeConflict({ dnsOptions: ["ndots:1"] }),
    "conflicting options: dns and the network mode",
  );
  assert.equal(
    containerModeConflict({ addHosts: ["a:1.2.3.4"] }),
    "conflicting options: custom host-to-IP mapping and the network mode",
  );
  for (const o of [{ publish: ["80"] }, { publishAll: true }]) {
    assert.equal(
      containerModeConflict(o),
      "conflicting options: port publishing and the container type network mode",
    );
  }
  assert.equal(
    containerModeConflict({ expose: ["80"] }),
    "conflicting options: port exposing and the container type network mode",
  );
});

// ---------------------------------------------------------------------------
// /etc/hosts

const HOSTS: [string, Partial<EtcFilesInput>, string][] = [
  ["loopback and the hostname on 127.0.1.1 with network none", {}, `${LOOPBACK}127.0.1.1\tweb\n`],
  [
    "the container's name beside the hostname",
    { name: "quirky_bell" },
    `${LOOPBACK}127.0.1.1\tweb quirky_bell\n`,
  ],
  ["the name once when it is the hostname", { name: "web" }, `${LOOPBACK}127.0.1.1\tweb\n`],
  [
    "the fully qualified name first with --domainname",
    { domainname: "example.org", name: "c1" },
    `${LOOPBACK}127.0.1.1\tweb.example.org web c1\n`,
  ],
  [
    "the container's address when known, and the host's names at the gateway",
    {
      network: { kind: "pasta", options: [] },
      address: "192.168.1.10",
      hostGateway: "169.254.1.2",
      name: "c1",
    },
    `${LOOPBACK}192.168.1.10\tweb c1\n169.254.1.2\thost.containers.internal host.docker.internal\n`,
  ],
  [
    "no host names without a gateway",
    { network: { kind: "slirp4netns", options: [] }, name: "c1" },
    `${LOOPBACK}127.0.1.1\tweb c1\n`,
  ],
  [
    "--add-host lines (IPv6 unbracketed) before the container's own",
    { addHosts: ["db:10.0.0.5", "v6:[2001:db8::1]"] },
    `${LOOPBACK}10.0.0.5\tdb\n2001:db8::1\tv6\n127.0.1.1\tweb\n`,
  ],
  [
    "host-gateway resolved to the gateway",
    {
      network: { kind: "pasta", options: [] },
      hostGateway: "169.254.1.2",
      addHosts: ["gw:host-gateway"],
    },
    `${LOOPBACK}169.254.1.2\tgw\n127.0.1.1\tweb\n169.254.1.2\thost.containers.internal host.docker.internal\n`,
  ],
  [
    "a host alias the user mapped left to the user",
    {
      network: { kind: "pasta", options: [] },
      hostGateway: "169.254.1.2",
      addHosts: ["host.docker.internal:10.9.9.9"],
    },
    `${LOOPBACK}10.9.9.9\thost.docker.internal\n127.0.1.1\tweb\n169.254.1.2\thost.containers.internal\n`,
  ],
  // The host network: today's behaviour, plus what Docker adds.
  [
    "the host's file with the host network",
    { network: { kind: "host" } },
    `${HOST_HOSTS}127.0.1.1\tweb\n`,
  ],
  [
    "a loopback-only file when the host has none",
    { network: { kind: "host" }, host: { hosts: null, resolvConf: null } },
    `${LOOPBACK}127.0.1.1\tweb\n`,
  ],
  [
    "the host's file unchanged when it names the host",
    {
      network: { kind: "host" },
      host: { hosts: "127.0.0.1 localhost\n10.0.0.1 db web\n", resolvConf: null },
    },
    "127.0.0.1 localhost\n10.0.0.1 db web\n",
  ],
  [
    "a final newline added",
    { network: { kind: "host" }, host: { hosts: "127.0.0.1 localhost", resolvConf: null } },
    "127.0.0.1 localhost\n127.0.1.1\tweb\n",
  ],
  [
    "the name added when it is only in a comment",
    { network: { kind: "host" }, host: { hosts: "10.0.0.1 db # web\n", resolvConf: null } },
    "10.0.0.1 db # web\n127.0.1.1\tweb\n",
  ],
  [
    "--add-host appended to the host's file, host-gateway on the host's loopback",
    { network: { kind: "host" }, addHosts: ["db:10.0.0.5", "gw:host-gateway"] },
    `${HOST_HOSTS}10.0.0.5\tdb\n127.0.0.1\tgw\n127.0.1.1\tweb\n`,
  ],
  [
    "no host aliases in the host's network",
    { network: { kind: "host" }, hostGateway: "169.254.1.2" },
    `${HOST_HOSTS}127.0.1.1\tweb\n`,
  ],
];
for (const [what, o, want] of HOSTS) {
  Deno.test(`hostsFile() gives ${what}`, () => assert.equal(hostsFile(input(o)), want));
}

Deno.test("hostsFile() refuses host-gateway without a gateway, naming the entry and the network", () => {
  assert.throws(
    () => hostsFile(input({ addHosts: ["gw:host-gateway"] })),
    /cannot resolve "host-gateway" in --add-host "gw:host-gateway": the none network gives/,
  );
  assert.throws(
    () =>
      hostsFile(
        input({ network: { kind: "slirp4netns", options: [] }, addHosts: ["gw:host-gateway"] }),
      ),
    /the slirp4netns network gives the container no address for the host/,
  );
});

// ---------------------------------------------------------------------------
// /etc/resolv.conf

const RESOLVED =
  "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
const DNSMASQ = "nameserver 127.0.0.1\n";
const MIXED =
  "domain corp.example\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver ::1\nnameserver 2001:db8::53\n";
const pasta: NetworkMode = { kind: "pasta", options: [] };

const RESOLV: [string, Partial<EtcFilesInput>, string | null][] = [
  ["the host's file as it is with the host network", {
    network: { kind: "host" },
    host: { hosts: null, resolvConf: RESOLVED },
  }, RESOLVED],
  ["nothing when the host has none, with the host network", {
    network: { kind: "host" },
    host: { hosts: null, resolvConf: null },
  }, null],
  [
    "--dns, --dns-search and --dns-option merged into the host's file with the host network",
    {
      network: { kind: "host" },
      host: { hosts: null, resolvConf: RESOLVED },
      dns: ["1.1.1.1"],
      dnsSearch: ["corp.local"],
      dnsOptions: ["ndots:2"],
    },
    "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 1.1.1.1\nsearch corp.local\noptions ndots:2\n",
  ],
  [
    "the host's loopback resolver kept with the host network when only --dns-search is given",
    {
      network: { kind: "host" },
      host: { hosts: null, resolvConf: RESOLVED },
      dnsSearch: ["a.org", "b.org"],
    },
    "# This is /run/systemd/resolve/stub-resolv.conf\noptions edns0 trust-ad\nnameserver 127.0.0.53\nsearch a.org b.org\n",
  ],
  [
    "the helper's forwarder instead of systemd-resolved's stub",
    { network: pasta, dnsServers: ["169.254.1.1"], host: { hosts: null, resolvConf: RESOLVED } },
    "# This is /run/systemd/resolve/stub-resolv.conf\noptions edns0 trust-ad\nsearch lan\nnameserver 169.254.1.1\n",
  ],
  [
    "the helper's forwarder instead of the host's other resolvers too",
    { network: pasta, dnsServers: ["169.254.1.1"], host: { hosts: null, resolvConf: HOST_RESOLV } },
    "nameserver 169.254.1.1\n",
  ],
  [
    "the host's non-loopback resolvers without a forwarder",
    { network: pasta, host: { hosts: null, resolvConf: MIXED } },
    "domain corp.example\nnameserver 10.1.1.1\nnameserver 2001:db8::53\n",
  ],
  [
    "Docker's fallback when dnsmasq's 127.0.0.1 is all there is",
    { network: pasta, host: { hosts: null, resolvConf: DNSMASQ } },
    "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
  ],
  [
    "Docker's fallback when the host has no file",
    { network: { kind: "none" }, host: { hosts: null, resolvConf: null } },
    "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
  ],
  [
    "--dns over the forwarder",
    {
      network: pasta,
      dnsServers: ["169.254.1.1"],
      dns: ["9.9.9.9", "2620:fe::fe"],
      host: { hosts: null, resolvConf: DNSMASQ },
    },
    "nameserver 9.9.9.9\nnameserver 2620:fe::fe\n",
  ],
  [
    "--dns-search replacing both search and domain lines",
    {
      network: pasta,
      dnsSearch: ["x.org"],
      host: { hosts: null, resolvConf: `${MIXED}search y.org\n` },
    },
    "nameserver 10.1.1.1\nnameserver 2001:db8::53\nsearch x.org\n",
  ],
  [
    "--dns-search . removing the search domains",
    { network: pasta, dnsSearch: ["."], host: { hosts: null, resolvConf: RESOLVED } },
    "# This is /run/systemd/resolve/stub-resolv.conf\noptions edns0 trust-ad\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n",
  ],
  [
    "--dns-option replacing the host's options",
    {
      network: pasta,
      dnsOptions: ["ndots:5", "timeout:1"],
      host: { hosts: null, resolvConf: RESOLVED },
    },
    "# This is /run/systemd/resolve/stub-resolv.conf\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions ndots:5 timeout:1\n",
  ],
];
for (const [what, o, want] of RESOLV) {
  Deno.test(`resolvConfFile() gives ${what}`, () => assert.equal(resolvConfFile(input(o)), want));
}

Deno.test("etcFileContents() gives the hostname, hosts and resolv.conf together", () => {
  assert.deepEqual(etcFileContents(input({ name: "c1" })), {
    hostname: "web\n",
    hosts: `${LOOPBACK}127.0.1.1\tweb c1\n`,
    "resolv.conf": HOST_RESOLV,
  });
});
