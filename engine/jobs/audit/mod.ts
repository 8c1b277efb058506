/** engine/jobs/audit: the audit record on every score and its verification. Import from here, never from a file inside. */
export {
  AUDIT_CONFIG_FORMAT,
  AUDIT_CONFIG_VERSION,
  type AuditConfigDocument,
  type AuditedAnalysis,
  auditConfig,
  type AuditHeader,
  auditHeaderLine,
  type AuditStamp,
  auditStamp,
  canonicalJson,
  parseAuditConfig,
  sha256Hex,
} from "./config.js";
export { AuditMembers, type AuditedOutput } from "./members.js";
export { type ModelSource, needsModel, registryModels, specsFromAuditConfig } from "./rebuild.js";
export { DIFFERENCES_KEPT, type ScoreDifference, type VerifyReport } from "./report.js";
export { verifyAuditFile } from "./verify-file.js";
export { type ClickHouseVerifyOptions, verifyAuditClickHouse } from "./verify-clickhouse.js";
