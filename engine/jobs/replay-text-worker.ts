/**
 * A replay text worker: turns the blocks of rows the main thread sends (in shared memory) into
 * NDJSON bytes ({@link ReplayTextWriter}). With a file descriptor it writes them itself, in block
 * order — it waits on the shared count of blocks written until it is its block's turn — and
 * replies without bytes; without one it replies with the bytes (transferred, not copied). One
 * reply per block, in the order they came. Started by {@link ReplayTextPool}.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { ReplayTextBlock } from "./replay-blocks.js";
import { type TextReply, type TextWorkerData, ReplayTextWriter, writeFully } from "./replay-text.js";

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const { specs, fd, written } = workerData as TextWorkerData;
  const writer = new ReplayTextWriter(specs);
  port.on("message", (block: ReplayTextBlock) => {
    try {
      const bytes = writer.write(block);
      if (fd === null || written === null) {
        const copy = bytes.slice();
        port.postMessage({ sequence: block.sequence, bytes: copy } satisfies TextReply, [copy.buffer]);
        return;
      }
      for (let turn = Atomics.load(written, 0); turn !== block.sequence; turn = Atomics.load(written, 0)) Atomics.wait(written, 0, turn);
      writeFully(fd, bytes);
      Atomics.add(written, 0, 1);
      Atomics.notify(written, 0);
      port.postMessage({ sequence: block.sequence, bytes: null } satisfies TextReply);
    } catch (error) {
      port.postMessage({ sequence: block.sequence, error: (error as Error).stack ?? String(error) } satisfies TextReply);
    }
  });
}
