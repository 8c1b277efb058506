/**
 * `linewatch audit verify --clickhouse URL --key K`: a key's ml_scores rows re-computed from the
 * readings they carry (value, time, seq), with the settings their config_hash names in
 * ml_audit_configs and each row's model (model_hash) from the registry, and compared column by
 * column, bit for bit: the recomputed rows are encoded by the same column encoder the ingest
 * workers use and read back as RowBinary, as the stored ones are.
 *
 * The analyses keep state per key (windows, baselines, CUSUM sums), so a key is re-run from its
 * first stored row; `from`/`to` only choose which rows are compared. The settings are those of
 * the key's first row: a row naming other settings differs at config_hash. Rows are read in
 * their arrival order (seq, then time) a page at a time, and matched to their recomputation by
 * (time, seq), so a run with allowed lateness (which reorders) is matched too.
 */
import { allocateBatch, ConfigError, kernelHash, type OutputChunk, StreamEngine } from "../../core/mod.js";
import {
  auditColumns,
  ClickHouseReader,
  decodeRowBinary,
  encodeRowBinaryString,
  encodeScoreColumns,
  keyNames,
  sqlString,
  type StoredRow,
} from "../../../connectors/clickhouse/mod.js";
import type { IsolationForestModel } from "../../../operators/iforest/mod.js";
import { observeChunkRows, type RecordAnalysis, type RowContext, roundStatistics } from "../../../operators/mod.js";
import { buildAnalyses, scoreLayout } from "../ingest/mod.js";
import { type AuditConfigDocument, parseAuditConfig } from "./config.js";
import { type ModelSource, needsModel, specsFromAuditConfig } from "./rebuild.js";
import { sameValue, type ScoreDifference, type VerifyReport, VerifyTally } from "./report.js";

export interface ClickHouseVerifyOptions {
  url: string;
  database: string;
  /** machine_id/sensor_type, or a machine_id (each of its sensors in turn). */
  key: string;
  /** Epoch ms: compare rows at or after `from` and before `to`. */
  from?: number;
  to?: number;
  /** Rows read per query (default 65 536). */
  pageRows?: number;
}

/** Columns not compared value for value: the kernel hash is reported once for all rows. */
const NOT_COMPARED = new Set(["kernel_hash"]);

export async function verifyAuditClickHouse(o: ClickHouseVerifyOptions, models: ModelSource): Promise<VerifyReport> {
  const reader = new ClickHouseReader({ url: o.url, database: o.database });
  const tally = new VerifyTally();
  const configs = new Set<string>();
  const used = new Set<string>();
  try {
    const [machine, sensor] = o.key.split("/", 2);
    const sensors =
      sensor !== undefined ? [sensor] : await reader.distinct("ml_scores", "sensor_type", `machine_id = ${sqlString(machine)}`);
    if (sensors.length === 0) throw new ConfigError("--key", `no rows of machine ${machine} in ${o.database}.ml_scores`);
    for (const s of sensors) await verifyKey(reader, machine, s, o, models, { tally, configs, used });
  } finally {
    await reader.close();
  }
  return tally.report(kernelHash(), [...configs], [...used]);
}

interface KeyTally {
  tally: VerifyTally;
  configs: Set<string>;
  used: Set<string>;
}

/** One key: its rows page by page into one engine per model, each recomputed row matched to its stored row. */
async function verifyKey(
  reader: ClickHouseReader,
  machine: string,
  sensor: string,
  o: ClickHouseVerifyOptions,
  models: ModelSource,
  t: KeyTally,
): Promise<void> {
  const where = `machine_id = ${sqlString(machine)} AND sensor_type = ${sqlString(sensor)}`;
  const page = o.pageRows ?? 1 << 16;
  const first = await reader.rows("ml_scores", where, "seq, timestamp_ms", 0, 1);
  if (first.length === 0) throw new ConfigError("--key", `no rows of ${machine}/${sensor} in ${reader.database}.ml_scores`);
  const configHash = String(first[0].config_hash);
  if (configHash === "") throw new ConfigError("--key", `${machine}/${sensor}: its rows carry no config_hash (the run was not audited)`);
  const doc = await storedConfig(reader, configHash);
  t.configs.add(configHash);
  const versions = needsModel(doc) ? await reader.distinct("ml_scores", "model_hash", `${where} AND model_hash != ''`) : [];
  const runs: KeyRun[] = [];
  for (const v of versions.length > 0 ? versions : [null]) {
    const model = v === null ? null : await models.iforest(v);
    if (v !== null) t.used.add(v);
    runs.push(new KeyRun(doc, configHash, model, `${machine}/${sensor}`, v ?? ""));
  }
  const pending = new Map<string, StoredRow>();
  const inRange = (r: StoredRow) => {
    const ms = Number(r.timestamp_ms);
    return (o.from === undefined || ms >= o.from) && (o.to === undefined || ms < o.to);
  };
  const onRow = (run: KeyRun, row: StoredRow) => {
    const id = rowId(row);
    const stored = pending.get(id);
    if (stored === undefined) return;
    // Each row is compared with the recomputation of its own model (the first run when it has none).
    if (String(stored.model_hash) !== run.model && !(stored.model_hash === "" && run === runs[0])) return;
    pending.delete(id);
    if (inRange(stored)) t.tally.score(firstDifference(stored, row));
  };
  for (let offset = 0; ; offset += page) {
    const rows = await reader.rows("ml_scores", where, "seq, timestamp_ms", offset, page);
    for (const r of rows) {
      pending.set(rowId(r), r);
      if (typeof r.kernel_hash === "string" && r.kernel_hash !== "") t.tally.kernels.add(r.kernel_hash);
    }
    for (const run of runs) await run.push(rows, (row) => onRow(run, row));
    if (rows.length < page) break;
  }
  for (const run of runs) await run.close((row) => onRow(run, row));
  for (const stored of pending.values())
    if (inRange(stored)) t.tally.score({ score: scoreName(stored), field: "(row)", stored: "stored", recomputed: "no recomputed row" });
}

