/**
 * Copying a stream connection both ways, as the published-port forwarder
 * of user-defined networks and the holder relay it (lib/network/forwarder.ts).
 */

/** A connection that can end its sending half (TCP and unix stream sockets). */
export type HalfCloseConn = Deno.Conn & { closeWrite(): Promise<void> };

/**
 * Copies `from` into `to` until `from` ends, then ends `to`'s sending half:
 * a client that half-closes (`nc -N`, `shutdown(SHUT_WR)`) still gets the
 * whole answer.
 */
async function copyOneWay(from: Deno.Conn, to: HalfCloseConn): Promise<void> {
  const buf = new Uint8Array(128 * 1024);
  for (;;) {
    const n = await from.read(buf);
    if (n === null) break;
    let off = 0;
    while (off < n) off += await to.write(buf.subarray(off, n));
  }
  await to.closeWrite();
}

/** Copies `a` and `b` into each other until both directions end (or one fails), then closes both. */
export async function relayBoth(a: HalfCloseConn, b: HalfCloseConn): Promise<void> {
  try {
    await Promise.all([copyOneWay(a, b), copyOneWay(b, a)]);
  } catch {
    // A reset on either side ends both.
  } finally {
    for (const c of [a, b]) {
      try {
        c.close();
      } catch {
        // Closed already.
      }
    }
  }
}
