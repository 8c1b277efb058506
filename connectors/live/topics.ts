/**
 * WebSocket topic names and the patterns that grant them.
 *
 * Topics (levels separated by `/`):
 *
 * | topic                   | what is published on it                                                     |
 * | ----------------------- | --------------------------------------------------------------------------- |
 * | `machine/<machine_id>`  | the scores of one machine's readings (rolling, SPC, iforest rows), and its failure predictions (`"kind": "prediction"`) |
 * | `line/<line>`           | the events of one packaging line (serial detections, process records)       |
 * | `analysis/<name>`       | every output of one analysis (`rolling`, `spc`, `iforest`, `serial`, `prediction`, …) |
 * | `alerts`                | alerts as they open and close (SPC rules, drift alarms, serial risk)        |
 * | `quarantine`            | serials entering or leaving the quarantine list                             |
 *
 * A level is 1–128 characters, none of them `/`, `+`, `#`, whitespace or a control character
 * (any machine id, line name or SPC key that can be a NATS subject token fits); a topic is at
 * most 256 characters. Subscriptions name concrete
 * topics; wildcards exist only in the patterns that say which topics a token may subscribe to,
 * MQTT style: `+` stands for one level, a final `#` for any number of levels (none included).
 * `#` alone grants everything; `machine/+` every machine; `analysis/#` every analysis.
 */
import { TopicError } from "../errors.js";

export const TOPIC_ALERTS = "alerts";
export const TOPIC_QUARANTINE = "quarantine";
/** `analysis/prediction`: every failure prediction of every machine (engine/jobs/prediction-service.ts). */
export const ANALYSIS_PREDICTION = "prediction";

/** The first level of every topic linewatch publishes. */
export const TOPIC_ROOTS: readonly string[] = Object.freeze(["machine", "line", "analysis", TOPIC_ALERTS, TOPIC_QUARANTINE]);

export const TOPIC_LENGTH_MAX = 256;
export const TOPIC_LEVEL_LENGTH_MAX = 128;

const LEVEL_RE = /^[^\s/+#\u0000-\u001f\u007f]{1,128}$/u;
const LEVEL_RULE = `1-${TOPIC_LEVEL_LENGTH_MAX} characters without / + # whitespace or control characters`;

/** `machine/<machineId>`. Throws TopicError for an id that cannot be a topic level. */
export function machineTopic(machineId: string): string {
  return concreteTopic(`machine/${checkLevel(machineId, "machine id")}`);
}

/** `line/<line>`. */
export function lineTopic(line: string): string {
  return concreteTopic(`line/${checkLevel(line, "line")}`);
}

/** `analysis/<name>`. */
export function analysisTopic(name: string): string {
  return concreteTopic(`analysis/${checkLevel(name, "analysis name")}`);
}

/** Checks a topic a client subscribes to or the engine publishes on; returns it unchanged. */
export function concreteTopic(topic: string): string {
  const reason = topicProblem(topic, false);
  if (reason !== null) throw new TopicError(topic, reason);
  return topic;
}

/** Whether `topic` is a valid concrete topic (no wildcard, known root, valid levels). */
export function isValidTopic(topic: string): boolean {
  return topicProblem(topic, false) === null;
}

/** Checks a grant pattern (`+` and a final `#` allowed); returns it unchanged. */
export function topicPattern(pattern: string): string {
  const reason = topicProblem(pattern, true);
  if (reason !== null) throw new TopicError(pattern, reason);
  return pattern;
}

/** A compiled set of grant patterns: `matches(topic)` is one regular-expression test. */
export class TopicGrant {
  private readonly re: RegExp;

  constructor(readonly patterns: readonly string[]) {
    for (const p of patterns) topicPattern(p);
    const alternatives = patterns.map(patternSource);
    this.re = alternatives.length === 0 ? /(?!)/ : new RegExp(`^(?:${alternatives.join("|")})$`);
  }

  matches(topic: string): boolean {
    return this.re.test(topic);
  }
}

function patternSource(pattern: string): string {
  if (pattern === "#") return ".+";
  const levels = pattern.split("/");
  let src = "";
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l === "#") return `${src}(?:/.+)?`;
    src += `${i === 0 ? "" : "/"}${l === "+" ? "[^/]+" : escapeRe(l)}`;
  }
  return src;
}

function topicProblem(topic: string, wildcards: boolean): string | null {
  if (typeof topic !== "string" || topic.length === 0) return "is empty";
  if (topic.length > TOPIC_LENGTH_MAX) return `is longer than ${TOPIC_LENGTH_MAX} characters`;
  if (wildcards && topic === "#") return null;
  const levels = topic.split("/");
  const root = levels[0];
  if (!TOPIC_ROOTS.includes(root)) return `starts with "${root}", not one of ${TOPIC_ROOTS.join(", ")}`;
  const single = root === TOPIC_ALERTS || root === TOPIC_QUARANTINE;
  if (single && levels.length > 1 && !(wildcards && levels.length === 2 && levels[1] === "#")) return `"${root}" has no sub-topics`;
  if (!single && levels.length === 1) return `"${root}" needs a second level (${root}/<name>)`;
  if (!single && levels.length > 2 && !(wildcards && levels.length === 3 && levels[2] === "#")) return `"${root}" topics have two levels`;
  for (let i = 1; i < levels.length; i++) {
    const l = levels[i];
    if (wildcards && (l === "+" || (l === "#" && i === levels.length - 1))) continue;
    if (!LEVEL_RE.test(l)) return `level ${i + 1} ${JSON.stringify(l)} must be ${LEVEL_RULE}`;
  }
  return null;
}

function checkLevel(value: string, what: string): string {
  if (!LEVEL_RE.test(value)) throw new TopicError(value, `${what} must be ${LEVEL_RULE}`);
  return value;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