/** The settings document of `configHash`, checked to hash to it. */
async function storedConfig(reader: ClickHouseReader, configHash: string): Promise<AuditConfigDocument> {
  const rows = await reader.rows("ml_audit_configs", `config_hash = ${sqlString(configHash)}`, "created_at_ms", 0, 1);
  if (rows.length === 0) throw new ConfigError("config_hash", `no settings ${configHash} in ${reader.database}.ml_audit_configs`);
  return parseAuditConfig(String(rows[0].config), configHash, `${reader.database}.ml_audit_configs`);
}

/** One key re-run with one model: an in-thread engine whose chunks are encoded as the ingest workers encode theirs. */
class KeyRun {
  private readonly analyses: RecordAnalysis[];
  private readonly engine: StreamEngine;
  private readonly batch = allocateBatch(4096);
  private readonly ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  private sink: (row: StoredRow) => void = () => {};

  constructor(
    private readonly doc: AuditConfigDocument,
    configHash: string,
    modelOf: IsolationForestModel | null,
    private readonly key: string,
    readonly model: string,
  ) {
    const specs = specsFromAuditConfig(doc, modelOf);
    this.analyses = buildAnalyses(specs, () => {});
    const [machine, sensor] = key.split("/", 2);
    const names = [keyNames([machine, sensor])];
    const encode = {
      keys: names,
      layout: scoreLayout(specs),
      modelHash: encodeRowBinaryString(this.model),
      audit: auditColumns(kernelHash(), configHash),
    };
    this.engine = new StreamEngine(
      {
        kernels: this.analyses.map((a) => a.kernel),
        workers: 0,
        groups: 1,
        keysMax: 1,
        batchRecordsMax: 4096,
        lateness: doc.lateness,
        // As the run had it: the ingest workers keep arrival order (lateness null, no reorder buffer).
        reorderRecordsPerKeyMax: doc.lateness === null ? 1 : 1 << 16,
      },
      {
        onOutput: (chunk: OutputChunk) => {
          observeChunkRows(this.analyses, chunk, () => this.key, this.ctx);
          if (this.doc.round_statistics)
            for (let k = 0; k < chunk.outs.length; k++) roundStatistics(chunk.outs[k], 0, chunk.length * chunk.outFields[k]);
          const encoded = encodeScoreColumns(chunk, encode);
          for (const row of decodeRowBinary("ml_scores", encoded.rows.bytes)) this.sink(row);
        },
      },
    );
    this.engine.internKey(key);
    for (const a of this.analyses) a.start?.(this.engine);
  }

  async push(rows: readonly StoredRow[], sink: (row: StoredRow) => void): Promise<void> {
    this.sink = sink;
    for (let from = 0; from < rows.length; from += this.batch.keyIds.length) {
      const b = this.batch;
      b.length = 0;
      for (const r of rows.slice(from, from + b.keyIds.length)) {
        b.keyIds[b.length] = 0;
        b.times[b.length] = Number(r.timestamp_ms);
        b.values[b.length] = Number(r.value);
        b.positions[b.length] = Number(r.seq);
        b.length++;
      }
      await this.engine.push(b);
    }
  }

  async close(sink: (row: StoredRow) => void): Promise<void> {
    this.sink = sink;
    await this.engine.flush(true);
    for (const a of this.analyses) a.stop?.();
    await this.engine.close();
  }
}

function firstDifference(stored: StoredRow, recomputed: StoredRow): ScoreDifference | null {
  for (const field of Object.keys(stored)) {
    if (NOT_COMPARED.has(field)) continue;
    if (!sameValue(stored[field], recomputed[field]))
      return { score: scoreName(stored), field, stored: jsonable(stored[field]), recomputed: jsonable(recomputed[field]) };
  }
  return null;
}

function rowId(r: StoredRow): string {
  return `${String(r.timestamp_ms)}/${String(r.seq)}`;
}

function scoreName(r: StoredRow): string {
  return `${String(r.machine_id)}/${String(r.sensor_type)} at ${new Date(Number(r.timestamp_ms)).toISOString()} seq ${String(r.seq)}`;
}

function jsonable(v: unknown): unknown {
  return typeof v === "bigint" ? String(v) : v;
}
