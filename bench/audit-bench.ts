/**
 * What the audit record costs per scored record (`npm run bench -- audit [--smoke] [--json]`),
 * each output with and without it side by side in one process, alternating rounds so the
 * machine's load falls on both alike:
 * - ml_scores as the ingest workers encode it (a Native block per chunk, rolling + SPC + isolation
 *   forest outputs from one engine run over seeded readings): + kernel_hash and config_hash;
 * - the score lines of NATS and the scores file (every analysis's members of a record): + the
 *   audit members;
 * - the ingest workers' whole compute per record (the kernels, the observers and the Native block),
 *   to see the encoding's difference against everything else a worker does;
 * - `linewatch replay --analysis rolling,spc` end to end (the rows pipeline, which `--audit`
 *   takes), CSV → NDJSON: + the header line and the audit members.
 * CPU time of this thread per record (process.cpuUsage; the replay: of the process) and the
 * ratio with / without. Figures only.
 */
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelHash, type OutputChunk, SeededRandom } from "../engine/core/mod.js";
import {
  type AnalysisSpec,
  AuditMembers,
  auditConfig,
  auditStamp,
  type AuditStamp,
  buildAnalyses,
  runReplay,
  scoreLayout,
} from "../engine/jobs/mod.js";
import { auditColumns, encodeRowBinaryString, encodeScoreNative, keyNames, NativeWriter } from "../connectors/clickhouse/mod.js";
import { observeChunkRows, observeRecord, type RecordAnalysis, type RowContext } from "../operators/mod.js";
import { type BenchMachine, benchMachine, machineLine } from "./bench-kit.js";
import { scoredAnalysisSpecs } from "./kit/scored-specs.js";
import { benchEngine, copyChunk, pushRandomWalk } from "./kit/seeded-readings.js";

export const DEFAULT_AUDIT_BENCH_RECORDS = 400_000;
export const SMOKE_AUDIT_BENCH_RECORDS = 20_000;
const KEYS = 60;
const ROUNDS = 5;
const SMOKE_ROUNDS = 2;

export interface AuditBenchFigures {
  output: string;
  /** CPU µs per record without / with the audit record, the best round of each. */
  withoutMicros: number;
  withMicros: number;
  /** with / without. */
  ratio: number;
  /** Bytes per record without / with (what goes to the server, the wire or the file). */
  withoutBytes: number;
  withBytes: number;
}

export interface AuditBenchReport {
  machine: BenchMachine;
  loadAverageAtEnd: number;
  records: number;
  rounds: number;
  figures: AuditBenchFigures[];
}

export async function runAuditBench(
  o: { smoke?: boolean; records?: number; progress?: (line: string) => void } = {},
): Promise<AuditBenchReport> {
  const machine = benchMachine();
  const records = o.records ?? (o.smoke ? SMOKE_AUDIT_BENCH_RECORDS : DEFAULT_AUDIT_BENCH_RECORDS);
  const rounds = o.smoke ? SMOKE_ROUNDS : ROUNDS;
  const specs = scoredAnalysisSpecs();
  const stamp = auditStamp(auditConfig(specs, "ms", null, true), kernelHash());
  o.progress?.(`scoring ${records} records (rolling, spc, iforest) once for the encoders`);
  const scored = await scoredChunks(specs, records);
  const figures = [
    // Encoding is quick: 10 passes per measurement keep each above ~0.2 s, past the clock's and the GC's noise.
    sideBySide("ml_scores Native block (ingest workers)", rounds, records, 10, (audited) =>
      nativeBytes(scored, specs, audited ? stamp : null),
    ),
    sideBySide("score lines (NATS, scores file)", rounds, records, 2, (audited) => lineBytes(scored, audited ? stamp : null)),
  ];
  o.progress?.("the workers' compute (kernels, observers, Native blocks) with and without the audit columns");
  figures.push(
    await sideBySideAsync("kernels + observers + ml_scores Native", rounds, records, (audited) =>
      scoreAndEncode(specs, records, audited ? stamp : null),
    ),
  );
  o.progress?.("replay rolling,spc rows pipeline with and without --audit");
  figures.push(await replaySideBySide(rounds, Math.min(records, 200_000), stamp));
  return { machine, loadAverageAtEnd: (await import("node:os")).loadavg()[0], records, rounds, figures };
}

