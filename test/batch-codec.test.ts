/**
 * The process and quality records on the wire (connectors/wire/batch-codec.ts): both formats
 * round-trip what the simulator produces; every malformed input is a DecodeError whose reason the
 * dead-letter router counts; the batch-stream file reader names the line and reason.
 */
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { BatchSimulator, formatProcessNdjson, formatQualityNdjson } from "../connectors/sim/batch-simulator.js";
import { decodeProcessRecord, decodeQualityRecord, encodeProcessRecord, encodeQualityRecord } from "../connectors/wire/batch-codec.js";
import { parseSubject, processSubject, qualitySubject } from "../connectors/wire/subjects.js";
import { DecodeError, EncodeError } from "../connectors/errors.js";
import { DeadLetterRouter, reasonOf } from "../connectors/nats/dead-letter.js";
import { parseBatchStreams } from "../connectors/files/batch-streams.js";
import { InputError } from "../engine/core/errors.js";
import type { ProcessRecord, QualityRecord } from "../operators/quality/mod.js";

/** The first few readings and the first outcome of a small simulation (copies). */
function sample(): { readings: ProcessRecord[]; outcome: QualityRecord } {
  const sim = new BatchSimulator({ seed: 4, batches: 2, lines: 1 });
  const readings: ProcessRecord[] = [];
  for (let kind = sim.next(); kind !== null; kind = sim.next()) {
    if (kind === "process") readings.push(structuredClone(sim.reading));
    else {
      const { expected: _, ...outcome } = sim.outcome as NonNullable<typeof sim.outcome>;
      return { readings, outcome };
    }
  }
  throw new Error("no outcome");
}

const { readings, outcome } = sample();
const reading = readings[3];
const TEXT = new TextEncoder();
const PROCESS_SUBJECT = processSubject("s1", reading.line_id);
const QUALITY_SUBJECT = qualitySubject("s1", outcome.line_id);

/** The reason a payload (an object, encoded as JSON) is rejected with, or "accepted". */
function processReason(o: unknown, subject = PROCESS_SUBJECT): string {
  try {
    decodeProcessRecord(TEXT.encode(JSON.stringify(o)), { subject });
    return "accepted";
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).reason;
  }
}

function qualityReason(o: unknown, subject = QUALITY_SUBJECT): string {
  try {
    decodeQualityRecord(TEXT.encode(JSON.stringify(o)), { subject });
    return "accepted";
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).reason;
  }
}

/** Deletes a field: the value of {@link changed}. */
const DROP = Symbol("drop");

/** A deep copy of `record` with the field at `path` (`a.b`) set to `value`, or deleted. */
function changed(record: object, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(record) as Record<string, unknown>;
  const keys = path.split(".");
  let o = copy;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = keys[keys.length - 1];
  if (value === DROP) delete o[last];
  else o[last] = value;
  return copy;
}

const withProcess = (path: string, value: unknown) => changed(reading, path, value);
const withQuality = (path: string, value: unknown) => changed(outcome, path, value);

