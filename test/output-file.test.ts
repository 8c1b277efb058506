/**
 * The replay's output file: every byte handed to it lands in order — chunks of megabytes, views
 * of shared memory, text — while each write system call takes at most OUTPUT_WRITE_BYTES (on a
 * VM with free page reporting, megabyte writes were 20–40× slower; connectors/files output-file.ts).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createOutputFile, OUTPUT_FILE_FS, OUTPUT_WRITE_BYTES } from "../connectors/files/mod.js";

const dir = mkdtempSync(join(tmpdir(), "lw-output-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pattern(length: number, step: number, into: Uint8Array = new Uint8Array(length)): Uint8Array {
  for (let i = 0; i < length; i++) into[i] = (i * step + (i >> 11)) & 0xff;
  return into;
}

describe("output file", () => {
  it("writes every chunk whole and in order: megabytes, a shared-memory view, text", async () => {
    const path = join(dir, "out.ndjson");
    const big = pattern(3 * OUTPUT_WRITE_BYTES * 4 + 12_345, 7);
    const shared = pattern(OUTPUT_WRITE_BYTES + 1, 13, new Uint8Array(new SharedArrayBuffer(OUTPUT_WRITE_BYTES + 1)));
    const stream = createOutputFile(path);
    stream.write(big);
    stream.write(shared);
    stream.write("the last line\n");
    await new Promise<void>((resolve, reject) => stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
    const got = readFileSync(path);
    expect(got.length).toBe(big.length + shared.length + 14);
    expect(got.subarray(0, big.length).equals(big)).toBe(true);
    expect(got.subarray(big.length, big.length + shared.length).equals(shared)).toBe(true);
    expect(got.subarray(big.length + shared.length).toString()).toBe("the last line\n");
  });

  it("takes at most OUTPUT_WRITE_BYTES a system call, and never all queued chunks at once (no writev)", async () => {
    expect("writev" in OUTPUT_FILE_FS).toBe(false);
    const path = join(dir, "one-call.bin");
    const fd = openSync(path, "w");
    try {
      const buffer = pattern(4 * OUTPUT_WRITE_BYTES, 3);
      const written = await new Promise<number>((resolve, reject) =>
        OUTPUT_FILE_FS.write(fd, buffer, 0, buffer.length, 0, (e, n) => (e ? reject(e) : resolve(n))),
      );
      expect(written).toBe(OUTPUT_WRITE_BYTES);
      expect(readFileSync(path).equals(buffer.subarray(0, OUTPUT_WRITE_BYTES))).toBe(true);
    } finally {
      closeSync(fd);
    }
  });
});
