/** connectors/nats: the names other folders use. Import from here, never from a file inside. */
export { BoundedSubscription } from "./bounded-subscription.js";
export { CheckpointStore } from "./checkpoint-store.js";
export { connectNats } from "./connect.js";
export { OrderedPullReader } from "./jetstream-reader.js";
export { type JetStreamSequences, jetStreamSequences, rawJetStreamSubject, rawSubject, readAckSequences } from "./raw-subject.js";
export { type FrameReadingColumns, frameSeq, type InputCounts, type MessageReadings, NatsInput } from "./sensor-input.js";
export { SerialNatsInput } from "./serial-input.js";
export { type BatchMessage, BatchNatsInput } from "./batch-input.js";
export {
  type DurableConsumerOptions,
  ensureStream,
  isJetStreamError,
  JetStreamSetupError,
  JS_CONSUMER_NOT_FOUND,
  JS_PULL_REQUIRES_EXPLICIT_ACK,
  JS_STREAM_NOT_FOUND,
  JS_WORK_QUEUE_REQUIRES_EXPLICIT_ACK,
  openDurableConsumer,
  streamCapturing,
} from "./durable-consumer.js";
