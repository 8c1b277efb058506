/**
 * The serial job's checkpoint without servers: a job checkpointed part-way and restored into a
 * fresh job scores the rest exactly as one uninterrupted job does (kernel state, ledger with its
 * filter and exact sets, quarantine list), and a checkpoint that does not fit — other parameters,
 * damaged bytes — is a CheckpointError that says what is wrong.
 */
import { describe, expect, it } from "vitest";
import { SerialSimulator, type SerialEvent } from "../connectors/sim/serial-simulator.js";
import { CheckpointError } from "../engine/core/errors.js";
import { SerialJob } from "../engine/jobs/serial-job.js";
import { DEFAULT_SERIAL_PARAMS, SERIAL_COL as C } from "../operators/serial/layout.js";
import { decodeSerialPayload } from "../operators/serial/payload.js";
import { serialAnalysis, type SerialAnalysisOptions } from "../operators/serial/serial.js";
import { reasonsOf, RISK_LEVELS } from "../operators/serial/score.js";

const LEDGER = { filterCapacity: 20_000 };

/** A job on the main thread whose every scored event is recorded as [position, serial, reasons, risk]. */
function job(rows: string[], options: Partial<SerialAnalysisOptions> = {}, ledgerThread = false, kernelsOnLedgerThread = false): SerialJob {
  const analysis = serialAnalysis({
    params: DEFAULT_SERIAL_PARAMS,
    timeUnit: "ms",
    ledger: LEDGER,
    ...options,
    onRow: (row, ctx, payload) => {
      if (!(row[C.anomaly_score] > 0)) return;
      rows.push(
        JSON.stringify([ctx.position, decodeSerialPayload(payload).serial, reasonsOf(row[C.flags] >>> 0), RISK_LEVELS[row[C.risk]]]),
      );
    },
  });
  return new SerialJob({ analysis, workers: 0, linesMax: 64, groups: 4, batchRecordsMax: 256, ledgerThread, kernelsOnLedgerThread });
}

async function feed(j: SerialJob, events: readonly SerialEvent[], from: number): Promise<void> {
  for (let i = 0; i < events.length; i++) await j.add(events[i], from + i);
  await j.flush(false);
}

/** Events with a serial of the first part repeated in the second (a duplicate across the restart). */
function events(): { first: SerialEvent[]; second: SerialEvent[] } {
  const sim = new SerialSimulator({ seed: 5, attackEvery: 500, batchSerials: 700 });
  const first = Array.from({ length: 3000 }, () => sim.next());
  const second = Array.from({ length: 3000 }, () => sim.next());
  const original = first[40];
  const at = second.findIndex((e, i) => i > 100 && e.machine_id === original.machine_id && e.event_type === "serial");
  second.splice(at + 1, 0, { ...second[at], serial_number: original.serial_number, gtin: original.gtin });
  return { first, second };
}

describe("serial checkpoint", () => {
  it.each([
    ["", false, false],
    [", the ledger on its own thread", true, false],
    [", the ledger and the kernels on one thread", true, true],
  ])(
    "serial - a job restored from a snapshot (encoded while the job went on) scores the rest as one uninterrupted job, the repeated serial a duplicate%s",
    async (_name, ledgerThread, kernelsOnLedgerThread) => {
      const { first, second } = events();
      const once: string[] = [];
      const whole = job(once);
      await feed(whole, [...first, ...second], 1);
      await whole.close();

      const split: string[] = [];
      const before = job(split, {}, ledgerThread, kernelsOnLedgerThread);
      await feed(before, first, 1);
      const snapshot = await before.snapshot(first.length);
      const quarantined = before.analysis.quarantine
        .list()
        .map((e) => e.serial_number)
        .sort();
      const stats = await before.ledgerStats();
      // The snapshot is a copy: the job goes on while it is encoded.
      const scored = split.length;
      await feed(before, second, first.length + 1);
      const bytes = await snapshot.encode();
      await before.close();
      split.length = scored;
      const after = job(split, {}, ledgerThread, kernelsOnLedgerThread);
      expect(await after.restore(bytes)).toBe(first.length);
      expect(
        after.analysis.quarantine
          .list()
          .map((e) => e.serial_number)
          .sort(),
      ).toEqual(quarantined);
      expect(await after.ledgerStats()).toEqual(stats);
      await feed(after, second, first.length + 1);
      await after.close();

      // Per-line order is kept; lines interleave as batches close, so compare the sets.
      expect([...split].sort()).toEqual([...once].sort());
      const repeat = split
        .map((r) => JSON.parse(r) as [number, string, string[], string])
        .find((r) => r[0] === first.length + second.findIndex((e) => e.serial_number === first[40].serial_number) + 1);
      expect(repeat?.[2].some((r) => r.startsWith("duplicate_"))).toBe(true);
      expect(after.analysis.quarantine.list().length).toBeGreaterThan(quarantined.length);
    },
    60_000,
  );

  it("serial - a checkpoint taken with another window or filter size is a CheckpointError naming the difference", async () => {
    const { first } = events();
    const j = job([]);
    await feed(j, first.slice(0, 500), 1);
    const bytes = await j.checkpoint(500);
    await j.close();
    const otherWindow = job([], { params: { ...DEFAULT_SERIAL_PARAMS, window: 128 } });
    await expect(otherWindow.restore(bytes)).rejects.toThrow(CheckpointError);
    await expect(otherWindow.restore(bytes)).rejects.toThrow(/serial\.window 256 there, 128 here/);
    await otherWindow.close();
    const otherFilter = job([], { ledger: { filterCapacity: 40_000 } });
    await expect(otherFilter.restore(bytes)).rejects.toThrow(/serial\.filterCapacity 20000 there, 40000 here/);
    await otherFilter.close();
  });

  it("serial - damaged checkpoint bytes are a CheckpointError, never a partial restore", async () => {
    const { first } = events();
    const j = job([]);
    await feed(j, first.slice(0, 500), 1);
    const bytes = await j.checkpoint(500);
    await j.close();
    const cases: Uint8Array[] = [
      bytes.subarray(0, 8),
      bytes.subarray(0, bytes.length - 100),
      Uint8Array.from(bytes, (b, i) => (i === 3 ? b ^ 0xff : b)),
    ];
    // Headers naming more body bytes than there are, or a section longer than the body.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = view.getUint32(8, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength))) as {
      bodyBytes: number;
      sections: Record<string, number>;
    };
    const withHeader = (h: object): Uint8Array => {
      const text = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(12 + text.length + bytes.length - 12 - headerLength);
      out.set(bytes.subarray(0, 12));
      new DataView(out.buffer).setUint32(8, text.length, true);
      out.set(text, 12);
      out.set(bytes.subarray(12 + headerLength), 12 + text.length);
      return out;
    };
    cases.push(
      withHeader({ ...header, bodyBytes: header.bodyBytes + 1, sections: { ...header.sections, serials: header.sections.serials + 1 } }),
    );
    cases.push(withHeader({ ...header, sections: { ...header.sections, ledger: 2 ** 40 } }));
    for (const damaged of cases) {
      const fresh = job([]);
      await expect(fresh.restore(damaged)).rejects.toThrow(CheckpointError);
      expect(fresh.analysis.ledger.stats().events).toBe(0);
      await fresh.close();
    }
  });
});
