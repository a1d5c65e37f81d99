import { startFixtureRegistry } from "./tests/_harness/registry.ts";
const reg = await startFixtureRegistry();
console.log(reg.host);
await Deno.writeTextFile("/tmp/reg-host", reg.host);
await new Promise((r) => setTimeout(r, 1200_000));