export function formatAuditBenchReport(r: AuditBenchReport): string {
  const lines = [
    "audit record: cost per record, with and without (best of each, rounds alternating)",
    machineLine(r.machine),
    `load average at the end ${r.loadAverageAtEnd.toFixed(2)}; ${r.records} records, ${r.rounds} rounds`,
    "",
    `${"output".padEnd(44)} ${"without µs/rec".padStart(14)} ${"with µs/rec".padStart(12)} ${"ratio".padStart(6)} ${"bytes/rec".padStart(14)}`,
  ];
  for (const f of r.figures)
    lines.push(
      `${f.output.padEnd(44)} ${f.withoutMicros.toFixed(3).padStart(14)} ${f.withMicros.toFixed(3).padStart(12)} ` +
        `${f.ratio.toFixed(3).padStart(6)} ${`${f.withoutBytes.toFixed(0)} → ${f.withBytes.toFixed(0)}`.padStart(14)}`,
    );
  return lines.join("\n");
}

// ---- the outputs ----

interface Scored {
  analyses: RecordAnalysis[];
  chunks: OutputChunk[];
  keyNames: string[];
}

/** The engine's output chunks of seeded readings (copied: the engine reuses its buffers), observed as the workers observe them. */
async function scoredChunks(specs: readonly AnalysisSpec[], records: number): Promise<Scored> {
  const chunks: OutputChunk[] = [];
  const run = await scoreReadings(specs, records, (c) => chunks.push(copyChunk(c, new Uint8Array(0))));
  return { ...run, chunks };
}

/**
 * The ingest workers' compute for `records` seeded readings: the kernels, the observers and each
 * chunk's ml_scores Native block (audited or not); returns the block bytes made.
 */
async function scoreAndEncode(specs: readonly AnalysisSpec[], records: number, stamp: AuditStamp | null): Promise<number> {
  const writer = new NativeWriter(1 << 20);
  const audit = stamp === null ? undefined : auditColumns(stamp.kernelHash, stamp.configHash);
  const layout = scoreLayout(specs);
  const names = Array.from({ length: KEYS }, (_, k) => keyNames([`M-${k}`, "temperature"]));
  let modelHash: Uint8Array | undefined;
  let bytes = 0;
  await scoreReadings(specs, records, (c, analyses) => {
    modelHash ??= encodeRowBinaryString((analyses[2] as unknown as { activeHash: string }).activeHash);
    bytes += encodeScoreNative(c, { keys: names, layout, modelHash, audit, writer }).block.bytes.length;
  });
  return bytes;
}

/** One in-thread engine over seeded readings of {@link KEYS} keys; each observed chunk to `onChunk`. */
async function scoreReadings(
  specs: readonly AnalysisSpec[],
  records: number,
  onChunk: (chunk: OutputChunk, analyses: readonly RecordAnalysis[]) => void,
): Promise<{ analyses: RecordAnalysis[]; keyNames: string[] }> {
  const analyses = buildAnalyses(specs, () => {});
  const names = Array.from({ length: KEYS }, (_, k) => `M-${k}/temperature`);
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const onOutput = (c: OutputChunk) => {
    observeChunkRows(analyses, c, (id) => names[id], ctx);
    onChunk(c, analyses);
  };
  const engine = benchEngine({ kernels: analyses.map((a) => a.kernel), keyNames: names, groups: 4, chunkRecords: 4096, onOutput });
  await pushRandomWalk(engine, KEYS, { records, seed: 11 });
  return { analyses, keyNames: names };
}

/** Encodes every chunk as the workers do; returns the bytes made. */
function nativeBytes(s: Scored, specs: readonly AnalysisSpec[], stamp: AuditStamp | null): number {
  const keys = s.keyNames.map((n) => keyNames(n.split("/")));
  const writer = new NativeWriter(1 << 20);
  const modelHash = encodeRowBinaryString((s.analyses[2] as unknown as { activeHash: string }).activeHash);
  const audit = stamp === null ? undefined : auditColumns(stamp.kernelHash, stamp.configHash);
  const layout = scoreLayout(specs);
  let bytes = 0;
  for (const c of s.chunks) bytes += encodeScoreNative(c, { keys, layout, modelHash, audit, writer }).block.bytes.length;
  return bytes;
}

