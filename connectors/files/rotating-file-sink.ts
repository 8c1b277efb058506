/**
 * A text file sink with a size bound: past `fileBytesMax` the file is renamed to `<path>.1`
 * (replacing the previous one) and a new file begins, so a long run never fills the disk.
 * Writes respect the stream's backpressure: `write` returns a promise when the OS buffer is full.
 */
import { createWriteStream, mkdirSync, renameSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../../engine/core/mod.js";

export const DEFAULT_FILE_BYTES_MAX = 256 * 1024 * 1024;

export class RotatingFileSink {
  bytesWritten = 0;
  rotations = 0;
  private stream: WriteStream;
  private bytesInFile = 0;
  /** One promise for every writer waiting on the same 'drain' (no listener per write). */
  private drained: Promise<void> | null = null;

  constructor(
    readonly path: string,
    readonly fileBytesMax: number = DEFAULT_FILE_BYTES_MAX,
  ) {
    if (!Number.isInteger(fileBytesMax) || fileBytesMax < 1024) {
      throw new ConfigError("fileBytesMax", `must be an integer ≥ 1024, got ${fileBytesMax}`);
    }
    mkdirSync(dirname(path), { recursive: true });
    this.stream = createWriteStream(path);
  }

  /** Appends text or bytes; resolves at once unless the stream asks the writer to wait. */
  write(text: string | Buffer): Promise<void> | undefined {
    const bytes = typeof text === "string" ? Buffer.byteLength(text) : text.length;
    if (this.bytesInFile > 0 && this.bytesInFile + bytes > this.fileBytesMax) this.rotate();
    this.bytesInFile += bytes;
    this.bytesWritten += bytes;
    if (this.stream.write(text) && this.drained === null) return undefined;
    if (this.drained === null) {
      const stream = this.stream;
      this.drained = new Promise<void>((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        stream.once("error", onError);
        stream.once("drain", () => {
          stream.off("error", onError);
          this.drained = null;
          resolve();
        });
      });
    }
    return this.drained;
  }

  async close(): Promise<void> {
    await endStream(this.stream);
  }

  private rotate(): void {
    const old = this.stream;
    old.end();
    renameSync(this.path, `${this.path}.1`);
    this.stream = createWriteStream(this.path);
    this.bytesInFile = 0;
    this.rotations++;
  }
}

function endStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once("error", reject);
    stream.end(() => resolve());
  });
}
