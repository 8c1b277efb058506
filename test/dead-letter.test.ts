import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import { connect, type Msg, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DecodeError,
  decodeFrame,
  decodeJsonRecord,
  decodeMsgpackRecord,
  encodeFrame,
  encodeMsgpackRecord,
  parseSubject,
  type DecodeReason,
  type SensorSubject,
} from "../connectors/wire/codecs.js";
import { DeadLetterRouter, natsDeadLetterPublish, reasonOf, type DeadLetterPublish } from "../connectors/nats/dead-letter.js";
import { ConfigError } from "../engine/core/errors.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

interface Published {
  subject: string;
  body: Record<string, unknown>;
  headers: Readonly<Record<string, string>>;
}

/** A publish function that keeps what it is given (JSON bodies decoded). */
function recorder(): { publish: DeadLetterPublish; sent: Published[] } {
  const sent: Published[] = [];
  return {
    sent,
    publish: (subject, data, headers) => {
      sent.push({ subject, body: JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>, headers });
    },
  };
}

const READING = { machine_id: "M-001", sensor_type: "temperature", timestamp: 1_767_225_600_000, sensor_value: 21.5 };
const GOOD_SUBJECT = "lw.plant1.sensor.M-001.temperature";

/** Bad inputs of every kind, as a source would receive them: subject, payload, the decoder that rejects it. */
function badInputs(): Array<{ subject: string; bytes: Uint8Array; decode: (b: Uint8Array, s: string) => unknown; reason: DecodeReason }> {
  const good = encodeMsgpackRecord(READING);
  const m = (b: Uint8Array, subject: string) => decodeMsgpackRecord(b, { subject });
  const j = (b: Uint8Array, subject: string) => decodeJsonRecord(b, { subject });
  const f = (b: Uint8Array, subject: string) => decodeFrame(b, { subject: parseSubject(subject) as SensorSubject });
  const goodFrame = encodeFrame({
    keys: ["M-001.temperature", "M-001.vibration"],
    keyIndex: new Uint32Array(200).map((_, i) => i & 1),
    times: new Float64Array(200).map((_, i) => i),
    values: new Float64Array(200),
  });
  return [
    { subject: GOOD_SUBJECT, bytes: good.subarray(0, good.length - 3), decode: m, reason: "truncated" },
    { subject: GOOD_SUBJECT, bytes: new Uint8Array(10_000).fill(0x41), decode: m, reason: "too_large" },
    { subject: GOOD_SUBJECT, bytes: Uint8Array.from([0xdd, 0x7f, 0xff, 0xff, 0xff]), decode: m, reason: "length_exceeded" },
    { subject: GOOD_SUBJECT, bytes: msgpackEncode({ ...READING, sensor_value: "21.5" }), decode: m, reason: "wrong_type" },
    { subject: GOOD_SUBJECT, bytes: msgpackEncode({ ...READING, sensor_value: NaN }), decode: m, reason: "not_finite" },
    { subject: GOOD_SUBJECT, bytes: msgpackEncode({ ...READING, sensor_value: -Infinity }), decode: m, reason: "not_finite" },
    {
      subject: GOOD_SUBJECT,
      bytes: msgpackEncode({ machine_id: "M-001", sensor_type: "temperature", timestamp: 1 }),
      decode: m,
      reason: "missing_field",
    },
    { subject: "lw.plant1.sensor.M-002.temperature", bytes: good, decode: m, reason: "subject_mismatch" },
    {
      subject: GOOD_SUBJECT,
      bytes: new TextEncoder().encode('{"machine_id":"M-001","sensor_type":"temperature","timestamp":"noon","sensor_value":1}'),
      decode: j,
      reason: "bad_timestamp",
    },
    { subject: GOOD_SUBJECT, bytes: new TextEncoder().encode("{oops}"), decode: j, reason: "malformed" },
    { subject: "lw.plant1.sensor.M-001", bytes: goodFrame.subarray(0, goodFrame.length - 5), decode: f, reason: "truncated" },
    { subject: "lw.plant1.sensor.M-002", bytes: goodFrame, decode: f, reason: "subject_mismatch" },
  ];
}

