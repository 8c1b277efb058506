/** connectors/wire: the names other folders use. Import from here, never from a file inside. */
export {
  decodeFieldMap,
  decodeFrame,
  decodeFrameInto,
  type FrameTarget,
  frameReadingCount,
  decodeJsonRecord,
  decodeMsgpackRecord,
  decodeRecord,
  encodeFrame,
  encodeJsonRecord,
  encodeMsgpackRecord,
  parseSubject,
  sensorKey,
  type SensorReading,
  type SensorReadingInput,
  sensorSubject,
  type SensorSubject,
  sniffPayload,
} from "./codecs.js";
export { type DecodeLimits, DEFAULT_DECODE_LIMITS } from "./decode-limits.js";
export type { RejectedReading } from "./frame-codec.js";
export { decodeSerialRecord, encodeSerialRecord, type SerialRecord, type SerialRecordInput } from "./serial-codec.js";
export { deadLetterSubject, processSubject, qualitySubject, serialSubject, unpartitioned } from "./subjects.js";
export {
  type BatchRecordDecodeOptions,
  decodeProcessRecord,
  decodeQualityRecord,
  encodeProcessRecord,
  encodeQualityRecord,
  type ProcessRecord,
  processRecordFromFields,
  type QualityRecord,
  qualityRecordFromFields,
} from "./batch-codec.js";
export { SensorRecordReader, SensorRecordView } from "./sensor-record-reader.js";
export { SerialRecordReader, SerialRecordView } from "./serial-record-reader.js";
export { type LabelFields, LABELS_MAX, LabelTable, type LabelTriple } from "./label-table.js";
export { ByteKeyTable, hashBytes } from "./byte-table.js";
export { SUBJECT_KEYS_MAX, SubjectKeyTable } from "./subject-key-table.js";
export { type DecodedScoreFrame, decodeScoreFrame, encodeScoreFrame, type ScoreFrameColumns } from "./score-frame.js";
export { EncodeError, type EncodeReason } from "../errors.js";
