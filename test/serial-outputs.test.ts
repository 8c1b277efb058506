/**
 * The serial job's outputs without servers (engine/jobs/serial-outputs.ts): what goes on the topics for
 * a line id that cannot be a topic level, and the quarantine file kept in sync both ways — a
 * release made with `linewatch serial quarantine release` while the run goes on reaches the list
 * and its outputs; a release through the API reaches the file.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SerialOutputs } from "../engine/jobs/serial-outputs.js";
import { REASON, SERIAL_COL as C, SERIAL_OUT_FIELDS, SERIAL_PAYLOAD_BYTES } from "../operators/serial/layout.js";
import { encodeSerialFields } from "../operators/serial/payload.js";
import { QuarantineList, type QuarantineEvent } from "../operators/serial/quarantine.js";
import { createLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

const GTIN = "09506000134352";

function occurrence(serial: string, machine = "M-001"): QuarantineEvent {
  return {
    serial_number: serial,
    gtin: GTIN,
    batch_number: "B1",
    machine_id: machine,
    operator_id: "OP",
    production_time: Date.UTC(2026, 0, 5),
    row: 1,
    anomaly_score: 0.96,
    confidence_level: 1,
    risk_level: "critical",
    anomaly_types: ["duplicate"],
    reasons: ["duplicate_in_batch"],
    quarantined_at: new Date(Date.UTC(2026, 0, 5, 1)).toISOString(),
    occurrences: 1,
    kept: true,
  };
}

/** What the analysis does on a quarantined occurrence: the list first, then the outputs. */
function quarantine(list: QuarantineList, outputs: SerialOutputs, serial: string): void {
  const { occurrences: _o, kept: _k, ...e } = occurrence(serial);
  list.add(e);
  outputs.quarantined(occurrence(serial));
}

describe("serial outputs", () => {
  it("serial - a flagged event of a line whose id cannot be a topic level is counted, with no line topic", () => {
    const published: string[] = [];
    const outputs = new SerialOutputs(new QuarantineList(), { live: { publish: (topic) => published.push(topic) }, log: QUIET });
    const payload = new Uint8Array(SERIAL_PAYLOAD_BYTES);
    const row = new Float64Array(SERIAL_OUT_FIELDS);
    row[C.flags] = REASON.gtin_check_digit;
    row[C.anomaly_score] = 0.8;
    row[C.confidence_level] = 1;
    row[C.risk] = 3;
    for (const machine of ["L+1", "L-2"]) {
      encodeSerialFields(
        { serial: "S1", gtin: GTIN, batch: "B1", machine, operator: "OP", arrival: 0, batchClose: false, ledgerBits: 0 },
        payload,
        0,
      );
      outputs.detection(row, { keyId: 0, key: machine, position: 0, time: Date.UTC(2026, 0, 5), value: 0 }, payload);
    }
    expect(outputs.counts.detections).toBe(2);
    expect(published).toEqual(["line/L-2"]);
  });

  it("serial - the quarantine file: a release made in it reaches the list and the topic; an API release reaches the file", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "lw-serial-outputs-")), "q.json");
    const list = new QuarantineList();
    const messages: Array<Record<string, unknown>> = [];
    const outputs = new SerialOutputs(list, {
      live: { publish: (_t, d) => messages.push(d as Record<string, unknown>) },
      quarantineFile: file,
      fileSyncIntervalMs: 60_000,
      log: QUIET,
    });
    for (const s of ["A1", "A2", "A3"]) quarantine(list, outputs, s);
    expect(outputs.syncFile()).toEqual([]);
    expect(
      QuarantineList.load(file)
        .list()
        .map((e) => e.serial_number)
        .sort(),
    ).toEqual(["A1", "A2", "A3"]);

    // `linewatch serial quarantine release A2 --note checked` while the run goes on.
    const edited = QuarantineList.load(file);
    expect(edited.release("A2", GTIN, "checked").length).toBe(1);
    edited.write(file);
    const fromFile = outputs.syncFile();
    expect(fromFile.map((r) => [r.serial_number, r.release_note])).toEqual([["A2", "checked"]]);
    expect(
      list
        .list()
        .map((e) => e.serial_number)
        .sort(),
    ).toEqual(["A1", "A3"]);
    expect(messages.at(-1)).toMatchObject({ action: "released", serial_number: "A2", release_note: "checked" });

    // Through the API: gone from the file's entries, kept in its released history with the file's own.
    expect(outputs.release("A3", { note: "ok" }).length).toBe(1);
    expect(outputs.release("A3", {})).toEqual([]);
    const saved = JSON.parse(readFileSync(file, "utf8")) as {
      entries: Array<{ serial_number: string }>;
      released: Array<{ serial_number: string }>;
    };
    expect(saved.entries.map((e) => e.serial_number)).toEqual(["A1"]);
    expect(saved.released.map((r) => r.serial_number).sort()).toEqual(["A2", "A3"]);
    expect(outputs.counts.released).toBe(2);
    await outputs.close();
    // A second sync changes nothing: the file's releases are not applied twice.
    expect(outputs.syncFile()).toEqual([]);
    expect(outputs.counts.released).toBe(2);
  });
});
