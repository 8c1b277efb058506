/**
 * NATS subjects of linewatch (DESIGN.md §4): build them from ids, parse them back into ids.
 *
 *   lw.<site>.sensor.<machine_id>.<sensor_type>   single records, or frames of that one key
 *   lw.<site>.sensor.<machine_id>                 frames of several sensors of one machine
 *   lw.<site>.process.<line>                     process readings of a line's running batch
 *   lw.<site>.quality.<line>                     a batch's quality outcome at its end
 *   lw.<site>.serial.<line>
 *   lw.<site>.deadletter                          rejected input (connectors/nats/dead-letter.ts)
 *
 * The key comes from the tokens, so a source routes by subject without decoding the payload, and
 * the machine token is always the 4th, which is what a JetStream `{{partition(n, …)}}` mapping
 * hashes on (DESIGN.md §8). A token is non-empty UTF-8 without `.`, `*`, `>`, whitespace or
 * control characters (NATS would split or wildcard on them), at most `tokenBytesMax` bytes.
 */
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { SubjectError } from "../errors.js";

export const SUBJECT_ROOT = "lw";

export type ParsedSubject = SensorSubject | LineSubject | DeadLetterSubject;

/** A sensor subject; `sensorType` is absent on a machine's frame subject. */
export interface SensorSubject {
  kind: "sensor";
  site: string;
  machineId: string;
  sensorType?: string;
}

export interface LineSubject {
  kind: "process" | "quality" | "serial";
  site: string;
  line: string;
}

export interface DeadLetterSubject {
  kind: "deadletter";
  site: string;
}

type TokenLimits = Pick<DecodeLimits, "tokenBytesMax" | "subjectBytesMax">;

/** `lw.<site>.sensor.<machine_id>.<sensor_type>`, or `lw.<site>.sensor.<machine_id>` without a sensor type. */
export function sensorSubject(site: string, machineId: string, sensorType?: string, limits: TokenLimits = DEFAULT_DECODE_LIMITS): string {
  const head = `${SUBJECT_ROOT}.${token(site, "site", limits)}.sensor.${token(machineId, "machine_id", limits)}`;
  return finish(sensorType === undefined ? head : `${head}.${token(sensorType, "sensor_type", limits)}`, limits);
}

/** `lw.<site>.process.<line>`. */
export function processSubject(site: string, line: string, limits: TokenLimits = DEFAULT_DECODE_LIMITS): string {
  return finish(`${SUBJECT_ROOT}.${token(site, "site", limits)}.process.${token(line, "line", limits)}`, limits);
}

/** `lw.<site>.quality.<line>`. */
export function qualitySubject(site: string, line: string, limits: TokenLimits = DEFAULT_DECODE_LIMITS): string {
  return finish(`${SUBJECT_ROOT}.${token(site, "site", limits)}.quality.${token(line, "line", limits)}`, limits);
}

/** `lw.<site>.serial.<line>`. */
export function serialSubject(site: string, line: string, limits: TokenLimits = DEFAULT_DECODE_LIMITS): string {
  return finish(`${SUBJECT_ROOT}.${token(site, "site", limits)}.serial.${token(line, "line", limits)}`, limits);
}

/** `lw.<site>.deadletter`. */
export function deadLetterSubject(site: string, limits: TokenLimits = DEFAULT_DECODE_LIMITS): string {
  return finish(`${SUBJECT_ROOT}.${token(site, "site", limits)}.deadletter`, limits);
}

/**
 * The ids in a subject. Throws {@link SubjectError} for anything else: another root, an unknown
 * kind, the wrong number of tokens, an invalid or too long token, a too long subject.
 */
