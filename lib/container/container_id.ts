/** Container ids, in a module of their own: `run` takes one before it loads the rest. */

/** A fresh container id: 64 hex digits, like Docker's. */
export function newContainerId(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
