/**
 * The JetStream stream and durable pull consumer a job reads: the stream is created when it is
 * missing, and the consumer is re-created (deleted, then added) to deliver from a given stream
 * sequence — the one after the job's checkpoint, or after the last record it took when the
 * reader sees a delivery gap (jetstream-reader.ts). The sensor job's sources and the serial job
 * share it.
 *
 * Only "not found" answers mean "missing" or "none yet": stream not found is JetStream error
 * 10059, consumer not found 10014 (both HTTP-like code 404; nats-server's errors.json). Any other
 * failure (no responders while the server restarts, a permission, a timeout) is rethrown as a
 * {@link JetStreamSetupError} naming the stream and consumer.
 *
 * Ack policy. The consumer is created with `AckPolicy.All`: acknowledging a message acknowledges
 * every message of the consumer with a lower stream sequence, so the reader sends one ack per
 * fetched batch instead of one per message. nats-server accepts ack-all on pull consumers since
 * 2.9.0 (nats.c PR 587 "Since NATS Server v2.9.0, it is possible to create a pull consumer with
 * … AckAll"; test/durable-consumer.test.ts checks it on the test kit's server); nats.js 2.29's
 * `consumers.get(…).fetch()` does not check the policy (only the legacy `pullSubscribe` refuses it).
 * Where the server refuses it — before 2.9 (JSConsumerPullRequiresAckErr, 10084) or on a
 * work-queue stream (JSConsumerWQRequiresExplicitAckErr, 10098) — the consumer is created with
 * explicit acks instead, logged, and the reader acknowledges each message as before.
 *
 * An existing durable consumer (one made by an older linewatch with explicit acks, say) is never
 * reused: a consumer's ack policy cannot be changed, and the consumer is deleted and re-added from
 * the checkpoint's sequence on every open anyway — its own ack state is never what a restart
 * trusts — so re-creating it with ack-all is always safe.
 */
import { AckPolicy, DeliverPolicy, nanos, type Consumer, type JetStreamManager, NatsError } from "nats";
import { LinewatchError, type Logger } from "../../engine/core/mod.js";

/** nats-server's JSStreamNotFoundErr. */
export const JS_STREAM_NOT_FOUND = 10059;
/** nats-server's JSConsumerNotFoundErr. */
export const JS_CONSUMER_NOT_FOUND = 10014;
/** nats-server's JSConsumerPullRequiresAckErr: before 2.9, a pull consumer must ack explicitly. */
export const JS_PULL_REQUIRES_EXPLICIT_ACK = 10084;
/** nats-server's JSConsumerWQRequiresExplicitAckErr: a work-queue stream's consumers must ack explicitly. */
export const JS_WORK_QUEUE_REQUIRES_EXPLICIT_ACK = 10098;

/** Setting up a JetStream stream or consumer failed for a reason other than "not found". */
export class JetStreamSetupError extends LinewatchError {
  constructor(
    readonly stream: string,
    readonly step: string,
    options: { cause: unknown },
  ) {
    super(`JetStream stream ${stream}: ${step} failed (${(options.cause as Error)?.message ?? String(options.cause)})`, options);
  }
}

export interface DurableConsumerOptions {
  stream: string;
  durable: string;
  /** "": every subject of the stream. */
  filterSubject: string;
  /** Redeliveries of a message before the server gives up on it. */
  maxDeliver: number;
  ackWaitMs: number;
  maxAckPending: number;
  /** Told when the server refuses ack-all and the consumer acknowledges per message instead. */
  log?: Logger;
  /** Explicit acks even where the server allows ack-all (the bench's "as before" rows). */
  explicitAck?: boolean;
}

/** True when `error` is the JetStream API error `errCode` (10059, 10014, …). */
export function isJetStreamError(error: unknown, errCode: number): boolean {
  return error instanceof NatsError && error.api_error?.err_code === errCode;
}

/** Makes sure stream `name` exists; creates it on `subjects` when it does not. */
export async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[]): Promise<void> {
  try {
    await jsm.streams.info(name);
    return;
  } catch (error) {
    if (!isJetStreamError(error, JS_STREAM_NOT_FOUND)) throw new JetStreamSetupError(name, "reading the stream's info", { cause: error });
  }
  try {
    await jsm.streams.add({ name, subjects });
  } catch (error) {
    throw new JetStreamSetupError(name, `creating it on ${subjects.join(", ")}`, { cause: error });
  }
}

/** The stream that captures `subject`, or null when none does. */
export async function streamCapturing(jsm: JetStreamManager, subject: string): Promise<string | null> {
  // Streams' subjects never overlap (the server refuses it), so a concrete subject has at most one.
  try {
    for await (const name of jsm.streams.names(subject)) return name;
    return null;
  } catch (error) {
    throw new JetStreamSetupError(`(capturing ${subject})`, "listing the streams", { cause: error });
  }
}

/**
 * (Re)creates the durable pull consumer delivering from stream sequence `start` (1: all), ack-all
 * where the server allows it, else explicit (module comment).
 */
export async function openDurableConsumer(jsm: JetStreamManager, o: DurableConsumerOptions, start: number): Promise<Consumer> {
  try {
    await jsm.consumers.delete(o.stream, o.durable);
  } catch (error) {
    if (!isJetStreamError(error, JS_CONSUMER_NOT_FOUND))
      throw new JetStreamSetupError(o.stream, `deleting consumer ${o.durable}`, { cause: error });
  }
  try {
    try {
      await addConsumer(jsm, o, start, o.explicitAck === true ? AckPolicy.Explicit : AckPolicy.All);
    } catch (error) {
      if (!isJetStreamError(error, JS_PULL_REQUIRES_EXPLICIT_ACK) && !isJetStreamError(error, JS_WORK_QUEUE_REQUIRES_EXPLICIT_ACK))
        throw error;
      o.log?.warn(
        { stream: o.stream, consumer: o.durable, err: error },
        "the server refuses ack-all on this pull consumer; acknowledging each message instead",
      );
      await addConsumer(jsm, o, start, AckPolicy.Explicit);
    }
    return await jsm.jetstream().consumers.get(o.stream, o.durable);
  } catch (error) {
    throw new JetStreamSetupError(o.stream, `creating consumer ${o.durable} from sequence ${start}`, { cause: error });
  }
}

async function addConsumer(jsm: JetStreamManager, o: DurableConsumerOptions, start: number, ack: AckPolicy): Promise<void> {
  await jsm.consumers.add(o.stream, {
    durable_name: o.durable,
    ack_policy: ack,
    deliver_policy: start === 1 ? DeliverPolicy.All : DeliverPolicy.StartSequence,
    ...(start === 1 ? {} : { opt_start_seq: start }),
    // "": the whole stream (an empty filter would name no subject in the create request's own subject).
    ...(o.filterSubject === "" ? {} : { filter_subject: o.filterSubject }),
    max_deliver: o.maxDeliver,
    ack_wait: nanos(o.ackWaitMs),
    max_ack_pending: o.maxAckPending,
  });
}
