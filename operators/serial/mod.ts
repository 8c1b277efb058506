/** operators/serial: the names other folders use. Import from here, never from a file inside. */
export { decodeSerialCheckpoint, encodeSerialCheckpoint, type SerialCheckpointFit } from "./checkpoint.js";
export { gs1CheckDigitValid, isAi82Character, withCheckDigit } from "./gs1.js";
export {
  ANOMALY_MASK,
  DEFAULT_SERIAL_PARAMS,
  fillSerialTables,
  MARK_CONTROL,
  MCV_Z,
  PAYLOAD,
  REASON,
  REC_BATCH_CLOSE,
  REC_GTIN_TRUNCATED,
  REC_SERIAL_NON_ASCII,
  REC_SERIAL_TRUNCATED,
  SERIAL_COL,
  SERIAL_KERNEL_FIELDS,
  SERIAL_OUT_FIELDS,
  SERIAL_PAYLOAD_BYTES,
  SERIAL_POSITIONS,
  serialInitArgs,
  type SerialParams,
  serialStateBytes,
  serialStaticBytes,
} from "./layout.js";
export { DEFAULT_LEDGER_OPTIONS, filterFalsePositiveRateAt, type LedgerCounters, type SerialLedgerOptions } from "./ledger.js";
export {
  type LedgerSlot,
  type LedgerThreadKernels,
  type LedgerThreadReport,
  SerialLedgerThread,
  type SerialLedgerThreadOptions,
  type SlotFieldsEvent,
} from "./ledger-thread.js";
export { mcvOfSymbols } from "./mcv-estimate.js";
export { asciiString, decodeSerialPayload, encodeSerialFields, encodeSerialRanges, readU32, type SerialFields } from "./payload.js";
export {
  DEFAULT_QUARANTINE_ENTRIES_MAX,
  DEFAULT_QUARANTINE_FILE,
  type QuarantineEntry,
  type QuarantineEvent,
  type QuarantineFile,
  QuarantineList,
  type ReleasedEntry,
} from "./quarantine.js";
export { batchReportMarkdown, SerialBatchReport } from "./report.js";
export { anomalyScore, anomalyTypesOf, reasonsOf, RISK_LEVELS, riskCode } from "./score.js";
export {
  BATCH_CLOSE_EVENT_TYPES,
  parseSerialPatterns,
  serialAnalysis,
  type SerialAnalysis,
  type SerialAnalysisOptions,
  type SerialEventFields,
  type SerialRangeEvent,
} from "./serial.js";
