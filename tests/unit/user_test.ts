/**
 * Unit tests for lib/spec/user.ts: account file parsing and the
 * `-u user[:group]` / `--group-add` rules of runc and Docker.
 */

import assert from "node:assert/strict";
import {
  type AccountFiles,
  parseGroup,
  parsePasswd,
  type ResolvedUser,
  resolveUser,
} from "../../lib/spec/user.ts";

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
bob:x:1000:1000:Bob,,,:/home/bob:/bin/bash
nohome:x:1001:1001:::/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
bob:x:2000:2000:second bob:/home/bob2:/bin/sh
`;

const GROUP = `root:x:0:
wheel:x:10:root,bob
staff:x:50:alice, bob ,
audio:x:29:
users:x:100:
bob:x:1000:
www-data:x:33:
`;

const FILES: AccountFiles = { passwd: PASSWD, group: GROUP };

Deno.test("parsePasswd() reads entries and skips comments, blanks and malformed lines", () => {
  const text = [
    "root:x:0:0:root:/root:/bin/sh",
    "",
    "   # indented comment",
    "+nisuser::::::",
    "-excluded::::::",
    "bad:x:notanumber:0::/:/bin/sh",
    "short:x:5",
    ":x:7:7::/:/bin/sh",
    "neg:x:-1:0::/:/bin/sh",
    "huge:x:4294967295:0::/:/bin/sh",
    "crlf:x:8:9:gecos:/home/crlf:/bin/sh\r",
    "fourfields:x:12:13",
  ].join("\n");
  assert.deepEqual(parsePasswd(text), [
    { name: "root", password: "x", uid: 0, gid: 0, gecos: "root", home: "/root", shell: "/bin/sh" },
    {
      name: "crlf",
      password: "x",
      uid: 8,
      gid: 9,
      gecos: "gecos",
      home: "/home/crlf",
      shell: "/bin/sh",
    },
    { name: "fourfields", password: "x", uid: 12, gid: 13, gecos: "", home: "", shell: "" },
  ]);
});

Deno.test("parseGroup() reads members and skips malformed lines", () => {
  const text =
    "wheel:x:10:root,bob\nempty:x:11:\nnomembers:x:12\n#c\nbad:x:z:a\nsp:x:13: a , ,b,\n";
  assert.deepEqual(parseGroup(text), [
    { name: "wheel", password: "x", gid: 10, members: ["root", "bob"] },
    { name: "empty", password: "x", gid: 11, members: [] },
    { name: "nomembers", password: "x", gid: 12, members: [] },
    { name: "sp", password: "x", gid: 13, members: ["a", "b"] },
  ]);
});

interface Case {
  name: string;
  spec: string | undefined;
  files?: AccountFiles;
  groupAdd?: string[];
  want: ResolvedUser;
}

const CASES: Case[] = [
  {
    name: "an empty spec is root with root's entry and groups",
    spec: undefined,
    want: { uid: 0, gid: 0, additionalGids: [0, 10], home: "/root", name: "root" },
  },
  {
    name: "an empty string is the same as no spec",
    spec: "",
    want: { uid: 0, gid: 0, additionalGids: [0, 10], home: "/root", name: "root" },
  },
  {
    name: "a name takes uid, gid, home and supplementary groups from the files",
    spec: "bob",
    want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50], home: "/home/bob", name: "bob" },
  },
  {
    name: "a uid with a passwd entry takes that entry's gid, home and groups",
    spec: "1000",
    want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50], home: "/home/bob", name: "bob" },
  },
  {
    name: "a uid without a passwd entry gets gid 0 and home /",
    spec: "1234",
    want: { uid: 1234, gid: 0, additionalGids: [0], home: "/" },
  },
  {
    name: "name:group takes the group's gid and no supplementary groups",
    spec: "bob:audio",
    want: { uid: 1000, gid: 29, additionalGids: [29], home: "/home/bob", name: "bob" },
  },
  {
    name: "uid:gid needs no entries at all",
    spec: "4321:8765",
    want: { uid: 4321, gid: 8765, additionalGids: [8765], home: "/" },
  },
  {
    name: "name:gid with a numeric group not in /etc/group",
    spec: "www-data:4242",
    want: { uid: 33, gid: 4242, additionalGids: [4242], home: "/var/www", name: "www-data" },
  },
  {
    name: ":group keeps root and changes the group",
    spec: ":staff",
    want: { uid: 0, gid: 50, additionalGids: [50], home: "/root", name: "root" },
  },
  {
    name: "the first of duplicate passwd names wins",
    spec: "bob",
    files: { passwd: "bob:x:7:8::/a:/bin/sh\nbob:x:9:9::/b:/bin/sh\n", group: null },
    want: { uid: 7, gid: 8, additionalGids: [8], home: "/a", name: "bob" },
  },
  {
    name: "an empty home field falls back to /",
    spec: "nohome",
    want: { uid: 1001, gid: 1001, additionalGids: [1001], home: "/", name: "nohome" },
  },
  {
    name: "--group-add takes names and numbers, known or not, without duplicates",
    spec: "bob",
    groupAdd: ["audio", "100", "7777", "wheel"],
    want: {
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 10, 50, 29, 100, 7777],
      home: "/home/bob",
      name: "bob",
    },
  },
  {
    name: "--group-add still applies with an explicit group",
    spec: "1234:5",
    groupAdd: ["users"],
    want: { uid: 1234, gid: 5, additionalGids: [5, 100], home: "/" },
  },
  {
    name: "missing files: an empty spec is root with home /",
    spec: undefined,
    files: { passwd: null, group: null },
    want: { uid: 0, gid: 0, additionalGids: [0], home: "/" },
  },
  {
    name: "missing files: numeric ids still work",
    spec: "1000:1000",
    files: { passwd: null, group: null },
    groupAdd: ["27"],
    want: { uid: 1000, gid: 1000, additionalGids: [1000, 27], home: "/" },
  },
  {
    name: "missing group file: a named user gets no supplementary groups",
    spec: "bob",
    files: { passwd: PASSWD, group: null },
    want: { uid: 1000, gid: 1000, additionalGids: [1000], home: "/home/bob", name: "bob" },
  },
];

for (const c of CASES) {
  Deno.test(`resolveUser(): ${c.name}`, () => {
    assert.deepEqual(resolveUser(c.spec, c.files ?? FILES, c.groupAdd ?? []), c.want);
  });
}

interface ErrorCase {
  name: string;
  spec: string;
  files?: AccountFiles;
  groupAdd?: string[];
  message: string;
}

const ERRORS: ErrorCase[] = [
  {
    name: "an unknown name",
    spec: "alice",
    message: 'Unable to find user "alice": no matching entries in passwd file',
  },
  {
    name: "a name when the image has no /etc/passwd",
    spec: "bob",
    files: { passwd: null, group: GROUP },
    message: 'Unable to find user "bob": the image has no /etc/passwd; use a numeric uid',
  },
  {
    name: "an unknown group",
    spec: "bob:nogroup",
    message: 'Unable to find group "nogroup": no matching entries in group file',
  },
  {
    name: "a group name when the image has no /etc/group",
    spec: "1000:staff",
    files: { passwd: PASSWD, group: null },
    message: 'Unable to find group "staff": the image has no /etc/group; use a numeric gid',
  },
  {
    name: "an unknown --group-add name",
    spec: "bob",
    groupAdd: ["docker"],
    message: 'Unable to find group "docker": no matching entries in group file',
  },
  {
    name: "a uid out of range",
    spec: "2147483648",
    message:
      'Invalid user "2147483648": user id 2147483648 is out of range; use an id from 0 to 2147483647',
  },
  {
    name: "a gid out of range",
    spec: "1:99999999999",
    message:
      'Invalid user "1:99999999999": group id 99999999999 is out of range; use an id from 0 to 2147483647',
  },
  {
    name: "a --group-add gid out of range",
    spec: "bob",
    groupAdd: ["3000000000"],
    message:
      'Invalid --group-add "3000000000": group id 3000000000 is out of range; use an id from 0 to 2147483647',
  },
  {
    name: "more than one colon",
    spec: "a:b:c",
    message: 'Invalid user "a:b:c": use "user", "uid", "user:group" or "uid:gid"',
  },
];

for (const c of ERRORS) {
  Deno.test(`resolveUser() rejects ${c.name}`, () => {
    assert.throws(() => resolveUser(c.spec, c.files ?? FILES, c.groupAdd ?? []), {
      message: c.message,
    });
  });
}
