// lib/container/changes.ts: Docker's A/C/D lines from layers given in
// memory, one table row per whiteout form and directory rule.
import assert from "node:assert/strict";
import {
  computeChanges,
  formatChanges,
  type LayerEntry,
  type LayerTree,
  lowerChildren,
  lowerEntry,
} from "../../lib/container/changes.ts";

/** A tree in memory: paths (no leading `/`) to entries; parents are made as plain directories. */
function tree(spec: Record<string, Partial<LayerEntry>>): LayerTree {
  const entries = new Map<string, LayerEntry>();
  const add = (rel: string, e: Partial<LayerEntry>) => {
    entries.set(rel, { type: "file", mode: 0o644, uid: 0, gid: 0, ...e });
  };
  for (const [rel, e] of Object.entries(spec)) {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!entries.has(dir) && !(dir in spec)) add(dir, { type: "dir", mode: 0o755 });
    }
    add(rel, e);
  }
  return {
    entry: (
      rel,
    ) => (rel === "" ? { type: "dir", mode: 0o755, uid: 0, gid: 0 } : entries.get(rel) ?? null),
    children: (rel) => {
      if (rel !== "" && entries.get(rel)?.type !== "dir") return [];
      const prefix = rel === "" ? "" : `${rel}/`;
      return [...entries.keys()]
        .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes("/"))
        .map((p) => p.slice(prefix.length));
    },
  };
}

const DIR: Partial<LayerEntry> = { type: "dir", mode: 0o755 };
const FILE: Partial<LayerEntry> = { type: "file" };
const WHITEOUT: Partial<LayerEntry> = { type: "char", mode: 0, rdev: { major: 0, minor: 0 } };

const IMAGE = tree({
  "bin": DIR,
  "bin/sh": FILE,
  "bin/ls": FILE,
  "etc": DIR,
  "etc/passwd": FILE,
  "etc/conf.d": DIR,
  "etc/conf.d/a": FILE,
  "etc/conf.d/b": FILE,
  "home": DIR,
  "home/app": DIR,
  "home/app/.profile": FILE,
  "tmp": { type: "dir", mode: 0o1777 },
});

