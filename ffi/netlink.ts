/**
 * A route netlink socket (netlink(7), rtnetlink(7)) and setns(2) into a
 * network namespace, for the holder of the shared network namespace
 * (lib/network/holder.ts). Messages are built and read in
 * lib/network/netlink.ts; this module only moves bytes.
 *
 * setns(CLONE_NEWNET) changes the namespace of the calling thread only,
 * which is allowed in a threaded process: a socket opened in between
 * stays in the namespace it was opened in.
 */
import { sys } from "./syscall.ts";
import { AF, CLONE, NETLINK, SOCK } from "./syscalls.ts";

/** Opens a route netlink socket in the calling thread's network namespace. */
export function openNetlink(): number {
  return Number(
    sys("socket", [AF.NETLINK, SOCK.RAW | SOCK.CLOEXEC, NETLINK.ROUTE], "opening a netlink socket"),
  );
}

/** struct sockaddr_nl of the kernel: family, pad, pid 0, groups 0. */
function kernelAddress(): Uint8Array<ArrayBuffer> {
  const a = new Uint8Array(12);
  new DataView(a.buffer).setUint16(0, AF.NETLINK, true);
  return a;
}

/** Sends one request to the kernel. */
export function sendNetlink(fd: number, msg: Uint8Array): void {
  const buf = new Uint8Array(msg);
  sys("sendto", [fd, buf, buf.length, 0, kernelAddress(), 12], "sending a netlink request");
}

/** Receives one datagram of the kernel's answer (blocking; answers come at once). */
export function receiveNetlink(fd: number): Uint8Array {
  const buf = new Uint8Array(65536);
  const n = Number(sys("recvfrom", [fd, buf, buf.length, 0, 0, 0], "reading a netlink answer"));
  return buf.subarray(0, n);
}

/** Moves the calling thread into the network namespace open as `fd`. */
export function enterNetns(fd: number, what: string): void {
  sys("setns", [fd, CLONE.NEWNET], what);
}

/** Moves the calling thread into a new network namespace. */
export function unshareNetns(what: string): void {
  sys("unshare", [CLONE.NEWNET], what);
}
