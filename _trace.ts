const T: [string, number][] = [["start", performance.now()]];
const { main } = await import("./lib/cli/run.ts");
T.push(["import run.ts", performance.now()]);
const { loadIdMapping } = await import("./lib/runtime/idmap.ts");
loadIdMapping();
T.push(["loadIdMapping", performance.now()]);
const code = await main(["--debug", "--rootfs", "/tmp/bb", "true"]);
T.push(["run", performance.now()]);
console.error(T.map(([n, t]) => `${n}@${t.toFixed(1)}`).join("  "), code);