const CASES: {
  name: string;
  upper: Record<string, Partial<LayerEntry>>;
  lowers?: LayerTree[];
  ignore?: string[];
  want: string[];
}[] = [
  { name: "an empty writable layer changes nothing", upper: {}, want: [] },
  {
    name: "a new file is A, its existing parent C",
    upper: { "tmp": { type: "dir", mode: 0o1777 }, "tmp/new": FILE },
    want: ["C /tmp", "A /tmp/new"],
  },
  {
    name: "a new directory lists everything in it as A",
    upper: { "srv/www/index.html": FILE, "srv/www/img": DIR },
    want: ["A /srv", "A /srv/www", "A /srv/www/img", "A /srv/www/index.html"],
  },
  {
    name: "a copied-up file is C; its parent only because of it",
    upper: { "etc": DIR, "etc/passwd": FILE },
    want: ["C /etc", "C /etc/passwd"],
  },
  {
    name: "a directory whose own mode changed is C alone",
    upper: { "etc": { type: "dir", mode: 0o700 } },
    want: ["C /etc"],
  },
  {
    name: "a copied-up directory with nothing changed in it is not reported",
    upper: { "home": DIR, "home/app": DIR },
    want: [],
  },
  {
    name: "kernel whiteout (0/0 char device) is D",
    upper: { "bin": DIR, "bin/ls": WHITEOUT },
    want: ["C /bin", "D /bin/ls"],
  },
  {
    name: "a char device that is not 0/0 is a file like any other",
    upper: { "dev/null": { type: "char", rdev: { major: 1, minor: 3 } } },
    want: ["A /dev", "A /dev/null"],
  },
  {
    name: "xwhiteout (file with overlay.whiteout) is D",
    upper: { "bin": DIR, "bin/ls": { type: "file", whiteoutXattr: true } },
    want: ["C /bin", "D /bin/ls"],
  },
  {
    name: "fuse-overlayfs .wh.NAME is D of NAME",
    upper: { "bin": DIR, "bin/.wh.ls": FILE },
    want: ["C /bin", "D /bin/ls"],
  },
  {
    name: "a deleted directory is one D, not its content",
    upper: { "home": DIR, "home/app": WHITEOUT },
    want: ["C /home", "D /home/app"],
  },
  {
    name: "an opaque directory (user.overlay.opaque=y) is C with D for what it hides",
    upper: {
      "etc": DIR,
      "etc/conf.d": { type: "dir", mode: 0o755, opaque: "y" },
      "etc/conf.d/a": FILE,
      "etc/conf.d/c": FILE,
    },
    want: ["C /etc", "C /etc/conf.d", "C /etc/conf.d/a", "D /etc/conf.d/b", "A /etc/conf.d/c"],
  },
  {
    name: "an opaque directory by .wh..wh..opq (fuse-overlayfs) is the same",
    upper: { "etc": DIR, "etc/conf.d": DIR, "etc/conf.d/.wh..wh..opq": FILE },
    want: ["C /etc", "C /etc/conf.d", "D /etc/conf.d/a", "D /etc/conf.d/b"],
  },
  {
    name: "overlay.opaque=x (a directory holding xwhiteouts) is not opaque",
    upper: { "etc": DIR, "etc/conf.d": { type: "dir", mode: 0o755, opaque: "x" } },
    want: [],
  },
  {
    name: "an opaque directory the image does not have is simply A",
    upper: { "new": { type: "dir", mode: 0o755, opaque: "y" }, "new/x": FILE },
    want: ["A /new", "A /new/x"],
  },
  {
    name: "a file replaced by a directory: C, and its content A",
    upper: { "etc": DIR, "etc/passwd": DIR, "etc/passwd/x": FILE },
    want: ["C /etc", "C /etc/passwd", "A /etc/passwd/x"],
  },
  {
    name: "aufs metadata (.wh..wh.plnk) is not a change",
    upper: { ".wh..wh.plnk": DIR, ".wh..wh.plnk/1.2": FILE },
    want: [],
  },
  {
    name: "mount points the runtime made are left out",
    upper: { "etc": DIR, "etc/hosts": FILE, "etc/resolv.conf": FILE, "proc": DIR },
    ignore: ["/etc/hosts", "/etc/resolv.conf", "/proc"],
    want: [],
  },
  {
    name: "Docker's order: depth first, names sorted, a directory before its content",
    upper: { "a-b": FILE, "a": DIR, "a/b": FILE, "B": FILE },
    want: ["A /B", "A /a", "A /a/b", "A /a-b"],
  },
  {
    name: "a path the upper layer recreates over a lower whiteout is A",
    upper: { "opt/tool": FILE },
    lowers: [tree({ "opt": DIR, "opt/tool": WHITEOUT }), tree({ "opt": DIR, "opt/tool": FILE })],
    want: ["C /opt", "A /opt/tool"],
  },
];

for (const c of CASES) {
  Deno.test(`computeChanges(): ${c.name}`, () => {
    const got = computeChanges(tree(c.upper), c.lowers ?? [IMAGE], new Set(c.ignore ?? []));
    assert.deepEqual(formatChanges(got), c.want);
  });
}

Deno.test("lowerEntry() merges layers: whiteouts, files over directories and opaque directories hide what is below", () => {
  const top = tree({
    "a": WHITEOUT,
    "b": FILE,
    "c": { type: "dir", mode: 0o755, opaque: "y" },
    "c/kept": FILE,
    "d/.wh.gone": FILE,
  });
  const bottom = tree({
    "a/x": FILE,
    "b/x": FILE,
    "c/hidden": FILE,
    "d/gone": FILE,
    "d/stays": FILE,
  });
  const lowers = [top, bottom];
  assert.equal(lowerEntry(lowers, "a"), null);
  assert.equal(lowerEntry(lowers, "a/x"), null);
  assert.equal(lowerEntry(lowers, "b")?.type, "file");
  assert.equal(lowerEntry(lowers, "b/x"), null);
  assert.equal(lowerEntry(lowers, "c/hidden"), null);
  assert.equal(lowerEntry(lowers, "c/kept")?.type, "file");
  assert.equal(lowerEntry(lowers, "d/gone"), null);
  assert.equal(lowerEntry(lowers, "d/stays")?.type, "file");
  assert.deepEqual(lowerChildren(lowers, "d").sort(), ["stays"]);
  assert.deepEqual(lowerChildren(lowers, "c"), ["kept"]);
});
