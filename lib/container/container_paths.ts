/** The layout of a container's directory (upper, work, userdata…), shared by every module that touches it. */
import { exitFilePath } from "./status.ts";

/** The paths inside a container's directory. */
export interface ContainerPaths {
  /** The overlay's upper directory (the writable layer). */
  upper: string;
  /** The overlay's work directory. */
  work: string;
  /** The root's mount point (mounted in the container's mount namespace only). */
  merged: string;
  /** The bundle and the files beside the container. */
  userdata: string;
  /** `config.json`. */
  spec: string;
  /** The lower layers (`RootfsLayout`). */
  rootfs: string;
  /** hosts, hostname, resolv.conf. */
  etc: string;
  /**
   * trun's monitor's own messages, beside the exit file: the monitor
   * starts (in parallel with the record's creation) before this directory
   * exists.
   */
  monitorLog: string;
}

/** The paths of a container's directory. */
export function containerPaths(dir: string): ContainerPaths {
  return {
    upper: `${dir}/upper`,
    work: `${dir}/work`,
    merged: `${dir}/merged`,
    userdata: `${dir}/userdata`,
    spec: `${dir}/userdata/config.json`,
    rootfs: `${dir}/userdata/rootfs.json`,
    etc: `${dir}/userdata/etc`,
    monitorLog: `${exitFilePath(dir, dir.slice(dir.lastIndexOf("/") + 1))}.monitor.log`,
  };
}
