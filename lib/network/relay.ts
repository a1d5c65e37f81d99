/**
 * How the published-port forwarder of user-defined networks and the holder
 * relay traffic (lib/network/forwarder.ts): stream connections copied both
 * ways, and UDP datagrams framed over a stream.
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

/**
 * Datagrams over a stream (UDP relayed over the holder's unix socket): each
 * one a 2-byte big-endian length, then its bytes.
 */
export function frameDatagram(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + payload.length);
  new DataView(out.buffer).setUint16(0, payload.length);
  out.set(payload, 2);
  return out;
}

/** Splits a stream of {@link frameDatagram} frames back into datagrams, however the bytes arrive. */
export class DatagramReader {
  #buf = new Uint8Array(0);

  /** Takes the next bytes read; returns the datagrams now complete. */
  push(bytes: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.#buf.length + bytes.length);
    joined.set(this.#buf);
    joined.set(bytes, this.#buf.length);
    const out: Uint8Array[] = [];
    let at = 0;
    while (joined.length - at >= 2) {
      const n = (joined[at]! << 8) | joined[at + 1]!;
      if (joined.length - at - 2 < n) break;
      out.push(joined.slice(at + 2, at + 2 + n));
      at += 2 + n;
    }
    this.#buf = joined.slice(at);
    return out;
  }
}

/** Reads `conn` until it ends, handing each datagram framed in it to `each`. */
export async function readDatagrams(
  conn: Deno.Conn,
  each: (d: Uint8Array) => void,
): Promise<void> {
  const reader = new DatagramReader();
  const buf = new Uint8Array(70 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      for (const d of reader.push(buf.subarray(0, n))) each(d);
    }
  } catch {
    // A reset ends the stream like its end.
  }
}

/**
 * A writer for `conn` that sends each buffer whole and in order, however
 * many callers write at once (frames must not interleave). Errors end the
 * writes silently: the reading side sees the connection end.
 */
export function orderedWriter(conn: Deno.Conn): (bytes: Uint8Array) => void {
  let chain = Promise.resolve();
  return (bytes) => {
    chain = chain.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    }).catch(() => {});
  };
}
