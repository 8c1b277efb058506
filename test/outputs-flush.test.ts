/**
 * `Outputs.flush()` sends the ClickHouse sink's open batches at once. The NATS job acknowledges a
 * JetStream fetch only after this flush; when the rows waited in the sink's open batch for its
 * flush interval (1 s) instead, every fetch waited that long, and `run --nats --stream
 * --clickhouse` scored about 400 records/s (test/clickhouse-replay.test.ts took 84 s for 36,000
 * records). Here the sink's batch timer never fires (a setTimeout of the sink's flush interval is
 * held back): the flush must not need it — before the fix it waited for it forever.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Outputs } from "../engine/jobs/outputs.js";
import { DEFAULT_CLICKHOUSE_FLUSH_INTERVAL_MS } from "../connectors/clickhouse/sink.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";
import { createLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

describe.skipIf(!serverAvailable("clickhouse-server"))(
  "Outputs.flush - ClickHouse rows sent without waiting for the sink's batch interval",
  () => {
    let ch: ClickHouseServer;
    let spillDir: string;
    beforeAll(async () => {
      ch = await startClickHouseServer();
      spillDir = mkdtempSync(join(tmpdir(), "lw-spill-"));
    }, 60_000);
    afterAll(async () => {
      await ch?.dispose();
      rmSync(spillDir, { recursive: true, force: true });
    });

    it("a flushed record is in ml_scores and ml_sensor_data when flush resolves, with the batch timer held back", async () => {
      const outputs = await Outputs.start({
        clickhouse: { url: ch.url, database: "flushed", spillDir },
        healthIntervalMs: 3_600_000,
        log: QUIET,
      });
      const realSetTimeout = globalThis.setTimeout;
      const held = vi
        .spyOn(globalThis, "setTimeout")
        .mockImplementation(((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
          ms === DEFAULT_CLICKHOUSE_FLUSH_INTERVAL_MS
            ? realSetTimeout(() => {}, 2 ** 31 - 1).unref()
            : realSetTimeout(fn, ms, ...args)) as typeof setTimeout);
      try {
        outputs.record({
          machineId: "M-001",
          sensorType: "pressure",
          key: "M-001/pressure",
          time: 1_767_225_600_000,
          value: 6.5,
          seq: 1,
          membersJson: `"count":null`,
        });
        const outcome = await Promise.race([
          outputs.flush().then(() => "flushed"),
          new Promise((r) => realSetTimeout(() => r("flush still waiting after 10 s: it needs the sink's batch timer"), 10_000).unref()),
        ]);
        expect(outcome).toBe("flushed");
      } finally {
        held.mockRestore();
      }
      const counts = await ch.query(
        "SELECT (SELECT count() FROM flushed.ml_scores FINAL), (SELECT count() FROM flushed.ml_sensor_data FINAL) FORMAT TSV",
      );
      await outputs.close();
      expect(counts).toBe("1\t1\n");
    }, 20_000);
  },
);
