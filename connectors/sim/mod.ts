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
} from "./plant-simulator.js";
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
