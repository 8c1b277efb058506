/**
 * The audit record's settings half: which analysis settings decide a score's value, as one
 * canonical JSON document, and its SHA-256 (`config_hash`). A score row carries the hash; the
 * document is stored once (ClickHouse `ml_audit_configs`, or the header line of a replay's
 * output) so `linewatch audit verify` can rebuild the same analyses from it.
 *
 * What is in the document (docs/commands/audit.md, "config_hash"): the time unit, the allowed
 * lateness, whether the outputs are rounded to 15 significant digits before they are stored
 * (`run --nats` rounds them as replay prints them), and per analysis, in run order,
 * - rolling: `window` (kind, records or span and capacity), `alpha`, `timeScale`;
 * - spc: `params` (every SpcParams member), `limits`, `limitsByKey`, `falseAlarmBudget`, `rules`,
 *   `budgetByKey`, `silentKeySuffix`, `ewmaField`;
 * - iforest: `features`, `rollingIndex` (the model itself is the row's `model_version`).
 * Not in it: what only shapes alerts, transport or files (episode settings, key part names, the
 * watched model path, sinks, batch sizes, worker counts): the same scores come out whatever they are.
 *
 * Canonical JSON: object members sorted by name (UTF-16 code units, as Array.prototype.sort),
 * members whose value is undefined left out, Maps as objects of their entries, arrays in order,
 * numbers as JSON.stringify writes them (the shortest text that reads back as the same double),
 * no white space. NaN and ±Infinity have no JSON text: a setting holding one is refused.
 */
import { createHash } from "node:crypto";
import { ConfigError, type TimeUnit } from "../../core/mod.js";
import type { AnalysisSpec } from "../ingest/mod.js";

export const AUDIT_CONFIG_FORMAT = "linewatch-audit-config";
export const AUDIT_CONFIG_VERSION = 1;

/** One analysis as the document holds it: its name and the options that decide its values. */
export interface AuditedAnalysis {
  name: AnalysisSpec["name"];
  options: Record<string, unknown>;
}

export interface AuditConfigDocument {
  format: typeof AUDIT_CONFIG_FORMAT;
  version: typeof AUDIT_CONFIG_VERSION;
  time_unit: TimeUnit;
  /** Allowed lateness in time units; null: records are taken in arrival order. */
  lateness: number | null;
  /** Whether every output was rounded to 15 significant digits before it was stored (operators roundStatistics). */
  round_statistics: boolean;
  analyses: AuditedAnalysis[];
}

/** What a run stamps on every score row, and the document behind its config hash. */
export interface AuditStamp {
  /** SHA-256 (hex) of the kernel module this thread compiled. */
  kernelHash: string;
  /** SHA-256 (hex) of {@link canonicalJson} of `config`. */
  configHash: string;
  config: AuditConfigDocument;
  /** {@link canonicalJson} of `config`: the text the hash is of, as stored. */
  configJson: string;
}

/** The options of each analysis that decide its values (see the file's comment). */
const VALUE_OPTIONS: Readonly<Record<AnalysisSpec["name"], readonly string[]>> = {
  rolling: ["window", "alpha", "timeScale"],
  spc: ["params", "limits", "limitsByKey", "falseAlarmBudget", "rules", "budgetByKey", "silentKeySuffix", "ewmaField"],
  iforest: ["features", "rollingIndex"],
};

/** The settings document of a run's analyses. */
export function auditConfig(
  specs: readonly AnalysisSpec[],
  timeUnit: TimeUnit,
  lateness: number | null,
  roundStatistics = false,
): AuditConfigDocument {
  return {
    format: AUDIT_CONFIG_FORMAT,
    version: AUDIT_CONFIG_VERSION,
    time_unit: timeUnit,
    lateness,
    round_statistics: roundStatistics,
    analyses: specs.map((s) => {
      const options: Record<string, unknown> = {};
      const all = s.options as unknown as Record<string, unknown>;
      for (const name of VALUE_OPTIONS[s.name]) if (all[name] !== undefined) options[name] = all[name];
      return { name: s.name, options };
    }),
  };
}

/** The stamp of a run: `kernelHash` is the engine's (engine/core kernelHash). */
export function auditStamp(config: AuditConfigDocument, kernelHash: string): AuditStamp {
  const configJson = canonicalJson(config);
  return { kernelHash, configHash: sha256Hex(configJson), config, configJson };
}

export function sha256Hex(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The canonical JSON text of `value` (see the file's comment); ConfigError for what JSON cannot hold. */
export function canonicalJson(value: unknown, path = "config"): string {
  if (value === null) return "null";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new ConfigError(path, `${value} has no JSON text: an audited setting must be finite`);
    return JSON.stringify(value);
  }
  if (typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = Array.from(value as ArrayLike<unknown>, (v, i) => canonicalJson(v, `${path}[${i}]`));
    return `[${items.join(",")}]`;
  }
  if (value instanceof Map) return canonicalObject(Object.fromEntries(value), path);
  if (typeof value === "object") return canonicalObject(value as Record<string, unknown>, path);
  throw new ConfigError(path, `a ${typeof value} has no JSON text`);
}

function canonicalObject(o: Record<string, unknown>, path: string): string {
  const members: string[] = [];
  for (const name of Object.keys(o).sort()) {
    if (o[name] === undefined) continue;
    members.push(`${JSON.stringify(name)}:${canonicalJson(o[name], `${path}.${name}`)}`);
  }
  return `{${members.join(",")}}`;
}

/**
 * Reads a stored document back (ConfigError when it is not one), checking that its canonical
 * text hashes to `configHash` — a document changed after it was stored no longer does.
 */
export function parseAuditConfig(json: string, configHash: string, where: string): AuditConfigDocument {
  let doc: AuditConfigDocument;
  try {
    doc = JSON.parse(json) as AuditConfigDocument;
  } catch (cause) {
    throw new ConfigError(where, `the audit config is not JSON: ${(cause as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || doc.format !== AUDIT_CONFIG_FORMAT || doc.version !== AUDIT_CONFIG_VERSION)
    throw new ConfigError(where, `not a ${AUDIT_CONFIG_FORMAT} v${AUDIT_CONFIG_VERSION} document`);
  const hash = sha256Hex(canonicalJson(doc));
  if (hash !== configHash)
    throw new ConfigError(where, `the stored settings hash to ${hash}, not the recorded config_hash ${configHash}: they were changed`);
  return doc;
}

/** What the first line of an audited file says: `{"audit": {…}}`. */
export interface AuditHeader {
  kernel_hash: string;
  config_hash: string;
  config: AuditConfigDocument;
}

/** The first line of a file written with --audit (no newline): the stamp and the settings document. */
export function auditHeaderLine(stamp: AuditStamp): string {
  return `{"audit":{"kernel_hash":"${stamp.kernelHash}","config_hash":"${stamp.configHash}","config":${stamp.configJson}}}`;
}
