/**
 * The chaos harness's WebSocket parts (engine/jobs/chaos): the abuse list against a live server
 * started here (every outcome the documented one, the server's counters agreeing), and the
 * latency bookkeeping of the slow-subscriber scenario on hand-made score frames.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type LiveServer, startLiveServer } from "../connectors/live/live-server.js";
import { encodeScoreFrame } from "../connectors/wire/mod.js";
import { memoryLogger } from "../engine/core/mod.js";
import {
  ChaosWsClient,
  isRefusal,
  LatencyWindow,
  latencyRecorder,
  quantile,
  runWsAbuses,
  type WsAbuseCounts,
  type WsAbuseTokens,
  wsAbuses,
} from "../engine/jobs/chaos/mod.js";

const T: WsAbuseTokens = {
  admin: "admin-token-0123456789abcdef",
  reader: "reader-token-0123456789abcdef",
  slow: "slow-token-0123456789abcdef",
  flood: "flood-token-0123456789abcdef",
};

const servers: LiveServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function server(): Promise<LiveServer> {
  const s = await startLiveServer({
    port: 0,
    dashboardDir: null,
    log: memoryLogger().log,
    tokens: [
      { token: T.admin, name: "admin", topics: ["#"], scopes: ["*"], requestsPerSec: 10_000, requestBurst: 10_000 },
      { token: T.reader, name: "reader", topics: ["alerts"] },
      // Refilled so slowly that the third upgrade of the burst is refused however slow the machine.
      { token: T.slow, name: "slow", requestsPerSec: 0.01, requestBurst: 2 },
      { token: T.flood, name: "flood", topics: ["machine/+"], requestsPerSec: 1, requestBurst: 20 },
    ],
  });
  servers.push(s);
  return s;
}

describe("chaos WebSocket abuse", () => {
  it("every abuse gets its documented outcome, the closing ones are counted, a watcher misses nothing", async () => {
    const s = await server();
    const port = Number(new URL(s.url).port);
    const watcher = await ChaosWsClient.connect(`${s.wsUrl}?token=${T.admin}&format=msgpack`);
    if (isRefusal(watcher)) throw new Error(`watcher refused: ${watcher.refused}`);
    expect(await watcher.subscribe(["machine/M-001"])).toBe(true);
    const counts: WsAbuseCounts = { checks: 0, wrong: 0, upgrades429: 0, notes: [] };
    const publishing = setInterval(() => s.publish("machine/M-001", { at: Date.now() }), 5);
    try {
      await runWsAbuses(port, T, counts);
    } finally {
      clearInterval(publishing);
    }
    expect(counts.notes).toEqual([]);
    expect(counts).toMatchObject({ checks: wsAbuses(port, T).length, wrong: 0 });
    expect(counts.upgrades429).toBeGreaterThanOrEqual(1);
    expect(s.wsStats().protocolCloses).toMatchObject({ too_big: 1, invalid_utf8: 1 });
    expect(s.wsStats().refused).toMatchObject({ forbidden_topic: 1, invalid_topic: 2 });
    const last = s.publish("machine/M-001", { last: true });
    for (let i = 0; i < 200 && watcher.data < last; i++) await new Promise((r) => setTimeout(r, 20));
    expect([watcher.open, watcher.gaps, watcher.data]).toEqual([true, 0, last]);
    watcher.close();
  });
});

describe("chaos WebSocket latency", () => {
  it("files each row's latency in the window of its publish time; rows of unknown ticks are skipped", () => {
    const published = new Map([
      [1000, 5000],
      [1100, 5100],
      [1200, 5200],
    ]);
    const a = new LatencyWindow();
    const b = new LatencyWindow();
    a.fromMs = 5000;
    a.toMs = 5150;
    b.fromMs = 5150;
    const frame = encodeScoreFrame({
      keys: ["M-001.pressure"],
      keyIndex: [0, 0, 0, 0],
      times: [1000, 1100, 1200, 1300],
      values: [1, 2, 3, 4],
      columns: [["mean", [1, 2, 3, 4]]],
      length: 4,
    });
    const record = latencyRecorder(published, [a, b]);
    record({ topic: "machine/M-001", seq: 1, data: { kind: "score_frame", frame } }, 5300);
    record({ topic: "alerts", seq: 1, data: { kind: "opened" } }, 5300);
    expect(a.latencies).toEqual([300, 200]);
    expect(b.latencies).toEqual([100]);
  });

  it("quantile by nearest rank", () => {
    const xs = Array.from({ length: 200 }, (_, i) => 200 - i);
    expect(quantile(xs, 0.99)).toBe(198);
    expect(quantile(xs, 0.5)).toBe(100);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.99)).toBeNaN();
  });
});
