/**
 * Unix sockets for terminals (unix(7), cmsg(3)): a socket pair or a
 * connection to a console socket, and receiving a descriptor sent with
 * SCM_RIGHTS, as runc's `--console-socket` protocol does.
 */
import { SyscallError } from "./errno.ts";
import { addressOf, cString, sys, sysBlocking } from "./syscall.ts";
import {
  AF,
  CMSG_LEN_INT,
  CMSG_SPACE_INT,
  encodeSockaddrUn,
  MSG,
  MSGHDR_SIZE,
  O,
  SCM,
  SOCK,
  SOCKADDR_UN_SIZE,
  SOL,
} from "./syscalls.ts";

/** A connected pair of unix stream sockets (both O_CLOEXEC). */
export function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  sys(
    "socketpair",
    [AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, new Uint8Array(fds.buffer)],
    "creating a socket pair",
  );
  return [fds[0]!, fds[1]!];
}

/** Connects to the unix stream socket at `path`; returns the descriptor (O_CLOEXEC). */
export function connectUnix(path: string): number {
  const addr = encodeSockaddrUn(path);
  if (!addr) throw new Error(`console socket path "${path}" is too long for a unix socket`);
  const fd = Number(sys("socket", [AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0], "creating a socket"));
  try {
    sys("connect", [fd, addr, SOCKADDR_UN_SIZE], `connecting to the console socket "${path}"`);
  } catch (e) {
    sys("close", [fd]);
    throw e;
  }
  return fd;
}

/**
 * struct msghdr with one iovec over `data` and a control buffer of
 * `controlSize` bytes; returns the header and the buffers it points to
 * (they must stay referenced while the call runs).
 */
function messageHeader(data: Uint8Array<ArrayBuffer>, control: Uint8Array<ArrayBuffer>) {
  const iov = new BigUint64Array([addressOf(data), BigInt(data.length)]);
  const iovBytes = new Uint8Array(iov.buffer);
  const hdr = new Uint8Array(MSGHDR_SIZE);
  const v = new DataView(hdr.buffer);
  v.setBigUint64(16, addressOf(iovBytes), true);
  v.setBigUint64(24, 1n, true);
  v.setBigUint64(32, addressOf(control), true);
  v.setBigUint64(40, BigInt(control.length), true);
  return { hdr, keep: [iovBytes, data, control] };
}

/**
 * Waits (on a worker thread) for one descriptor sent with SCM_RIGHTS on
 * `sock`; null at EOF (the sender went away without sending).
 */
export async function receiveFd(sock: number): Promise<number | null> {
  const data = new Uint8Array(256);
  const control = new Uint8Array(CMSG_SPACE_INT);
  const { hdr, keep } = messageHeader(data, control);
  const r = Number(await sysBlocking("recvmsg", [sock, hdr, MSG.CMSG_CLOEXEC]));
  void keep;
  if (r <= 0) {
    if (r < 0) throw new SyscallError("recvmsg", 0, "receiving the terminal");
    return null;
  }
  const v = new DataView(control.buffer);
  const controllen = Number(new DataView(hdr.buffer).getBigUint64(40, true));
  if (
    controllen < CMSG_LEN_INT || v.getInt32(8, true) !== SOL.SOCKET ||
    v.getInt32(12, true) !== SCM.RIGHTS
  ) {
    return null;
  }
  return v.getInt32(16, true);
}

/**
 * `sockaddr_un` for `name` in directory `dir`, however long `dir` is: the
 * path goes through `/proc/self/fd/N` of an O_PATH descriptor of `dir`,
 * as conmon binds its attach socket (a container's directory under the
 * store is longer than the 108 bytes `sun_path` holds). Returns the
 * address and the descriptor to close once the call is made.
 */
function addressIn(dir: string, name: string): { addr: Uint8Array<ArrayBuffer>; dirFd: number } {
  const dirFd = Number(
    sys("openat", [-100, cString(dir), O.PATH | O.DIRECTORY | O.CLOEXEC], `opening "${dir}"`),
  );
  const addr = encodeSockaddrUn(`/proc/self/fd/${dirFd}/${name}`);
  if (!addr) {
    sys("close", [dirFd]);
    throw new Error(`socket name "${name}" is too long`);
  }
  return { addr, dirFd };
}

/**
 * A listening unix SOCK_SEQPACKET socket at `dir/name` (an old one is
 * replaced): the attach socket's type, as conmon makes it, where every
 * write is one message.
 */
export function listenSeqpacket(dir: string, name: string): number {
  const path = `${dir}/${name}`;
  try {
    Deno.removeSync(path);
  } catch {
    // No old socket.
  }
  return seqpacketAt(dir, name, (fd, addr) => {
    sys("bind", [fd, addr, SOCKADDR_UN_SIZE], `binding the socket "${path}"`);
    Deno.chmodSync(path, 0o700);
    sys("listen", [fd, 10], `listening on "${path}"`);
  });
}

/** Connects to the SOCK_SEQPACKET socket at `dir/name`; returns the descriptor (O_CLOEXEC). */
export function connectSeqpacket(dir: string, name: string): number {
  return seqpacketAt(dir, name, (fd, addr) => {
    sys("connect", [fd, addr, SOCKADDR_UN_SIZE], `connecting to "${dir}/${name}"`);
  });
}

/**
 * A new SOCK_SEQPACKET socket (O_CLOEXEC), with `use` run on it and the
 * address of `dir/name`; closed again if `use` throws.
 */
function seqpacketAt(
  dir: string,
  name: string,
  use: (fd: number, addr: Uint8Array<ArrayBuffer>) => void,
): number {
  const fd = Number(
    sys("socket", [AF.UNIX, SOCK.SEQPACKET | SOCK.CLOEXEC, 0], "creating a socket"),
  );
  const { addr, dirFd } = addressIn(dir, name);
  try {
    use(fd, addr);
  } catch (e) {
    sys("close", [fd]);
    throw e;
  } finally {
    sys("close", [dirFd]);
  }
  return fd;
}

/** Waits (on a worker thread) for a connection on listening socket `fd`; -1 on error. */
export async function acceptConnection(fd: number): Promise<number> {
  return Number(await sysBlocking("accept4", [fd, 0, 0, SOCK.CLOEXEC]));
}

/** Waits (on a worker thread) for one message of up to `n` bytes; empty at EOF or on error. */
export async function receivePacket(fd: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  const r = Number(await sysBlocking("recvfrom", [fd, buf, n, 0, 0, 0]));
  return r > 0 ? buf.subarray(0, r) : new Uint8Array(0);
}

/** Sends one message (on a worker thread, no SIGPIPE); false when the peer is gone. */
export async function sendPacket(fd: number, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const r = Number(await sysBlocking("sendto", [fd, data, data.length, MSG.NOSIGNAL, 0, 0]));
  return r === data.length;
}

/** Ends the sending side of socket `fd` (the peer reads EOF); errors are ignored. */
export function shutdownWrite(fd: number): void {
  try {
    sys("shutdown", [fd, 1]);
  } catch {
    // Already closed or not connected.
  }
}