describe("batch codec", () => {
  it("codec - process readings and quality outcomes round-trip in MessagePack and JSON, on their subjects", () => {
    for (const format of ["msgpack", "json"] as const) {
      for (const r of readings) expect(decodeProcessRecord(encodeProcessRecord(r, format), { subject: PROCESS_SUBJECT })).toEqual(r);
      expect(decodeQualityRecord(encodeQualityRecord(outcome, format), { subject: QUALITY_SUBJECT })).toEqual(outcome);
    }
    expect(parseSubject(QUALITY_SUBJECT)).toEqual({ kind: "quality", site: "s1", line: outcome.line_id });
  });

  it("codec - every malformed process reading is rejected with its reason", () => {
    const cases: Array<[string, unknown, string?]> = [
      ["missing_field", withProcess("batch_id", DROP)],
      ["missing_field", withProcess("process_parameters", DROP)],
      ["missing_field", withProcess("process_parameters.feed_rate", DROP)],
      ["wrong_type", withProcess("process_parameters.temperature", "21.5")],
      ["wrong_type", withProcess("environmental_conditions", 3)],
      ["wrong_type", withProcess("material_properties.supplier", 7)],
      ["invalid_field", withProcess("process_parameters.humidity", 140)],
      ["invalid_field", withProcess("process_parameters.speed", -1)],
      ["invalid_field", withProcess("units_produced", 1.5)],
      ["invalid_field", withProcess("planned_units", 0)],
      ["invalid_field", withProcess("material_properties.supplier", "")],
      ["invalid_field", withProcess("line_id", "L.1")],
      ["invalid_field", withProcess("record_type", "quality")],
      ["bad_timestamp", withProcess("timestamp", "yesterday")],
      ["length_exceeded", withProcess("batch_id", "B".repeat(300))],
      ["subject_mismatch", withProcess("line_id", "L-999")],
      ["bad_subject", reading, QUALITY_SUBJECT],
    ];
    for (const [reason, payload, subject] of cases)
      expect(processReason(payload, subject), JSON.stringify(payload).slice(0, 120)).toBe(reason);
    expect(processReason(reading)).toBe("accepted");
  });

  it("codec - every malformed quality outcome is rejected with its reason", () => {
    const cases: Array<[string, unknown]> = [
      ["missing_field", withQuality("defects", DROP)],
      ["missing_field", withQuality("first_pass_yield", DROP)],
      ["wrong_type", withQuality("defects", [1, 2, 3, 4])],
      ["invalid_field", withQuality("first_pass_yield", 1.2)],
      ["invalid_field", withQuality("defect_rate", -0.1)],
      ["invalid_field", withQuality("defects.labelling", -3)],
      ["invalid_field", withQuality("defects.other", outcome.units_produced)],
      ["invalid_field", withQuality("units_produced", 0)],
      ["invalid_field", withQuality("reworked_units", 2.5)],
      ["subject_mismatch", withQuality("line_id", "L-002")],
    ];
    for (const [reason, payload] of cases) expect(qualityReason(payload), JSON.stringify(payload).slice(0, 120)).toBe(reason);
    expect(qualityReason(outcome)).toBe("accepted");
  });

  it("codec - what only the bytes can carry: NaN, a huge message, a cut-off message, too deep nesting", () => {
    const decode = (bytes: Uint8Array) => {
      try {
        decodeProcessRecord(bytes, { subject: PROCESS_SUBJECT });
        return "accepted";
      } catch (e) {
        return reasonOf(e);
      }
    };
    expect(decode(encodeMsgpack(withProcess("process_parameters.pressure", Number.NaN)))).toBe("not_finite");
    expect(decode(encodeMsgpack([reading]))).toBe("not_a_record");
    expect(decode(TEXT.encode(JSON.stringify(reading).replace(/"speed":[0-9.]+/, '"speed":1e999')))).toBe("not_finite");
    expect(decode(TEXT.encode(JSON.stringify({ ...reading, note: "x".repeat(5000) })))).toBe("too_large");
    expect(decode(TEXT.encode(JSON.stringify(reading).slice(0, 200)))).toBe("truncated");
    let deep: unknown = 1;
    for (let i = 0; i < 12; i++) deep = { d: deep };
    expect(decode(encodeMsgpack({ ...reading, deep }))).toBe("too_deep");
  });

  it("codec - rejections reach the dead-letter router counted by reason", () => {
    const published: Array<Record<string, string>> = [];
    const router = new DeadLetterRouter({ site: "s1", publish: (_subject, _data, headers) => void published.push(headers) });
    for (const bytes of [TEXT.encode("{"), TEXT.encode(JSON.stringify(withProcess("timestamp", DROP)))]) {
      try {
        decodeProcessRecord(bytes, { subject: PROCESS_SUBJECT });
      } catch (error) {
        router.reject({ subject: PROCESS_SUBJECT, bytes, reason: reasonOf(error), error });
      }
    }
    expect(router.counts()).toEqual({ truncated: 1, missing_field: 1 });
    expect(published.map((h) => h["Lw-Reason"])).toEqual(["truncated", "missing_field"]);
  });

  it("codec - the encoder refuses what the decoder would reject", () => {
    const bad = withProcess("process_parameters.humidity", 101) as unknown as ProcessRecord;
    expect(() => encodeProcessRecord(bad)).toThrow(EncodeError);
    const nan = withQuality("first_pass_yield", Number.NaN) as unknown as QualityRecord;
    expect(() => encodeQualityRecord(nan, "json")).toThrow(EncodeError);
  });

  it("batch-stream file - the simulator's lines read back; a bad line stops the read naming its line and reason", () => {
    const text = readings.map(formatProcessNdjson).join("") + formatQualityNdjson(outcome);
    const streams = parseBatchStreams(text, "b.ndjson");
    expect(streams.process).toEqual(readings);
    expect(streams.quality).toEqual([outcome]);
    const broken = `${formatProcessNdjson(readings[0])}${formatProcessNdjson(readings[1]).replace('"humidity":', '"humidity":"wet","x":')}`;
    expect(() => parseBatchStreams(broken, "b.ndjson")).toThrow(InputError);
    expect(() => parseBatchStreams(broken, "b.ndjson")).toThrow(/b\.ndjson:2: wrong_type: process_parameters\.humidity/);
    expect(() => parseBatchStreams('{"record_type":"sensor"}\n', "b.ndjson")).toThrow(/b\.ndjson:1: invalid_field/);
  });
});
