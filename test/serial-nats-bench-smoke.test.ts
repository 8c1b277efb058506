import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { formatSerialNats, type SerialNatsBench } from "../bench/serial-nats-bench.js";
import { serverAvailable } from "../connectors/local/nats-server.js";

// The serial job's two layouts behind nats-server (bench/serial-nats-bench.ts) at a size no queue
// sheds, from the build (its publisher is a child process of the compiled module), so it never goes
// stale. Benchmarks are not tests: nothing here looks at a time or a rate.
const natsAvailable = serverAvailable("nats-server");
const EVENTS = 3000;

describe.skipIf(!natsAvailable)("serial - the layouts behind nats-server, smoke run", () => {
  it("serial - exits 0; each layout takes every event from NATS, sheds none, and detects the same", async () => {
    const run = await runSmoke();
    expect(run.status, `${run.stderr}\n${run.stdout.slice(0, 2000)}`).toBe(0);
    const r = JSON.parse(run.stdout) as SerialNatsBench;
    expect(r.events).toBe(EVENTS);
    expect(r.pairs).toHaveLength(1);
    const [inThread, ledgerThread] = r.pairs[0];
    expect([inThread.layout, ledgerThread.layout]).toEqual(["in-thread", "ledger-thread"]);
    for (const x of [inThread, ledgerThread]) {
      expect(x.taken).toBe(EVENTS);
      expect(x.shed).toBe(0);
    }
    // Not vacuous: the stream has attacks, and both layouts reached the same detections.
    expect(inThread.detections).toBeGreaterThan(0);
    expect(ledgerThread.checksum).toBe(inThread.checksum);
    expect(ledgerThread.detections).toBe(inThread.detections);
    expect(inThread.ledgerThreadNsPerEvent).toBeNull();
    expect(ledgerThread.ledgerThreadNsPerEvent).toBeGreaterThan(0);
    expect(formatSerialNats(r)).toContain("ledger thread ÷ in-thread");
  }, 240_000);
});

function runSmoke(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["dist/bench/serial-nats-bench.js", "--events", String(EVENTS), "--pairs", "1", "--json"],
      { encoding: "utf8", timeout: 200_000, maxBuffer: 16 * 1024 * 1024 },
      (_error, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    );
  });
}
