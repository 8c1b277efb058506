/**
 * Fuzz: malformed messages of every kind (fuzz-messages.ts) mixed with valid ones into the
 * engine's JetStream stream. The engine must not crash, must dead-letter each malformed message
 * with a reason (the dead-letter subject captured by a stream of its own, counted, each message's
 * `Lw-Reason` header read) and must score each valid one (its stream sequence in ml_scores FINAL)
 * and no malformed one.
 */
import type { PubAck } from "nats";
import { RssWatch } from "./engine-process.js";
import { consuming, finishRun, RUN_TIMEOUT_MS } from "./engine-runs.js";
import { type ChaosEnv, chaosSimulator, waitFor } from "./env.js";
import { type FuzzMessage, fuzzMessages } from "./fuzz-messages.js";
import { reconcileSequences } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";

export interface FuzzOptions {
  malformed: number;
  valid: number;
  seed: number;
  log: (line: string) => void;
}

/** Publishes the messages in order, acknowledged; the stream sequence of each. */
async function publishAll(env: ChaosEnv, messages: readonly FuzzMessage[]): Promise<number[]> {
  const js = env.nc.jetstream();
  const seqs: number[] = [];
  for (let from = 0; from < messages.length; from += 512) {
    const acks: Promise<PubAck>[] = messages.slice(from, from + 512).map((m) => js.publish(m.subject, m.bytes));
    for (const a of await Promise.all(acks)) seqs.push(a.seq);
  }
  return seqs;
}

/** The dead letters in `stream`, by their `Lw-Reason` header ("" when missing). */
async function deadLetterReasons(env: ChaosEnv, stream: string, expected: number): Promise<Map<string, number>> {
  const reasons = new Map<string, number>();
  const consumer = await env.nc.jetstream().consumers.get(stream);
  let read = 0;
  while (read < expected) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      const reason = m.headers?.get("Lw-Reason") ?? "";
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      got++;
    }
    if (got === 0) break;
    read += got;
  }
  return reasons;
}

export async function fuzzScenario(env: ChaosEnv, o: FuzzOptions): Promise<ChaosRow> {
  const [site, stream, db, dlStream] = ["chaosfuzz", "CHAOSFUZZ", "chaos_fuzz", "CHAOSDL"];
  await env.createStream(stream, site);
  await (await env.nc.jetstreamManager()).streams.add({ name: dlStream, subjects: [`lw.${site}.deadletter`] });
  const messages = fuzzMessages(site, chaosSimulator(o.seed, o.valid), o.valid, o.malformed, o.seed);
  const seqs = await publishAll(env, messages);
  o.log(`fuzz: ${o.malformed} malformed among ${messages.length} messages published`);
  const rss = new RssWatch();
  const run = env.startRun(site, stream, db);
  rss.watch(run);
  if (!(await waitFor(() => consuming(run), RUN_TIMEOUT_MS))) throw new Error(`the run did not start consuming\n${run.output()}`);
  const crashedEarly = run.child.exitCode !== null || run.child.signalCode !== null;
  const code = crashedEarly ? null : await finishRun(env, run, site, stream, rss);
  rss.close();
  const dlCount = async () => (await (await env.nc.jetstreamManager()).streams.info(dlStream)).state.messages;
  await waitFor(async () => (await dlCount()) >= o.malformed, 10_000, 200);
  const deadLetters = await dlCount();
  const reasons = await deadLetterReasons(env, dlStream, deadLetters);
  const validSeqs = seqs.filter((_s, i) => messages[i].valid);
  const scores = reconcileSequences(validSeqs, await env.sequences(db, "ml_scores"));
  const notes: string[] = [];
  if (crashedEarly || code !== 0) notes.push(`the run ended with ${code}: ${run.output().slice(-600)}`);
  if (scores.lost > 0) notes.push(`valid messages not scored (first sequences): ${scores.lostSample.join(", ")}`);
  const unreasoned = reasons.get("") ?? 0;
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "fuzz",
    load: `${o.malformed} malformed + ${o.valid} valid messages`,
    cycles: 1,
    lost: scores.lost + Math.max(0, o.malformed - deadLetters),
    duplicated: scores.duplicated + Math.max(0, deadLetters - o.malformed),
    crashes: crashedEarly || code !== 0 ? 1 : 0,
    recoveryMs: null,
    peakRssBytes: rss.peak,
    mismatches: { "malformed messages scored": scores.unexpected, "dead letters without a reason": unreasoned },
    figures: {
      "dead letters": deadLetters,
      "valid scored": scores.found,
      reasons: [...reasons]
        .sort((a, b) => b[1] - a[1])
        .map(([r, n]) => `${r || "(none)"} ${n}`)
        .join(" / "),
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}
