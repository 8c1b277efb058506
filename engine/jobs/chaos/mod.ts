/** engine/jobs/chaos: the fault-injection harness behind `linewatch chaos` (docs/commands/chaos.md). */
export { type ClickHouseQuery, readScoreRows, SCORE_COLUMNS, type ScoreTableRow, sequenceCounts } from "./clickhouse-reads.js";
export { CLI_ENTRY, type CliProcess, peakRss, RssWatch, startCli } from "./engine-process.js";
export { TEXTBOOK_SPC_FLAGS } from "./env.js";
export { CHAOS_SCENARIOS, type ChaosOptions, type ChaosScenario, runChaos } from "./run-chaos.js";
export { diffCount, diffKeyedRows, type Reconciliation, reconcileSequences, type RowDiff, sequenceRange } from "./reconcile.js";
export { type ChaosRow, chaosFailed, formatChaosTable, verdictOf } from "./table.js";
export { runWsAbuses, type WsAbuse, type WsAbuseCounts, type WsAbuseTokens, wsAbuses, WS_FLOOD_MESSAGES } from "./ws-abuse.js";
export { ChaosWsClient, isRefusal, metricValue, type WsRefusal } from "./ws-client.js";
export { LatencyWindow, latencyRecorder, quantile } from "./ws-latency.js";
