/** engine/jobs/ingest: the names other folders use. Import from here, never from a file inside. */
export { type AnalysisSpec, buildAnalyses } from "./analysis-spec.js";
export { DEFAULT_INGEST_JOB, type IngestCounts, IngestJob, type IngestJobOptions, type IngestJobResult } from "./ingest-job.js";
export { type DriftRows, type IngestJetStream, scoreFrameSubject } from "./protocol.js";
export { ClickHouseRows, scoreLayout } from "./clickhouse-rows.js";
export { allocateBodyRing, BodyRingReader, BodyRingWriter } from "./body-ring.js";