describe("dead-letter - routing and counting", () => {
  it("publishes reason, subject, error and the original bytes to lw.<site>.deadletter, and counts by reason", () => {
    const { publish, sent } = recorder();
    const router = new DeadLetterRouter({ site: "plant1", publish, now: () => 1234 });
    const inputs = badInputs();
    for (const input of inputs) {
      try {
        input.decode(input.bytes, input.subject);
        throw new Error("decoded");
      } catch (e) {
        expect(router.reject({ subject: input.subject, bytes: input.bytes, reason: reasonOf(e), error: e })).toBe(true);
      }
    }
    expect(sent.map((s) => s.body.reason)).toEqual(inputs.map((i) => i.reason));
    expect(sent.every((s) => s.subject === "lw.plant1.deadletter")).toBe(true);
    const expected: Record<string, number> = {};
    for (const i of inputs) expected[i.reason] = (expected[i.reason] ?? 0) + 1;
    expect(router.counts()).toEqual(expected);
    expect(router.unpublished()).toEqual({});
    expect(router.stats()).toEqual({ rejected: inputs.length, published: inputs.length, shed: 0, failed: 0, inFlight: 0 });
    const mismatch = sent[7];
    expect(mismatch.body).toMatchObject({
      version: 1,
      reason: "subject_mismatch",
      subject: "lw.plant1.sensor.M-002.temperature",
      received_at: 1234,
      field: "machine_id",
      truncated: false,
    });
    expect(String(mismatch.body.error)).toMatch(/^DecodeError: subject_mismatch/);
    expect(Buffer.from(String(mismatch.body.payload_base64), "base64")).toEqual(Buffer.from(inputs[7].bytes));
    expect(mismatch.headers).toMatchObject({
      "Lw-Reason": "subject_mismatch",
      "Lw-Subject": "lw.plant1.sensor.M-002.temperature",
      "Content-Type": "application/json",
      "Lw-Truncated": "false",
    });
  });

  it("caps the payload at deadLetterBytesMax and says so", () => {
    const { publish, sent } = recorder();
    const router = new DeadLetterRouter({ site: "plant1", publish, deadLetterBytesMax: 100 });
    const big = Uint8Array.from({ length: 10_000 }, (_, i) => i & 0xff);
    router.reject({ subject: GOOD_SUBJECT, bytes: big, reason: "too_large" });
    const body = sent[0].body;
    expect(body).toMatchObject({ bytes: 10_000, truncated: true });
    expect(Buffer.from(String(body.payload_base64), "base64")).toEqual(Buffer.from(big.subarray(0, 100)));
    expect(sent[0].headers).toMatchObject({ "Lw-Truncated": "true", "Lw-Bytes": "10000" });
    expect(body.error).toBeUndefined();
  });

  it("a frame's rejected readings: one dead letter per reason with their indices, each reading counted", () => {
    const { publish, sent } = recorder();
    const router = new DeadLetterRouter({ site: "plant1", publish, readingsListMax: 2 });
    const frame = encodeFrame(
      { keys: ["M-1.t"], times: [1, 2, 3, 4, 1e17], values: [NaN, 1, Infinity, -Infinity, 5] },
      { times: "float64" },
    );
    const decoded = decodeFrame(frame);
    expect(decoded.length).toBe(1);
    expect(router.rejectReadings("lw.plant1.sensor.M-1.t", frame, decoded.rejected)).toBe(2);
    expect(router.counts()).toEqual({ not_finite: 3, bad_timestamp: 1 });
    expect(sent.map((s) => [s.body.reason, s.body.readings_count, s.body.readings])).toEqual([
      [
        "not_finite",
        3,
        [
          { index: 0, field: "value" },
          { index: 2, field: "value" },
        ],
      ],
      ["bad_timestamp", 1, [{ index: 4, field: "time" }]],
    ]);
    expect(decoded.length + Object.values(router.counts()).reduce((a, b) => a + b, 0)).toBe(decoded.declared);
  });

  it("bounded: past inFlightMax unconfirmed publishes it sheds and counts; failures are counted, never thrown", async () => {
    const pending: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
    const router = new DeadLetterRouter({
      site: "plant1",
      inFlightMax: 3,
      publish: () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })),
    });
    const handed = Array.from({ length: 10 }, () =>
      router.reject({ subject: GOOD_SUBJECT, bytes: new Uint8Array(4), reason: "malformed" }),
    );
    expect(handed).toEqual([true, true, true, false, false, false, false, false, false, false]);
    expect(pending.length).toBe(3);
    expect(router.stats()).toMatchObject({ rejected: 10, shed: 7, inFlight: 3, published: 0 });
    pending[0].resolve();
    pending[1].reject(new Error("connection closed"));
    pending[2].resolve();
    await router.flush();
    expect(router.stats()).toEqual({ rejected: 10, published: 2, shed: 7, failed: 1, inFlight: 0 });
    expect(router.counts()).toEqual({ malformed: 10 });
    expect(router.unpublished()).toEqual({ malformed: 8 });
    const throwing = new DeadLetterRouter({
      site: "p",
      publish: () => {
        throw new Error("closed");
      },
    });
    expect(throwing.reject({ subject: "x", bytes: new Uint8Array(1), reason: "too_large" })).toBe(true);
    expect(throwing.stats()).toMatchObject({ failed: 1, published: 0 });
  });

  it("room(): none while inFlightMax publishes await confirmation, resolved once one settles (a JetStream source waits instead of shedding)", async () => {
    const pending: Array<() => void> = [];
    const router = new DeadLetterRouter({
      site: "plant1",
      inFlightMax: 2,
      publish: () => new Promise<void>((resolve) => pending.push(resolve)),
    });
    expect(router.room()).toBeUndefined();
    router.reject({ subject: GOOD_SUBJECT, bytes: new Uint8Array(4), reason: "malformed" });
    expect(router.room()).toBeUndefined();
    router.reject({ subject: GOOD_SUBJECT, bytes: new Uint8Array(4), reason: "malformed" });
    const room = router.room();
    expect(room).toBeInstanceOf(Promise);
    let resolved = false;
    void room?.then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(false);
    pending[0]();
    await room;
    expect(resolved).toBe(true);
    // Waiting, nothing was shed: the next dead letter is handed over.
    expect(router.reject({ subject: GOOD_SUBJECT, bytes: new Uint8Array(4), reason: "malformed" })).toBe(true);
    expect(router.stats()).toMatchObject({ rejected: 3, shed: 0, inFlight: 2 });
  });

  it("checks its options and reason codes", () => {
    const { publish } = recorder();
    expect(() => new DeadLetterRouter({ site: "a.b", publish })).toThrow();
    expect(() => new DeadLetterRouter({ site: "p", publish, inFlightMax: 0 })).toThrow(ConfigError);
    expect(() => new DeadLetterRouter({ site: "p", publish, deadLetterBytesMax: -1 })).toThrow(ConfigError);
    expect(() => new DeadLetterRouter({ site: "p", publish, format: "xml" as never })).toThrow(ConfigError);
    const router = new DeadLetterRouter({ site: "p", publish });
    expect(() => router.reject({ subject: "s", bytes: new Uint8Array(0), reason: "Bad Reason" })).toThrow(RangeError);
    expect(router.reject({ subject: "s", bytes: new Uint8Array(0), reason: "late" })).toBe(true);
    expect(reasonOf(new Error("x"))).toBe("unexpected_error");
    expect(reasonOf(new DecodeError("too_deep", "x"))).toBe("too_deep");
  });
});

