/**
 * Reading a durable JetStream pull consumer in stream order, each message into the state once —
 * the loop the sensor job (engine/jobs/nats-sources.ts) and the serial job (engine/jobs/serial-sources.ts) share.
 *
 * A round fetches up to `fetchMessagesMax` messages, hands the new ones to `take` in delivery
 * order, waits for `commit` (outputs durable) and only then acknowledges. Two hazards:
 * - Redeliveries: a message at or below the last processed stream sequence (`top`) was processed
 *   before (its ack was lost); it is acknowledged and counted, not taken again.
 * - A delivery this client never got (sent to a pull request it had given up on, under load, or
 *   across a server restart) comes back only after ack_wait, behind newer messages; skipped then
 *   as a redelivery it would be lost. JetStream numbers every delivery, so at a gap in the
 *   delivery sequence the rest of the fetch is left unacknowledged and the consumer re-created
 *   from `top + 1`. A re-creation that fails (the server restarting) is retried before the next
 *   fetch: the old consumer may already be deleted, so it is never fetched from again.
 *
 * Acknowledging. On an ack-all consumer (durable-consumer.ts) one ack per round settles it: the
 * in-order message with the highest stream sequence, which acknowledges every message of the
 * consumer at or below that sequence. That covers nothing unseen: deliveries are checked
 * contiguous from the consumer's creation up to the last one acknowledged, and a filtered
 * consumer delivers new messages in stream order, so every message below that sequence was
 * delivered to this reader before it — taken and committed in this round or an earlier one, or a
 * redelivery of one that was. The highest sequence, not the last delivery: a redelivery (ack wait
 * expired) can come after newer messages, and acknowledging its lower sequence would leave the
 * newer ones pending until their own ack wait ran out. Messages past a delivery gap are not
 * covered (they are below no acknowledged sequence: the consumer is re-created before them). An
 * explicit-ack consumer (the server refused ack-all) gets one ack per in-order message, as before.
 */
import { AckPolicy, type Consumer, type JsMsg } from "nats";
import type { Logger } from "../../engine/core/mod.js";
import { type JetStreamSequences, jetStreamSequences } from "./raw-subject.js";

export interface OrderedPullOptions {
  fetchMessagesMax: number;
  /** Names the consumer in log events (field `consumer`: "partition 3", "serial"). */
  label: string;
  log: Logger;
  /** (Re)creates the durable consumer, delivering from stream sequence `start`. */
  reopen: (start: number) => Promise<Consumer>;
}

export interface OrderedPullRound {
  /** Messages taken into the state. */
  taken: number;
  /** Redeliveries acknowledged without being taken. */
  redeliveries: number;
  /** The fetch failed (connection lost, server restarting); nothing was lost, the round is retried. */
  fetchFailed: boolean;
  /** Acknowledgements sent: 1 per round on an ack-all consumer, 1 per in-order message otherwise. */
  acks: number;
}

const RETRY_PAUSE_MS = 250;
/** A pull request lost in a server restart would leave the iterator waiting: close it past this. */
const FETCH_GUARD_MS = 5000;

export class OrderedPullReader {
  /** The last stream sequence taken into the state (what a checkpoint covers). */
  top: number;
  private nextDelivery = 1;
  private consumer: Consumer | null;
  /** The consumer's policy is ack-all (read from its info when first needed; null: not yet). */
  private ackAll: boolean | null = null;
  /** Scratch: the sequences of the message being looked at. */
  private readonly seq: JetStreamSequences = { stream: 0, delivery: 0 };

  constructor(
    first: Consumer,
    top: number,
    private readonly o: OrderedPullOptions,
  ) {
    this.consumer = first;
    this.top = top;
  }

  /** One fetch, take, commit, acknowledge; see the module comment. */
  async round(take: (m: JsMsg, seq: number) => Promise<void> | undefined, commit: () => Promise<void>): Promise<OrderedPullRound> {
    const result: OrderedPullRound = { taken: 0, redeliveries: 0, fetchFailed: false, acks: 0 };
    if (this.consumer === null && !(await this.reopen())) return result;
    const msgs: JsMsg[] = [];
    try {
      const iter = await (this.consumer as Consumer).fetch({ max_messages: this.o.fetchMessagesMax, expires: 1000, idle_heartbeat: 500 });
      const guard = setTimeout(() => void iter.close(), FETCH_GUARD_MS);
      try {
        for await (const m of iter) msgs.push(m);
      } finally {
        clearTimeout(guard);
      }
    } catch (error) {
      // nats.js reconnects; fetch again. What was fetched and not acknowledged comes back as
      // redeliveries, which the sequence check skips.
      result.fetchFailed = true;
      this.o.log.warn({ consumer: this.o.label, err: error }, "JetStream fetch failed; retrying");
      await pause();
      if (msgs.length === 0) return result;
    }
    const { inOrder, highest } = await this.takeInOrder(msgs, take, result);
    await commit();
    result.acks = await this.acknowledge(msgs, inOrder, highest);
    if (inOrder < msgs.length) {
      this.o.log.warn(
        { consumer: this.o.label, delivery: this.nextDelivery, from_stream_seq: this.top + 1 },
        "a delivery never arrived; consuming again from the stream sequence after the last one taken",
      );
      this.consumer = null;
      await this.reopen();
    }
    return result;
  }

  /**
   * Takes the fetched messages up to the first delivery gap, skipping redeliveries; how many were
   * in order, and the one of them with the highest stream sequence (null: none).
   */
  private async takeInOrder(
    msgs: readonly JsMsg[],
    take: (m: JsMsg, seq: number) => Promise<void> | undefined,
    result: OrderedPullRound,
  ): Promise<{ inOrder: number; highest: JsMsg | null }> {
    const seq = this.seq;
    let inOrder = 0;
    let highest: JsMsg | null = null;
    let highestSeq = 0;
    for (const m of msgs) {
      jetStreamSequences(m, seq);
      if (seq.delivery !== this.nextDelivery) break;
      this.nextDelivery++;
      inOrder++;
      if (seq.stream > highestSeq) {
        highestSeq = seq.stream;
        highest = m;
      }
      if (seq.stream <= this.top) {
        result.redeliveries++;
        continue;
      }
      const stream = seq.stream;
      const pending = take(m, stream);
      if (pending !== undefined) await pending;
      this.top = stream;
      result.taken++;
    }
    return { inOrder, highest };
  }

  /** Acknowledges `msgs[0, inOrder)` (module comment); the number of acks sent. */
  private async acknowledge(msgs: readonly JsMsg[], inOrder: number, highest: JsMsg | null): Promise<number> {
    if (inOrder === 0 || highest === null || this.consumer === null) return 0;
    this.ackAll ??= (await this.consumer.info(true)).config.ack_policy === AckPolicy.All;
    if (!this.ackAll) {
      for (let i = 0; i < inOrder; i++) msgs[i].ack();
      return inOrder;
    }
    highest.ack();
    return 1;
  }

  private async reopen(): Promise<boolean> {
    try {
      this.consumer = await this.o.reopen(this.top + 1);
      this.ackAll = null;
      this.nextDelivery = 1;
      return true;
    } catch (error) {
      this.o.log.warn({ consumer: this.o.label, err: error }, "re-creating the JetStream consumer failed; will retry");
      await pause();
      return false;
    }
  }
}

function pause(): Promise<void> {
  return new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
}