export function parseSubject(subject: string, limits: TokenLimits = DEFAULT_DECODE_LIMITS): ParsedSubject {
  if (utf8Length(subject, limits.subjectBytesMax) > limits.subjectBytesMax) {
    throw new SubjectError(subject, `longer than subjectBytesMax (${limits.subjectBytesMax} bytes)`);
  }
  const t = subject.split(".");
  if (t[0] !== SUBJECT_ROOT || t.length < 3) throw new SubjectError(subject, `not a linewatch subject (${SUBJECT_ROOT}.<site>.<kind>…)`);
  for (let i = 1; i < t.length; i++) checkToken(subject, t[i], i, limits);
  const site = t[1];
  switch (t[2]) {
    case "sensor":
      if (t.length === 5) return { kind: "sensor", site, machineId: t[3], sensorType: t[4] };
      if (t.length === 4) return { kind: "sensor", site, machineId: t[3] };
      break;
    case "process":
    case "quality":
    case "serial":
      if (t.length === 4) return { kind: t[2], site, line: t[3] };
      break;
    case "deadletter":
      if (t.length === 3) return { kind: "deadletter", site };
      break;
    default:
      throw new SubjectError(subject, `unknown kind "${t[2]}" (sensor, process, quality, serial, deadletter)`);
  }
  throw new SubjectError(subject, `wrong number of tokens (${t.length}) for kind "${t[2]}"`);
}

/**
 * `lw.<site>.p.<k>.sensor.…` → `lw.<site>.sensor.…`; other subjects unchanged. The server's
 * partition mapping (DESIGN.md §8) inserts `p.<k>`; a reading is keyed as on the subject it was
 * published on.
 */
export function unpartitioned(subject: string): string {
  const t = subject.split(".");
  if (t.length > 4 && t[2] === "p" && /^\d+$/.test(t[3])) return [t[0], t[1], ...t.slice(4)].join(".");
  return subject;
}

/** The key of a sensor as frames carry it: `<machine_id>.<sensor_type>` (the subject's tail). */
export function sensorKey(machineId: string, sensorType: string): string {
  return `${machineId}.${sensorType}`;
}

/** Why a string cannot be a subject token. */
export type TokenProblem = "empty" | "too_long" | "forbidden_character";

/** Why `text` cannot be a subject token, or null when it can. */
export function tokenProblem(text: string, tokenBytesMax: number = DEFAULT_DECODE_LIMITS.tokenBytesMax): TokenProblem | null {
  if (text.length === 0) return "empty";
  if (utf8Length(text, tokenBytesMax) > tokenBytesMax) return "too_long";
  if (FORBIDDEN.test(text)) return "forbidden_character";
  return null;
}

/** A phrase for a {@link TokenProblem}, for messages. */
export function describeTokenProblem(problem: TokenProblem, tokenBytesMax: number): string {
  switch (problem) {
    case "empty":
      return "is empty";
    case "too_long":
      return `is longer than tokenBytesMax (${tokenBytesMax} bytes)`;
    case "forbidden_character":
      return "contains '.', '*', '>', whitespace or a control character";
  }
}

// ---------------------------------------------------------------------------------------------

/** NATS separates tokens on `.`, wildcards on `*`/`>`, and ends a subject at whitespace. */
const FORBIDDEN = /[\s.*>\u0000-\u001f\u007f]/u;

function token(text: string, what: string, limits: TokenLimits): string {
  if (typeof text !== "string") throw new SubjectError(String(text), `${what} must be a string`);
  const problem = tokenProblem(text, limits.tokenBytesMax);
  if (problem !== null) throw new SubjectError(text, `${what} ${describeTokenProblem(problem, limits.tokenBytesMax)}`);
  return text;
}

function checkToken(subject: string, text: string, index: number, limits: TokenLimits): void {
  const problem = tokenProblem(text, limits.tokenBytesMax);
  if (problem !== null) throw new SubjectError(subject, `token ${index + 1} ${describeTokenProblem(problem, limits.tokenBytesMax)}`);
}

function finish(subject: string, limits: TokenLimits): string {
  if (utf8Length(subject, limits.subjectBytesMax) > limits.subjectBytesMax) {
    throw new SubjectError(subject, `longer than subjectBytesMax (${limits.subjectBytesMax} bytes)`);
  }
  return subject;
}

/**
 * The UTF-8 length of `text` when it may exceed `max`; otherwise some number ≤ `max` (a UTF-16 code
 * unit is at most 3 UTF-8 bytes, so short strings need no counting). For `> max` checks only.
 */
export function utf8Length(text: string, max: number): number {
  if (text.length * 3 <= max) return text.length;
  return Buffer.byteLength(text, "utf8");
}