/** Every record's score line members (and audit members); returns their characters. */
function lineBytes(s: Scored, stamp: AuditStamp | null): number {
  const audit = stamp === null ? null : new AuditMembers(stamp, s.analyses);
  const rows = s.analyses.map(() => new Float64Array(0));
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const noObservers = s.analyses.map((a) => ({ ...a, observe: undefined }) as RecordAnalysis);
  let chars = 0;
  for (const c of s.chunks)
    for (let i = 0; i < c.length; i++) {
      let members = observeRecord(noObservers, c, i, s.keyNames[c.keyIds[i]], ctx, rows, true);
      if (audit !== null) members += audit.of((k) => rows[k]);
      chars += members.length;
    }
  return chars;
}

function sideBySide(output: string, rounds: number, records: number, passes: number, run: (audited: boolean) => number): AuditBenchFigures {
  const best = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  const bytes = [0, 0];
  for (let r = 0; r < rounds; r++)
    for (const audited of r % 2 === 0 ? [false, true] : [true, false]) {
      const t0 = process.cpuUsage();
      for (let p = 0; p < passes; p++) bytes[Number(audited)] = run(audited);
      const t = process.cpuUsage(t0);
      best[Number(audited)] = Math.min(best[Number(audited)], (t.user + t.system) / (records * passes));
    }
  return figures(output, best, bytes, records);
}

async function sideBySideAsync(
  output: string,
  rounds: number,
  records: number,
  run: (audited: boolean) => Promise<number>,
): Promise<AuditBenchFigures> {
  const best = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  const bytes = [0, 0];
  for (let r = 0; r < rounds; r++)
    for (const audited of r % 2 === 0 ? [false, true] : [true, false]) {
      const t0 = process.cpuUsage();
      bytes[Number(audited)] = await run(audited);
      const t = process.cpuUsage(t0);
      best[Number(audited)] = Math.min(best[Number(audited)], (t.user + t.system) / records);
    }
  return figures(output, best, bytes, records);
}

async function replaySideBySide(rounds: number, rows: number, stamp: AuditStamp): Promise<AuditBenchFigures> {
  const dir = mkdtempSync(join(tmpdir(), "lw-audit-bench-"));
  try {
    const input = join(dir, "input.csv");
    const rng = new SeededRandom(5);
    const lines = ["timestamp,machine_id,sensor_type,sensor_value"];
    for (let i = 0; i < rows; i++) lines.push(`${1_700_000_000_000 + i * 10},M-${i % 20},temperature,${(50 + rng.normal()).toFixed(3)}`);
    writeFileSync(input, `${lines.join("\n")}\n`);
    const best = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
    const bytes = [0, 0];
    for (let r = 0; r < rounds; r++)
      for (const audited of r % 2 === 0 ? [false, true] : [true, false]) {
        const out = join(dir, "out.ndjson");
        const output = createWriteStream(out);
        const analyses = buildAnalyses(scoredAnalysisSpecs().slice(0, 2), () => {});
        const t0 = process.cpuUsage();
        await runReplay({
          input,
          analyses,
          timeColumn: "timestamp",
          timeUnit: "ms",
          lateness: null,
          workers: 0,
          keysMax: 64,
          batchRecordsMax: 4096,
          output,
          progress: null,
          pipeline: "rows",
          audit: audited ? stamp : undefined,
        });
        await new Promise<void>((resolve) => output.end(resolve));
        const t = process.cpuUsage(t0);
        best[Number(audited)] = Math.min(best[Number(audited)], (t.user + t.system) / rows);
        bytes[Number(audited)] = output.bytesWritten;
      }
    return figures("replay rolling,spc (rows pipeline, file)", best, bytes, rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function figures(output: string, best: number[], bytes: number[], records: number): AuditBenchFigures {
  return {
    output,
    withoutMicros: best[0],
    withMicros: best[1],
    ratio: best[1] / best[0],
    withoutBytes: bytes[0] / records,
    withBytes: bytes[1] / records,
  };
}
