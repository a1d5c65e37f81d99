// readRootfsText() follows symlinks inside the root only, across layers.
import assert from "node:assert/strict";
import { lsetxattr, mknod } from "../../ffi/fs.ts";
import { readRootfsText, resolveEntry, resolveInRootfs } from "../../lib/runtime/rootfs_files.ts";

async function tree(): Promise<{ top: string; low: string; outside: string }> {
  const base = await Deno.makeTempDir();
  const top = `${base}/top`, low = `${base}/low`, outside = `${base}/outside`;
  for (const d of [`${top}/etc`, `${low}/etc`, `${low}/real`, outside]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.writeTextFile(`${low}/etc/passwd`, "low-passwd");
  await Deno.writeTextFile(`${top}/etc/group`, "top-group");
  await Deno.writeTextFile(`${low}/etc/group`, "low-group");
  await Deno.writeTextFile(`${low}/real/file`, "real");
  await Deno.writeTextFile(`${outside}/secret`, "host secret");
  await Deno.symlink("/real/file", `${top}/etc/abs`);
  await Deno.symlink("../../../../../../real/file", `${top}/etc/climb`);
  await Deno.symlink(`${outside}/secret`, `${top}/etc/escape`);
  await Deno.symlink("loop", `${top}/etc/loop`);
  return { top, low, outside };
}

Deno.test("readRootfsText() takes the topmost layer's file", async () => {
  const { top, low } = await tree();
  assert.equal(readRootfsText([top, low], "/etc/group"), "top-group");
  assert.equal(readRootfsText([top, low], "/etc/passwd"), "low-passwd");
});

Deno.test("readRootfsText() resolves absolute and climbing links inside the root", async () => {
  const { top, low } = await tree();
  assert.equal(readRootfsText([top, low], "/etc/abs"), "real");
  assert.equal(readRootfsText([top, low], "/etc/climb"), "real");
});

Deno.test("readRootfsText() never reads a host file through a link", async () => {
  const { top, low } = await tree();
  assert.equal(readRootfsText([top, low], "/etc/escape"), null);
  assert.equal(resolveInRootfs([top, low], "/etc/loop"), null);
  assert.equal(readRootfsText([top, low], "/nope"), null);
});

// Three layers, top first, the way the store lays them out for overlayfs:
// an opaque directory carries the overlay `opaque` xattr (`user.` as trun
// unpacks for a user-namespace mount, `trusted.` as a root overlay writes
// it), a whiteout is a 0/0 character device (which Linux ≥ 5.8 lets any
// user create, so these tests run unprivileged too).
async function opaqueLayers(
  xattr: string,
): Promise<{ layers: string[]; base: string }> {
  const base = await Deno.makeTempDir();
  const top = `${base}/top`, mid = `${base}/mid`, low = `${base}/low`;
  for (const d of [`${top}/etc/deep`, `${top}/opt`, `${mid}/etc`, `${low}/etc/sub`]) {
    await Deno.mkdir(d, { recursive: true });
  }
  for (const d of [`${low}/etc/deep`, `${low}/opt/app`, `${low}/var/lib`]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.writeTextFile(`${low}/etc/sub/file`, "low, hidden by the opaque /etc");
  await Deno.writeTextFile(`${low}/etc/kept`, "low, hidden by the opaque /etc");
  await Deno.writeTextFile(`${low}/etc/deep/file`, "low, hidden by the opaque /etc");
  await Deno.writeTextFile(`${low}/opt/app/file`, "low, hidden by the /opt whiteout");
  await Deno.writeTextFile(`${low}/var/lib/file`, "low, hidden by the /var whiteout");
  await Deno.writeTextFile(`${low}/shown`, "low");
  await Deno.writeTextFile(`${mid}/etc/mid`, "mid");
  await Deno.writeTextFile(`${top}/etc/top`, "top");
  lsetxattr(`${mid}/etc`, xattr, new TextEncoder().encode("y"));
  mknod(`${mid}/opt`, S_IFCHR, 0, 0);
  mknod(`${mid}/var`, S_IFCHR, 0, 0);
  return { layers: [top, mid, low], base };
}

const S_IFCHR = 0o020000;

for (
  const [xattr, ignore] of [
    ["user.overlay.opaque", false],
    // trusted.* xattrs need CAP_SYS_ADMIN.
    ["trusted.overlay.opaque", Deno.uid() !== 0],
  ] as const
) {
  Deno.test({
    name: `resolveEntry() hides everything below a middle layer's opaque dir (${xattr})${
      ignore ? " (skipped: setting trusted.* xattrs needs root)" : ""
    }`,
    ignore,
    fn: async () => {
      const { layers, base } = await opaqueLayers(xattr);
      try {
        // In the opaque dir's own and upper layers, entries stay visible.
        assert.equal(readRootfsText(layers, "/etc/top"), "top");
        assert.equal(readRootfsText(layers, "/etc/mid"), "mid");
        assert.equal(readRootfsText(layers, "/shown"), "low");
        // Directly below it…
        assert.equal(readRootfsText(layers, "/etc/kept"), null);
        assert.deepEqual(resolveEntry(layers, "/etc/kept"), { kind: "missing" });
        // …and deeper, where the opaque dir is a grandparent…
        assert.equal(readRootfsText(layers, "/etc/sub/file"), null);
        assert.deepEqual(resolveEntry(layers, "/etc/sub"), { kind: "missing" });
        assert.deepEqual(resolveEntry(layers, "/etc/sub/file"), { kind: "unreachable" });
        // …even when an upper layer has the directory in between.
        assert.equal(readRootfsText(layers, "/etc/deep/file"), null);
        assert.deepEqual(resolveEntry(layers, "/etc/deep"), {
          kind: "dir",
          host: `${layers[0]}/etc/deep`,
        });
      } finally {
        await Deno.remove(base, { recursive: true });
      }
    },
  });
}

Deno.test("resolveEntry() hides everything below a middle layer's whiteout of an ancestor", async () => {
  const { layers, base } = await opaqueLayers("user.overlay.opaque");
  try {
    // /var is whited out in the middle and absent above: gone with its content.
    assert.deepEqual(resolveEntry(layers, "/var"), { kind: "missing" });
    assert.equal(readRootfsText(layers, "/var/lib/file"), null);
    // /opt is whited out in the middle but made again on top: the new
    // directory is empty of the lower layer's content.
    assert.deepEqual(resolveEntry(layers, "/opt"), { kind: "dir", host: `${layers[0]}/opt` });
    assert.equal(readRootfsText(layers, "/opt/app/file"), null);
    assert.deepEqual(resolveEntry(layers, "/opt/app"), { kind: "missing" });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("readRootfsText() never follows a lower layer's symlink under an upper directory", async () => {
  const base = await Deno.makeTempDir();
  try {
    const top = `${base}/top`, low = `${base}/low`, host = `${base}/host`;
    for (const d of [`${top}/etc`, low, host]) await Deno.mkdir(d, { recursive: true });
    await Deno.writeTextFile(`${host}/passwd`, "host secret");
    // The upper directory replaces the lower link; the kernel never follows it.
    await Deno.symlink(host, `${low}/etc`);
    assert.equal(readRootfsText([top, low], "/etc/passwd"), null);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
