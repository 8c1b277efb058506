/**
 * `linewatch audit verify --input FILE`: a file `replay --audit` wrote — its first line the
 * settings document, then one line per input row with the reading (exact), the analyses'
 * members and the audit members — replayed again from the readings the lines carry, with the
 * recorded settings and each row's model from the registry, and compared member by member.
 *
 * The lines are compared as the file holds them: statistics at the 15 significant digits replay
 * writes, everything else exactly. A file with rows of several models (a model swapped while it
 * ran) is replayed once per model — the isolation forest scores each row on its own — and each
 * row compared with the replay of its model. Nothing is held per row: the file and the
 * recomputations are read side by side, line by line.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { InputError, kernelHash } from "../../core/mod.js";
import { buildAnalyses } from "../ingest/mod.js";
import { runReplay } from "../replay.js";
import { type AuditConfigDocument, type AuditHeader, canonicalJson, parseAuditConfig } from "./config.js";
import { type ModelSource, needsModel, specsFromAuditConfig } from "./rebuild.js";
import { sameValue, type ScoreDifference, type VerifyReport, VerifyTally } from "./report.js";

/** Members not compared as values: the kernel hash is reported once for the file, an error's text may name the temporary input. */
const NOT_COMPARED = new Set(["kernel_hash", "error"]);

export async function verifyAuditFile(path: string, models: ModelSource): Promise<VerifyReport> {
  const dir = mkdtempSync(join(tmpdir(), "lw-audit-"));
  try {
    const header = await readHeader(path);
    const doc = parseAuditConfig(JSON.stringify(header.config), header.config_hash, `${path} line 1`);
    const tally = new VerifyTally();
    const inputs = await writeInputs(path, join(dir, "input.ndjson"), tally);
    const versions: (string | null)[] = needsModel(doc) ? [...inputs.models] : [null];
    if (versions.length === 0) versions.push(null);
    const outputs: string[] = [];
    for (const [i, version] of versions.entries()) {
      const out = join(dir, `recomputed-${i}.ndjson`);
      await recompute(
        doc,
        header.config_hash,
        version === null ? null : await models.iforest(version),
        join(dir, "input.ndjson"),
        inputs.keys,
        out,
      );
      outputs.push(out);
    }
    await compareLines(path, outputs, versions, tally);
    return tally.report(
      kernelHash(),
      [header.config_hash],
      versions.filter((v): v is string => v !== null),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function readHeader(path: string): Promise<AuditHeader> {
  for await (const line of lines(path)) {
    const audit = (parseLine(line, path, 1) as { audit?: AuditHeader }).audit;
    if (audit === undefined || typeof audit.config_hash !== "string" || typeof audit.config !== "object")
      throw new InputError(`${path}: the first line is not an audit header ({"audit": …}): was it written with replay --audit?`);
    return audit;
  }
  throw new InputError(`${path}: empty`);
}

/** The readings of the stored lines as an NDJSON input (key, timestamp, value); the keys and models the lines name. */
async function writeInputs(path: string, inputPath: string, tally: VerifyTally): Promise<{ keys: number; models: Set<string> }> {
  const out = createWriteStream(inputPath);
  const keys = new Set<string>();
  const models = new Set<string>();
  let n = 0;
  for await (const line of lines(path)) {
    if (n++ === 0) continue;
    const row = parseLine(line, path, n) as Record<string, unknown>;
    keys.add(String(row.key));
    if (typeof row.model_version === "string") models.add(row.model_version);
    if (typeof row.kernel_hash === "string") tally.kernels.add(row.kernel_hash);
    const text = `{"key":${JSON.stringify(row.key)},"timestamp":${JSON.stringify(row.timestamp)},"value":${JSON.stringify(row.value ?? null)}}\n`;
    if (!out.write(text)) await once(out, "drain");
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return { keys: keys.size, models };
}

async function recompute(
  doc: AuditConfigDocument,
  configHash: string,
  model: Parameters<typeof specsFromAuditConfig>[1],
  input: string,
  keys: number,
  outPath: string,
): Promise<void> {
  const analyses = buildAnalyses(specsFromAuditConfig(doc, model), () => {});
  const output = createWriteStream(outPath);
  await runReplay({
    input,
    analyses,
    keyColumns: ["key"],
    timeColumn: "timestamp",
    timeUnit: doc.time_unit,
    valueColumn: "value",
    lateness: doc.lateness,
    workers: 0,
    keysMax: Math.max(1, keys),
    batchRecordsMax: 4096,
    output,
    progress: null,
    pipeline: "rows",
    audit: { kernelHash: kernelHash(), configHash, config: doc, configJson: canonicalJson(doc) },
  });
  await new Promise<void>((resolve, reject) => output.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

/** The stored lines beside the recomputed ones, each row against the recomputation of its model. */
async function compareLines(
  path: string,
  outputs: readonly string[],
  versions: readonly (string | null)[],
  tally: VerifyTally,
): Promise<void> {
  const stored = lines(path)[Symbol.asyncIterator]();
  const again = outputs.map((o) => lines(o)[Symbol.asyncIterator]());
  await stored.next(); // the header
  for (let n = 2; ; n++) {
    const s = await stored.next();
    const r = await Promise.all(again.map((it) => it.next()));
    if (s.done === true) {
      if (r[0].done !== true) tally.score({ score: `line ${n}`, field: "(line)", stored: null, recomputed: r[0].value });
      return;
    }
    const row = parseLine(s.value, path, n) as Record<string, unknown>;
    const at = Math.max(0, versions.indexOf(typeof row.model_version === "string" ? row.model_version : null));
    const mine = r[at];
    if (mine.done === true) {
      tally.score({ score: `line ${n}`, field: "(line)", stored: row, recomputed: null });
      continue;
    }
    tally.score(firstDifference(row, JSON.parse(mine.value) as Record<string, unknown>, n));
  }
}

function firstDifference(stored: Record<string, unknown>, recomputed: Record<string, unknown>, n: number): ScoreDifference | null {
  const score = `line ${n} (row ${String(stored.row)}, key ${String(stored.key)}, timestamp ${String(stored.timestamp)})`;
  for (const field of new Set([...Object.keys(stored), ...Object.keys(recomputed)])) {
    if (NOT_COMPARED.has(field)) {
      if (field in stored !== field in recomputed) return { score, field, stored: stored[field], recomputed: recomputed[field] };
      continue;
    }
    if (!sameValue(stored[field], recomputed[field]))
      return { score, field, stored: stored[field] ?? null, recomputed: recomputed[field] ?? null };
  }
  return null;
}

function lines(path: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
}

function parseLine(line: string, path: string, n: number): unknown {
  try {
    return JSON.parse(line);
  } catch (cause) {
    throw new InputError(`${path}:${n}: not JSON: ${(cause as Error).message}`);
  }
}
