/** connectors/live: the names other folders use. Import from here, never from a file inside. */
export type { AccessTokenConfig } from "./access.js";
export {
  type ApiProviders,
  ApiReplyError,
  type EquipmentHealth,
  type PlantMachine,
  type MaintenancePrediction,
  type EpisodeQuery,
  type PredictionQuery,
  type QualityBatchesProvider,
  type QuarantineProvider,
  type RiskLevel,
} from "./http-api.js";
export { type FrameAudit, lendFrameBuffer, ScoreFrameMessage } from "./frame-message.js";
export { ServerListenError } from "../errors.js";
export { type LiveServer, startLiveServer } from "./live-server.js";
export { defineEngineMetrics, type EngineMetrics, METRIC, MetricsRegistry } from "./metrics.js";
export { ANALYSIS_PREDICTION, analysisTopic, isValidTopic, lineTopic, machineTopic, TOPIC_ALERTS, TOPIC_QUARANTINE } from "./topics.js";
