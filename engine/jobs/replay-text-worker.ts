/**
 * The replay text worker: turns the blocks of rows the main thread sends (in shared memory) into
 * NDJSON bytes ({@link ReplayTextWriter}). With a file descriptor it writes them itself, in block
 * order, one write at a time on the thread pool (fs.write) — while that write runs it makes the
 * next block's text in its other buffer — and replies once a block is written; without one it
 * replies with the bytes (transferred, not copied). One reply per block, in the order they came.
 */
import { write } from "node:fs";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { ReplayTextBlock } from "./replay-blocks.js";
import { ReplayTextWriter, type TextReply, type TextWorkerData } from "./replay-text.js";

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const { specs, fd } = workerData as TextWorkerData;
  const writer = new ReplayTextWriter(specs);
  const queue: ReplayTextBlock[] = [];
  /** Per output buffer, the write of the bytes last made in it (the buffer is free once it is done). */
  const written: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
  let last: Promise<void> = Promise.resolve();
  let turn = 0;
  let pumping = false;
  const reply = (r: TextReply) => port.postMessage(r);
  const failed = (block: ReplayTextBlock, error: unknown) =>
    reply({ sequence: block.sequence, error: (error as Error).stack ?? String(error) });

  const pump = async (): Promise<void> => {
    pumping = true;
    for (let block = queue.shift(); block !== undefined; block = queue.shift()) {
      const b = block;
      try {
        if (fd === null) {
          const copy = writer.write(b).slice();
          port.postMessage({ sequence: b.sequence, bytes: copy } satisfies TextReply, [copy.buffer]);
          continue;
        }
        turn ^= 1;
        await written[turn];
        const bytes = writer.write(b, turn);
        last = last.then(() => writeAll(fd, bytes));
        written[turn] = last.then(
          () => reply({ sequence: b.sequence, bytes: null }),
          (error) => failed(b, error),
        );
      } catch (error) {
        failed(b, error);
      }
    }
    pumping = false;
  };

  port.on("message", (block: ReplayTextBlock) => {
    queue.push(block);
    if (!pumping) void pump();
  });
}

/** All of `bytes` to `fd` at its offset (a write may take only part). */
async function writeAll(fd: number, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length; ) {
    at += await new Promise<number>((resolve, reject) =>
      write(fd, bytes, at, bytes.length - at, null, (e, n) => (e === null ? resolve(n) : reject(e))),
    );
  }
}