const natsAvailable = serverAvailable("nats-server");

describe.skipIf(!natsAvailable)("dead-letter - on a real nats-server", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  async function collect(subject: string, count: number, timeoutMs = 10_000): Promise<Msg[]> {
    const sub = nc.subscribe(subject, { max: count, timeout: timeoutMs });
    const got: Msg[] = [];
    const done = (async () => {
      for await (const m of sub) got.push(m);
    })();
    await nc.flush();
    return Object.assign(got, { done }) as Msg[] & { done: Promise<void> };
  }

  it("every kind of bad input arrives on lw.<site>.deadletter with its reason, subject and (capped) bytes; counts are right", async () => {
    const inputs = badInputs();
    const received = (await collect("lw.plant1.deadletter", inputs.length)) as Msg[] & { done: Promise<void> };
    const router = new DeadLetterRouter({ site: "plant1", publish: natsDeadLetterPublish(nc), deadLetterBytesMax: 512 });
    for (const input of inputs) {
      try {
        input.decode(input.bytes, input.subject);
      } catch (e) {
        router.reject({ subject: input.subject, bytes: input.bytes, reason: reasonOf(e), error: e });
      }
    }
    await router.flush();
    await received.done;
    expect(received.length).toBe(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const msg = received[i];
      const body = msg.json<Record<string, unknown>>();
      const input = inputs[i];
      expect(body.reason).toBe(input.reason);
      expect(msg.headers?.get("Lw-Reason")).toBe(input.reason);
      expect(body.subject).toBe(input.subject);
      expect(msg.headers?.get("Lw-Subject")).toBe(input.subject);
      expect(body.bytes).toBe(input.bytes.length);
      const kept = Buffer.from(String(body.payload_base64), "base64");
      expect(kept).toEqual(Buffer.from(input.bytes.subarray(0, 512)));
      expect(body.truncated).toBe(input.bytes.length > 512);
    }
    const expected: Record<string, number> = {};
    for (const i of inputs) expected[i.reason] = (expected[i.reason] ?? 0) + 1;
    expect(router.counts()).toEqual(expected);
    expect(router.stats()).toMatchObject({ rejected: inputs.length, published: inputs.length, shed: 0, failed: 0, inFlight: 0 });
  });

  it("a frame's NaN readings arrive as one dead letter with their indices; the frame's good readings are decoded", async () => {
    const received = (await collect("lw.plant4.deadletter", 1)) as Msg[] & { done: Promise<void> };
    const router = new DeadLetterRouter({ site: "plant4", publish: natsDeadLetterPublish(nc) });
    const subject = "lw.plant4.sensor.M-001.temperature";
    const frame = encodeFrame({ keys: ["M-001.temperature"], times: [1, 2, 3, 4], values: [1, NaN, 3, Infinity] });
    const decoded = decodeFrame(frame, { subject: parseSubject(subject) as SensorSubject });
    expect(Array.from(decoded.values)).toEqual([1, 3]);
    expect(router.rejectReadings(subject, frame, decoded.rejected)).toBe(1);
    await router.flush();
    await received.done;
    const body = received[0].json<Record<string, unknown>>();
    expect(body).toMatchObject({
      reason: "not_finite",
      subject,
      readings_count: 2,
      readings: [
        { index: 1, field: "value" },
        { index: 3, field: "value" },
      ],
    });
    expect(Buffer.from(String(body.payload_base64), "base64")).toEqual(Buffer.from(frame));
    expect(router.counts()).toEqual({ not_finite: 2 });
  });

  it("MessagePack dead letters carry the payload as binary", async () => {
    const received = (await collect("lw.plant2.deadletter", 1)) as Msg[] & { done: Promise<void> };
    const router = new DeadLetterRouter({ site: "plant2", publish: natsDeadLetterPublish(nc), format: "msgpack" });
    const bytes = msgpackEncode({ ...READING, sensor_value: NaN });
    try {
      decodeMsgpackRecord(bytes, { subject: GOOD_SUBJECT });
    } catch (e) {
      router.reject({ subject: GOOD_SUBJECT, bytes, reason: reasonOf(e), error: e });
    }
    await router.flush();
    await received.done;
    const body = msgpackDecode(received[0].data) as Record<string, unknown>;
    expect(received[0].headers?.get("Content-Type")).toBe("application/msgpack");
    expect(body).toMatchObject({
      reason: "not_finite",
      subject: GOOD_SUBJECT,
      field: "sensor_value",
      bytes: bytes.length,
      truncated: false,
    });
    expect(Buffer.from(body.payload as Uint8Array)).toEqual(Buffer.from(bytes));
  });

  it("with the server gone, the router stays bounded: unconfirmed publishes cap in-flight, the rest is shed and counted", async () => {
    const own = await startNatsServer();
    const conn = await connect({ servers: own.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const router = new DeadLetterRouter({ site: "plant3", publish: natsDeadLetterPublish(conn), inFlightMax: 8 });
      await own.stop();
      for (let i = 0; i < 1000; i++) router.reject({ subject: GOOD_SUBJECT, bytes: new Uint8Array(64), reason: "malformed" });
      const s = router.stats();
      expect(s.rejected).toBe(1000);
      expect(s.inFlight + s.published + s.failed).toBeLessThanOrEqual(8 * 2);
      expect(s.shed).toBeGreaterThanOrEqual(1000 - 16);
      expect(router.counts()).toEqual({ malformed: 1000 });
      expect(router.unpublished().malformed).toBeGreaterThanOrEqual(s.shed);
    } finally {
      await conn.close().catch(() => undefined);
      await own.dispose();
    }
  });
});
