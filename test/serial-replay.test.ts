/**
 * `linewatch replay --analysis serial` and the serial commands: the replay contract (members,
 * types, verdicts per event, input order, on the worker pool), the quarantine file and its CLI,
 * `linewatch serial report`, `linewatch entropy` and `linewatch simulate-serials`
 * (dist/engine/cli/main.js in a child process: `npm run build` first).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SerialSimulator, formatSerialEventCsv, formatSerialEventNdjson, SERIAL_EVENT_FIELDS } from "../connectors/sim/serial-simulator.js";
import { ConfigError } from "../engine/core/errors.js";
import { runReplay } from "../engine/jobs/replay.js";
import { StreamEngine } from "../engine/core/stream-engine.js";
import { mcvEstimate } from "../operators/serial/mcv-estimate.js";
import { withCheckDigit } from "../operators/serial/gs1.js";
import { DEFAULT_SERIAL_PARAMS } from "../operators/serial/layout.js";
import { serialAnalysis, serialKernel, type SerialAnalysisOptions } from "../operators/serial/serial.js";

type Line = Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), "lw-serial-replay-"));
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist", "engine", "cli", "main.js");
const G = withCheckDigit("0950600013435");

const CONTRACT = [
  "row",
  "key",
  "timestamp",
  "value",
  "serial_number",
  "gtin",
  "batch_number",
  "machine_id",
  "valid",
  "checks",
  "duplicate",
  "anomaly_types",
  "entropy_bits_per_char",
  "min_entropy_mcv",
  "guess_probability",
  "anomaly_score",
  "confidence_level",
  "risk_level",
  "quarantine",
];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 26, cwd: dir }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

async function replay(input: string, options: Partial<SerialAnalysisOptions> = {}, workers = 2): Promise<Line[]> {
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on("data", (c: Buffer) => chunks.push(c));
  const analysis = serialAnalysis({
    params: { ...DEFAULT_SERIAL_PARAMS },
    timeUnit: "ms",
    clock: () => Date.UTC(2026, 0, 5, 12),
    ...options,
  });
  await runReplay({
    input,
    analyses: [analysis],
    timeColumn: "timestamp",
    timeUnit: "ms",
    lateness: null,
    workers,
    keysMax: 16,
    batchRecordsMax: 64,
    output,
    progress: null,
  });
  return Buffer.concat(chunks)
    .toString("utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);
}

function csv(name: string, rows: string[][]): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    ["serial_number,gtin,batch_number,production_timestamp,machine_id,operator_id,event_type", ...rows.map((r) => r.join(","))].join("\n") +
      "\n",
  );
  return path;
}

describe("serial replay - contract", () => {
  it("serial - replay writes every contract member with its type, in input order, on the pool", async () => {
    const sim = new SerialSimulator({ seed: 5, attackEvery: 2000, batchSerials: 1500 });
    const events = Array.from({ length: 12_000 }, () => sim.next());
    const path = join(dir, "sim.ndjson");
    writeFileSync(path, events.map(formatSerialEventNdjson).join(""));
    const lines = await replay(path);
    expect(lines.length).toBe(events.length);
    // The short-term rate needs a few intervals to recover after a burst: those serials may still say burst.
    const afterBurst = new Map<string, number>();
    lines.forEach((l, i) => {
      const e = events[i];
      if (e.attack === "burst") afterBurst.set(e.machine_id, 10);
      else if (e.event_type === "serial") afterBurst.set(e.machine_id, Math.max(0, (afterBurst.get(e.machine_id) ?? 0) - 1));
      expect(l.row).toBe(i);
      for (const m of CONTRACT) expect(l, `row ${i} lacks ${m}`).toHaveProperty(m);
      expect(l.serial_number).toBe(events[i].serial_number);
      expect(l.key).toBe(events[i].machine_id);
      expect(l.machine_id).toBe(events[i].machine_id);
      if (events[i].event_type === "batch_close") {
        expect(l).toMatchObject({ event_type: "batch_close", valid: null, anomaly_types: null, risk_level: null });
        return;
      }
      expect(typeof l.valid).toBe("boolean");
      expect(Object.keys(l.checks as object)).toEqual(["gtin_check_digit", "serial_charset", "serial_length", "pattern"]);
      expect(Array.isArray(l.anomaly_types)).toBe(true);
      expect(["none", "low", "medium", "high", "critical"]).toContain(l.risk_level);
      expect(l.anomaly_score as number).toBeGreaterThanOrEqual(0);
      expect(l.anomaly_score as number).toBeLessThanOrEqual(1);
      expect(l.quarantine).toBe(["high", "critical"].includes(l.risk_level as string));
      if (events[i].attack === undefined) {
        const trailing = (afterBurst.get(e.machine_id) ?? 0) > 0 && JSON.stringify(l.reasons) === '["burst"]';
        if (!trailing) expect(l.anomaly_types, `row ${i}`).toEqual([]);
      }
    });
    // The attacks show up with their types; the window figures fill in.
    const typesOf = (attack: string) =>
      new Set(lines.filter((_, i) => events[i].attack === attack).flatMap((l) => l.anomaly_types as string[]));
    expect(typesOf("duplicate").has("duplicate")).toBe(true);
    expect(typesOf("sequential").has("sequence")).toBe(true);
    expect(typesOf("wrong_machine").has("behavioral")).toBe(true);
    expect(typesOf("burst").has("temporal")).toBe(true);
    // From row 5000 on, the first clean serial whose line's whole window (the last
    // DEFAULT_SERIAL_PARAMS.window serials of that line) holds no attack serial: random serials only.
    const cleanSince = new Map<string, number>();
    let r = -1;
    events.forEach((e, i) => {
      if (e.event_type !== "serial") return;
      cleanSince.set(e.machine_id, e.attack === undefined ? (cleanSince.get(e.machine_id) ?? 0) + 1 : 0);
      if (r < 0 && i >= 5000 && (cleanSince.get(e.machine_id) ?? 0) > DEFAULT_SERIAL_PARAMS.window) r = i;
    });
    expect(r).toBeGreaterThanOrEqual(5000);
    expect(lines[r].guess_probability as number).toBeLessThan(1e-6);
    expect(lines[r].entropy_bits_per_char as number).toBeGreaterThan(4.9);
    expect(lines[r].position_entropy_min as number).toBeGreaterThan(4);
    expect(lines[r].position_entropy_min as number).toBeLessThanOrEqual(lines[r].entropy_bits_per_char as number);
  });

  it("serial - the same input gives the same lines with 0 and 2 workers (verdicts in arrival order)", async () => {
    const sim = new SerialSimulator({ seed: 9, attackEvery: 1500, batchSerials: 1000 });
    const path = join(dir, "det.csv");
    writeFileSync(
      path,
      `${SERIAL_EVENT_FIELDS.join(",")}\n${Array.from({ length: 8000 }, () => formatSerialEventCsv(sim.next())).join("")}`,
    );
    const a = await replay(path, {}, 0);
    const b = await replay(path, {}, 2);
    expect(b).toEqual(a);
  });

  it("serial - per-event verdicts on a hand-made CSV: checks, duplicates, machine, closed batch, future clock", async () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 5, 6, 0, s)).toISOString();
    const path = csv("hand.csv", [
      ["A1B2C3D4E5F6", G, "B1", t(0), "M-1", "OP-1", "serial"],
      ["K9M2X7Q4W1R8", G.slice(0, -1) + String((Number(G.at(-1)) + 1) % 10), "B1", t(1), "M-1", "OP-1", "serial"],
      ["A1B2 C3", G, "B1", t(2), "M-1", "OP-1", "serial"],
      ["A1B2C3D4E5F6", G, "B1", t(3), "M-1", "OP-1", "serial"],
      ["ZZZZ99998888", G, "B1", t(4), "M-2", "OP-1", "serial"],
      ["", G, "B1", t(5), "M-1", "OP-1", "batch_close"],
      ["QQQQ11112222", G, "B1", t(6), "M-1", "OP-1", "serial"],
      ["FUTURE000001", G, "B2", new Date(Date.UTC(2026, 0, 5, 13)).toISOString(), "M-3", "OP-1", "serial"],
      ["X".repeat(21), G, "B2", t(8), "M-1", "OP-1", "serial"],
    ]);
    const patterns = new Map([["*", /^[0-9A-Z]{12}$/u]]);
    const lines = await replay(path, { patterns });
    expect(lines[0]).toMatchObject({
      valid: true,
      checks: { gtin_check_digit: true, serial_charset: true, serial_length: true, pattern: true },
      duplicate: false,
      anomaly_types: [],
      risk_level: "none",
    });
    expect(lines[1]).toMatchObject({
      valid: false,
      checks: { gtin_check_digit: false },
      anomaly_types: ["pattern"],
      risk_level: "high",
      quarantine: true,
    });
    expect(lines[2]).toMatchObject({
      valid: false,
      checks: { serial_charset: false, serial_length: true, pattern: false },
      anomaly_types: ["pattern"],
    });
    expect(lines[3]).toMatchObject({
      valid: true,
      duplicate: true,
      anomaly_types: ["duplicate"],
      reasons: ["duplicate_in_batch"],
      risk_level: "critical",
    });
    expect(lines[4]).toMatchObject({ anomaly_types: ["behavioral"], reasons: ["new_machine_for_batch"], quarantine: true });
    expect(lines[5]).toMatchObject({ event_type: "batch_close", batch_number: "B1" });
    expect(lines[6]).toMatchObject({ reasons: ["serial_after_batch_close"], risk_level: "high" });
    // Arrival clock for rows without received_timestamp: the processing clock (12:00 here).
    expect(lines[7]).toMatchObject({ anomaly_types: ["temporal"], reasons: ["timestamp_future"] });
    expect(lines[8]).toMatchObject({ valid: false, checks: { serial_length: false, pattern: false } });
  });

  it("serial - a run without serial payloads is refused with ConfigError", async () => {
    const engine = new StreamEngine(
      {
        kernels: [serialKernel(DEFAULT_SERIAL_PARAMS)],
        workers: 0,
        groups: 1,
        keysMax: 1,
        batchRecordsMax: 4,
        lateness: null,
        reorderRecordsPerKeyMax: 4,
      },
      { onOutput() {} },
    );
    const id = engine.internKey("M-1");
    await engine.push({
      length: 1,
      keyIds: Uint32Array.of(id),
      times: Float64Array.of(0),
      values: Float64Array.of(0),
      positions: Float64Array.of(0),
    });
    await expect(engine.flush()).rejects.toThrow(ConfigError);
    await engine.close().catch(() => undefined);
  });
});

describe("serial commands", () => {
  it("serial - replay --analysis serial saves the quarantine list; quarantine list and release edit it", async () => {
    const sim = new SerialSimulator({ seed: 13, attackEvery: 3000, batchSerials: 2000 });
    writeFileSync(join(dir, "cmd.ndjson"), Array.from({ length: 20_000 }, () => formatSerialEventNdjson(sim.next())).join(""));
    const r = await cli([
      "replay",
      "cmd.ndjson",
      "--analysis",
      "serial",
      "--window",
      "128",
      "--out",
      "cmd.out.ndjson",
      "--serial-quarantine",
      "q.json",
      "--serial-quarantine-events",
      "qe.ndjson",
      "--quiet",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const q = JSON.parse(readFileSync(join(dir, "q.json"), "utf8"));
    expect(q.version).toBe(1);
    expect(q.entries.length).toBeGreaterThan(10);
    const out = readFileSync(join(dir, "cmd.out.ndjson"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
    const quarantinedRows = out.filter((l) => l.quarantine === true);
    expect(quarantinedRows.length).toBeGreaterThanOrEqual(q.entries.length);
    // The quarantine output: one event per quarantined row, with its reasons.
    const qe = readFileSync(join(dir, "qe.ndjson"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(qe.length).toBe(quarantinedRows.length);
    expect(new Set(qe.map((e: { row: number }) => e.row))).toEqual(new Set(quarantinedRows.map((l) => l.row)));
    expect(qe.every((e: { reasons: string[]; kept: boolean }) => e.reasons.length > 0 && e.kept)).toBe(true);
    const listed = await cli(["serial", "quarantine", "list", "--file", "q.json", "--json"]);
    expect(JSON.parse(listed.stdout).length).toBe(q.entries.length);
    const victim = q.entries[0];
    const released = await cli([
      "serial",
      "quarantine",
      "release",
      victim.serial_number,
      "--gtin",
      victim.gtin,
      "--note",
      "false alarm",
      "--file",
      "q.json",
    ]);
    expect(released.code, released.stderr).toBe(0);
    const after = JSON.parse(readFileSync(join(dir, "q.json"), "utf8"));
    expect(after.entries.length).toBe(q.entries.length - 1);
    expect(after.released[0]).toMatchObject({ serial_number: victim.serial_number, release_note: "false alarm" });
    const again = await cli(["serial", "quarantine", "release", victim.serial_number, "--gtin", victim.gtin, "--file", "q.json"]);
    expect(again.code).toBe(2);
    const table = await cli(["serial", "quarantine", "list", "--file", "q.json"]);
    expect(table.stdout).toContain(`${after.entries.length} serials`);
  });

  it("serial - serial report writes Markdown and JSON for a batch with its attacks", async () => {
    const sim = new SerialSimulator({ seed: 21, attackEvery: 2500, batchSerials: 4000 });
    const events = Array.from({ length: 16_000 }, () => sim.next());
    writeFileSync(join(dir, "rep.ndjson"), events.map(formatSerialEventNdjson).join(""));
    const attacked = events.find((e) => e.attack === "sequential");
    expect(attacked).toBeDefined();
    const batch = (attacked as { batch_number: string }).batch_number;
    const r = await cli(["serial", "report", "--batch", batch, "rep.ndjson", "--out", "rep"]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, "rep.json"), "utf8"));
    const expected = events.filter((e) => e.batch_number === batch && e.event_type === "serial").length;
    expect(json).toMatchObject({ batch_number: batch, events: expected });
    expect(json.by_type.sequence).toBeGreaterThanOrEqual(49);
    expect(json.quarantined.length).toBeGreaterThan(0);
    expect(json.quarantined.every((q: { batch_number: string }) => q.batch_number === batch)).toBe(true);
    expect(json.timeline.reduce((s: number, b: { events: number }) => s + b.events, 0)).toBe(expected);
    expect(json.entropy.entropy_bits_per_char.mean).toBeGreaterThan(4);
    const md = readFileSync(join(dir, "rep.md"), "utf8");
    expect(md).toContain(`# Serial investigation report: batch ${batch}`);
    expect(md).toContain("## Quarantined serials");
    expect(md).toContain("sequential_delta");
  });

  it("serial - entropy prints the MCV estimate of a symbol file (literal and bitstring)", async () => {
    const bytes = new Uint8Array(10_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 10 < 4 ? 3 : i % 4;
    writeFileSync(join(dir, "sym.bin"), bytes);
    const r = await cli(["entropy", "sym.bin", "--bits-per-symbol", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const mode = bytes.filter((b) => b === 3).length;
    expect(out).toMatchObject({
      symbols: 10_000,
      bits_per_symbol: 2,
      z: 2.5758293035489008,
      literal: { mode_count: mode, p_hat: mode / 10_000 },
    });
    expect(out.literal.min_entropy).toBeCloseTo(mcvEstimate(mode, 10_000).min_entropy, 14);
    const ones = Array.from(bytes).reduce((s, b) => s + (b & 1) + ((b >> 1) & 1), 0);
    expect(out.bitstring.mode_count).toBe(Math.max(ones, 20_000 - ones));
    // Symbols wider than the stated width are refused, as NIST's tool refuses them.
    expect((await cli(["entropy", "sym.bin", "--bits-per-symbol", "1"])).code).toBe(2);
    // --z 2.576, the standard's rounded quantile: a slightly wider bound, a little less entropy.
    const rounded = await cli(["entropy", "sym.bin", "--bits-per-symbol", "2", "--z", "2.576"]);
    const roundedOut = JSON.parse(rounded.stdout);
    expect(roundedOut.z).toBe(2.576);
    expect(roundedOut.literal.min_entropy).toBeCloseTo(mcvEstimate(mode, 10_000, 2.576).min_entropy, 14);
    expect(roundedOut.literal.min_entropy).toBeLessThan(out.literal.min_entropy);
    expect(out.literal.min_entropy - roundedOut.literal.min_entropy).toBeLessThan(1e-4);
  });

  it("serial - simulate-serials writes the same bytes for the same seed, and labels", async () => {
    const a = await cli([
      "simulate-serials",
      "--records",
      "3000",
      "--attack-every",
      "1000",
      "--format",
      "csv",
      "--out",
      "a.csv",
      "--labels",
      "a.labels",
    ]);
    const b = await cli(["simulate-serials", "--records", "3000", "--attack-every", "1000", "--format", "csv", "--out", "b.csv"]);
    expect(a.code + b.code, a.stderr + b.stderr).toBe(0);
    expect(readFileSync(join(dir, "a.csv"), "utf8")).toBe(readFileSync(join(dir, "b.csv"), "utf8"));
    const labels = readFileSync(join(dir, "a.labels"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(labels.map((l: { attack: string }) => l.attack)).toEqual(["duplicate", "sequential"]);
    expect(readFileSync(join(dir, "a.csv"), "utf8").split("\n")[0]).toBe(SERIAL_EVENT_FIELDS.join(","));
  });
});
