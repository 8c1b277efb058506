/**
 * A file stream for large outputs (replay's NDJSON): a plain `fs.WriteStream` whose every write
 * system call takes at most {@link OUTPUT_WRITE_BYTES}. The stream hands `write` a whole chunk
 * (a replay block's text, often megabytes) and goes on after a short write with the rest, as it
 * does for any short write; without `writev` it sends queued chunks one by one.
 *
 * Why not one call per chunk. Since Linux 6.x ext4 (and xfs) back a buffered write with page-cache
 * folios as large as the write, up to 2 MiB. On a virtual machine that reports free memory to its
 * host (virtio-balloon free page reporting, in blocks of 2 MiB), those high-order blocks are the
 * ones the host took back, and each page of them costs a fault in the host on first touch. On the
 * project's 2-core VM (kernel 6.18), writing 800 MiB to a new file took 5–8 s in 1–2 MiB writes
 * (100–170 MB/s, all of it system time) and 0.2 s in 256 KiB writes (3.2–4.7 GB/s); 512 KiB
 * writes were in between (1.1–1.9 GB/s). Elsewhere the smaller calls cost nothing that shows: a
 * few thousand more system calls per GB.
 */
import { close, createWriteStream, open, write, type WriteStream } from "node:fs";

/** Bytes one write system call takes at most (see the module's comment for the measurement). */
export const OUTPUT_WRITE_BYTES = 256 * 1024;

/**
 * The file system calls an output file's stream makes: `write` takes at most OUTPUT_WRITE_BYTES
 * (a short write, which the stream continues), and there is no `writev`, which would hand the
 * kernel every queued chunk in one call.
 */
export const OUTPUT_FILE_FS = Object.freeze({ open, close, write: writeSome });

/** A write stream to `path` (created or truncated) whose writes take at most OUTPUT_WRITE_BYTES each. */
export function createOutputFile(path: string): WriteStream {
  return createWriteStream(path, { fs: OUTPUT_FILE_FS });
}

/** fs.write of at most OUTPUT_WRITE_BYTES. */
function writeSome(
  fd: number,
  buffer: NodeJS.ArrayBufferView,
  offset: number,
  length: number,
  position: number | null,
  callback: (err: NodeJS.ErrnoException | null, written: number, buffer: NodeJS.ArrayBufferView) => void,
): void {
  write(fd, buffer, offset, Math.min(length, OUTPUT_WRITE_BYTES), position, callback);
}
