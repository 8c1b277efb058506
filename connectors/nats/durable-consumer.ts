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
 */
import { AckPolicy, DeliverPolicy, nanos, type Consumer, type JetStreamManager, NatsError } from "nats";
import { LinewatchError } from "../../engine/core/mod.js";

/** nats-server's JSStreamNotFoundErr. */
export const JS_STREAM_NOT_FOUND = 10059;
/** nats-server's JSConsumerNotFoundErr. */
export const JS_CONSUMER_NOT_FOUND = 10014;

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
  filterSubject: string;
  /** Redeliveries of a message before the server gives up on it. */
  maxDeliver: number;
  ackWaitMs: number;
  maxAckPending: number;
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

/** (Re)creates the durable pull consumer, explicit ack, delivering from stream sequence `start` (1: all). */
export async function openDurableConsumer(jsm: JetStreamManager, o: DurableConsumerOptions, start: number): Promise<Consumer> {
  try {
    await jsm.consumers.delete(o.stream, o.durable);
  } catch (error) {
    if (!isJetStreamError(error, JS_CONSUMER_NOT_FOUND))
      throw new JetStreamSetupError(o.stream, `deleting consumer ${o.durable}`, { cause: error });
  }
  try {
    await jsm.consumers.add(o.stream, {
      durable_name: o.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: start === 1 ? DeliverPolicy.All : DeliverPolicy.StartSequence,
      ...(start === 1 ? {} : { opt_start_seq: start }),
      filter_subject: o.filterSubject,
      max_deliver: o.maxDeliver,
      ack_wait: nanos(o.ackWaitMs),
      max_ack_pending: o.maxAckPending,
    });
    return await jsm.jetstream().consumers.get(o.stream, o.durable);
  } catch (error) {
    throw new JetStreamSetupError(o.stream, `creating consumer ${o.durable} from sequence ${start}`, { cause: error });
  }
}
