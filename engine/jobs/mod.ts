/** engine/jobs: the names other folders use. Import from here, never from a file inside. */
export { AlertRouter } from "./alert-router.js";
export { AlertRowsBinary, alertRow, POINTS_TEXT_KEPT_MAX } from "./alert-rows.js";
export {
  type AlertOpening,
  alertOpening,
  EpisodeEscalations,
  DEFAULT_SCORECARD_GRACE_MS,
  FaultScorecard,
  formatScorecard,
  type Scorecard,
  scoreFaults,
} from "./fault-scorecard.js";
export { DEFAULT_RETRAIN, type ModelEvent, Retrainer, type RetrainRequest, type RetrainResult, type UnitsSource } from "./retrain.js";
export { DEFAULT_RETAINED_UNITS, RetainedUnits, unitsFromReadings } from "./retained-units.js";
export {
  DEFAULT_MODEL_DRIFT,
  DEFAULT_SCORE_BLOCK,
  MODEL_DRIFT_FAMILY,
  type ModelDriftOptions,
  type ModelDriftReport,
  ModelDriftWatch,
} from "./model-drift.js";
export { IFOREST_MODEL_KIND, IforestDriftFeed, watchedIforestModel } from "./iforest-drift.js";
export {
  followRegistry,
  iforestFollow,
  iforestFromRegistry,
  modelRow,
  productionModel,
  type RegistryFollowSpec,
} from "./model-follow.js";
export { DEFAULT_NATS_JOB, type NatsJobResult, runNatsJob } from "./nats-job.js";
export { Outputs, type OutputsOptions, type ScoredRecord, scoreRow, sensorDataRow } from "./outputs.js";
export { DEFAULT_PREDICTION_SERVICE, PredictionService, riskOfProbability } from "./prediction-service.js";
export { DEFAULT_REPLAY_BATCH_RECORDS, DEFAULT_REPLAY_KEYS_MAX, type ReplayOptions, type ReplaySummary, runReplay } from "./replay.js";
export { runJob, sensorSettleMs, type SourceKey, trackTimeConstantMs, trackingErrorShare } from "./run-job.js";
export { DEFAULT_SERIAL_JOB, KERNELS_ON_LEDGER_THREAD_CORES_BELOW, LEDGER_THREAD_MIN_CORES, SerialJob } from "./serial-job.js";
export { SerialOutputs } from "./serial-outputs.js";
export {
  consumeSerialNats,
  DEFAULT_SERIAL_NATS,
  runSerialSimulation,
  type SerialSourceResult,
  takeSerialMessage,
} from "./serial-sources.js";
export {
  allocateBodyRing,
  type AnalysisSpec,
  BodyRingReader,
  BodyRingWriter,
  buildAnalyses,
  ClickHouseRows,
  DEFAULT_INGEST_JOB,
  type IngestCounts,
  type IngestJetStream,
  IngestJob,
  type IngestJobOptions,
  type IngestJobResult,
  scoreFrameSubject,
  scoreLayout,
} from "./ingest/mod.js";
export { type IngestNatsJobOptions, runIngestNatsJob } from "./ingest-nats-job.js";
export {
  AuditMembers,
  type AuditConfigDocument,
  auditConfig,
  auditHeaderLine,
  type AuditStamp,
  auditStamp,
  canonicalJson,
  type ModelSource,
  registryModels,
  type ScoreDifference,
  verifyAuditClickHouse,
  verifyAuditFile,
  type VerifyReport,
} from "./audit/mod.js";
export {
  DEFAULT_QUALITY_JOB,
  QUALITY_THRESHOLDS,
  type QualityBatchView,
  type QualityDriver,
  QualityJob,
  type QualityOutcomeRow,
  type QualityPredictionRow,
  qualityLevel,
} from "./quality-job.js";
export { consumeQualityNats, type QualitySourceResult, runQualitySimulation } from "./quality-sources.js";
export {
  consumeQualityJetStream,
  DEFAULT_QUALITY_JETSTREAM,
  type QualityCheckpoint,
  type QualityJetStreamOptions,
  type QualityJetStreamResult,
  qualityCheckpointName,
} from "./quality-jetstream.js";
export {
  DEFAULT_LEAD_HOURS,
  type FailureScore,
  FailureScorecard,
  formatFailureScore,
  type ScoredPrediction,
} from "./failure-scorecard.js";
export {
  CHAOS_SCENARIOS,
  type ChaosOptions,
  type ChaosRow,
  type ChaosScenario,
  chaosFailed,
  formatChaosTable,
  runChaos,
} from "./chaos/mod.js";
