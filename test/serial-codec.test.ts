/**
 * The serial-event wire codec (connectors/wire/serial-codec.ts): what round-trips, and the typed
 * reason every malformed event gets (the reason the dead-letter router counts it by).
 */
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { DecodeError, EncodeError } from "../connectors/errors.js";
import { decodeSerialRecord, encodeSerialRecord } from "../connectors/wire/serial-codec.js";
import { SerialSimulator } from "../connectors/sim/serial-simulator.js";

const SUBJECT = "lw.site1.serial.M-001";
const GOOD = {
  serial_number: "0Q8J1X2ZP4KD",
  gtin: "09506000134352",
  batch_number: "B001-00001",
  production_timestamp: Date.UTC(2026, 0, 5, 6),
  machine_id: "M-001",
  operator_id: "OP-001-A",
};
const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

function reasonOf(bytes: Uint8Array, subject: string | undefined = SUBJECT): string {
  try {
    decodeSerialRecord(bytes, { subject });
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).reason;
  }
  return "accepted";
}

describe("serial codec", () => {
  it("serial - simulator events round-trip through MessagePack and JSON with every field", () => {
    const sim = new SerialSimulator({ seed: 3, attackEvery: 500, batchSerials: 400 });
    for (let i = 0; i < 3000; i++) {
      const e = sim.next();
      for (const format of ["msgpack", "json"] as const) {
        const d = decodeSerialRecord(encodeSerialRecord(e, format), { subject: `lw.site1.serial.${e.machine_id}` });
        const { attack: _attack, ...fields } = e;
        expect(d).toEqual(fields);
      }
    }
  });

  it("serial - ISO-8601 times are read as epoch ms; absent optionals stay absent", () => {
    const d = decodeSerialRecord(
      json({
        ...GOOD,
        production_timestamp: "2026-01-05T06:00:00.250Z",
        operator_id: null,
        received_timestamp: "2026-01-05T06:00:00.300Z",
      }),
      { subject: SUBJECT },
    );
    expect(d).toEqual({
      ...GOOD,
      production_timestamp: GOOD.production_timestamp + 250,
      operator_id: "",
      received_timestamp: GOOD.production_timestamp + 300,
    });
    expect(decodeSerialRecord(json({ ...GOOD, operator_id: undefined }))).not.toHaveProperty("event_type");
  });

  it("serial - every malformed event gets its reason", () => {
    expect(reasonOf(json(GOOD))).toBe("accepted");
    expect(reasonOf(json({ ...GOOD, gtin: 9506000134352 }))).toBe("wrong_type");
    expect(reasonOf(json({ ...GOOD, serial_number: undefined }))).toBe("missing_field");
    expect(reasonOf(json({ ...GOOD, production_timestamp: "soon" }))).toBe("bad_timestamp");
    expect(reasonOf(json({ ...GOOD, production_timestamp: 1e300 }))).toBe("bad_timestamp");
    expect(reasonOf(encodeMsgpack({ ...GOOD, production_timestamp: Number.POSITIVE_INFINITY }))).toBe("not_finite");
    expect(reasonOf(encodeMsgpack({ ...GOOD, received_timestamp: Number.NaN }))).toBe("not_finite");
    expect(reasonOf(json({ ...GOOD, machine_id: "M 001" }), undefined)).toBe("invalid_field");
    expect(reasonOf(json({ ...GOOD, machine_id: "M-002" }))).toBe("subject_mismatch");
    expect(reasonOf(json(GOOD), "lw.site1.sensor.M-001.pressure")).toBe("bad_subject");
    expect(reasonOf(json(GOOD), "lw.site1.serial")).toBe("bad_subject");
    expect(reasonOf(new Uint8Array([0xc1]))).toBe("malformed");
    expect(reasonOf(new TextEncoder().encode('{"serial_number": "A'))).toBe("truncated");
    expect(reasonOf(json({ ...GOOD, x: "y".repeat(5000) }))).toBe("too_large");
    expect(reasonOf(json({ ...GOOD, x: "y".repeat(300) }))).toBe("length_exceeded");
    expect(reasonOf(encodeMsgpack([GOOD]))).toBe("not_a_record");
    expect(reasonOf(new Uint8Array(0))).toBe("truncated");
  });

  it("serial - the encoder refuses what the decoder would", () => {
    expect(() => encodeSerialRecord({ ...GOOD, machine_id: "M.001" })).toThrow(EncodeError);
    expect(() => encodeSerialRecord({ ...GOOD, production_timestamp: Number.NaN })).toThrow(EncodeError);
    expect(() => encodeSerialRecord({ ...GOOD, gtin: 1 as unknown as string })).toThrow(EncodeError);
  });
});
