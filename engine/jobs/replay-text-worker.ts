/**
 * A replay text worker: turns the blocks of rows the main thread sends (in shared memory) into
 * NDJSON bytes ({@link ReplayTextWriter}) in the shared buffer that comes with each block, and
 * replies with their length — or, when they did not fit, with the bytes themselves (transferred,
 * not copied). One reply per block, in the order they came. Started by {@link ReplayTextPool}.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { RowTextSpec } from "../../operators/mod.js";
import { ReplayTextWriter, type TextReply, type TextRequest } from "./replay-text.js";

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const writer = new ReplayTextWriter((workerData as { specs: RowTextSpec[] }).specs);
  port.on("message", ({ block, output }: TextRequest) => {
    try {
      const bytes = writer.write(block, new Uint8Array(output));
      if (bytes.buffer === output) port.postMessage({ sequence: block.sequence, length: bytes.length, overflow: null } satisfies TextReply);
      else {
        const overflow = bytes.slice();
        port.postMessage({ sequence: block.sequence, length: overflow.length, overflow } satisfies TextReply, [overflow.buffer]);
      }
    } catch (error) {
      port.postMessage({ sequence: block.sequence, error: (error as Error).stack ?? String(error) } satisfies TextReply);
    }
  });
}
