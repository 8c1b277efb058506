/** connectors/sim: the names other folders use. Import from here, never from a file inside. */
export {
  CMAPSS_ORDERS,
  CMAPSS_OPERATING_MODE,
  CmapssFleet,
  type CmapssOrder,
  type CmapssShift,
  parseCmapssShifts,
  parseUnitList,
  publishCmapssFleet,
} from "./cmapss-source.js";
export { DEFAULT_NATS_PUBLISH, type NatsPublishResult, publishSimulation } from "./nats-publisher.js";
export { type BatchPublishOptions, type BatchPublishResult, DEFAULT_BATCH_PUBLISH, publishBatchStreams } from "./batch-publisher.js";
export {
  type BatchEventKind,
  BatchSimulator,
  BatchSimulatorConfigError,
  type BatchSimulatorOptions,
  DEFAULT_BATCH_SIMULATOR_OPTIONS,
  expectedYield,
  formatProcessNdjson,
  formatQualityNdjson,
  lineId,
  type ProcessHazards,
  processHazards,
  processLogits,
  type ProcessReading,
  type QualityOutcome,
} from "./batch-simulator.js";
export {
  DEFAULT_SIMULATOR_OPTIONS,
  FAULT_KINDS,
  type FaultKind,
  type FaultLabel,
  formatTimestamp,
  OPERATING_MODES,
  PlantSimulator,
  SENSOR_SPECS,
  SENSOR_TYPES,
  type SensorRecord,
  type SensorType,
  type SimulatedColumns,
  SimulatorConfigError,
  type SimulatorOptions,
  toWireReading,
  type WireReading,
} from "./plant-simulator.js";
export {
  type DegradationLabel,
  degradationAt,
  FAILURE_MODES,
  type FailureLabel,
  type FailureModeSpec,
  MACHINE_TYPES,
  type MachineType,
  type MaintenanceRecord,
  machineTypeOf,
} from "./wear-model.js";
export { DEFAULT_SERIAL_PUBLISH, publishSerialEvents } from "./serial-publisher.js";
export {
  DEFAULT_SERIAL_SIMULATOR_OPTIONS,
  formatSerialEventCsv,
  formatSerialEventNdjson,
  SERIAL_ATTACKS,
  SERIAL_EVENT_FIELDS,
  type SerialAttack,
  type SerialEvent,
  SerialSimulator,
  type SerialSimulatorOptions,
} from "./serial-simulator.js";
