/**
 * Back from a stored audit record to analyses that compute the same values: the settings
 * document gives the options, the model registry the model a row names. What the document leaves
 * out (alert episodes, key part names) does not change a score, so defaults stand in for it.
 */
import { ConfigError } from "../../core/mod.js";
import type { ModelRegistry } from "../../../connectors/registry/mod.js";
import { type IsolationForestModel, parseModel } from "../../../operators/iforest/mod.js";
import type { AnalysisSpec } from "../ingest/mod.js";
import type { AuditConfigDocument } from "./config.js";

/** Where verify finds the model of a recorded `model_version`. */
export interface ModelSource {
  /** Where it looks, for messages. */
  readonly where: string;
  /** The isolation forest whose content hash is `version`; ConfigError when there is none. */
  iforest(version: string): Promise<IsolationForestModel>;
}

/** The analyses of a settings document; `model`: the isolation forest, when the document has one. */
export function specsFromAuditConfig(doc: AuditConfigDocument, model: IsolationForestModel | null): AnalysisSpec[] {
  return doc.analyses.map((a): AnalysisSpec => {
    const o = a.options;
    if (a.name === "rolling") return { name: "rolling", options: o as unknown as Extract<AnalysisSpec, { name: "rolling" }>["options"] };
    if (a.name === "spc") {
      const spc = o as unknown as Extract<AnalysisSpec, { name: "spc" }>["options"];
      return {
        name: "spc",
        options: { ...spc, limitsByKey: mapOf(o.limitsByKey), budgetByKey: mapOf(o.budgetByKey) } as typeof spc,
      };
    }
    if (a.name !== "iforest") throw new ConfigError("audit config", `unknown analysis "${String(a.name)}"`);
    if (model === null) throw new ConfigError("audit config", "the settings have an isolation forest, and no row names its model");
    return {
      name: "iforest",
      options: { model, features: o.features as string[], rollingIndex: o.rollingIndex as number | undefined },
    };
  });
}

/** Whether the document has an analysis that needs a model. */
export function needsModel(doc: AuditConfigDocument): boolean {
  return doc.analyses.some((a) => a.name === "iforest");
}

/** The registry as a {@link ModelSource}: an iforest entry whose `model_hash` is the version, its file checked to hash to it. */
export function registryModels(registry: ModelRegistry): ModelSource {
  const found = new Map<string, IsolationForestModel>();
  return {
    where: registry.store.where,
    async iforest(version: string): Promise<IsolationForestModel> {
      const known = found.get(version);
      if (known !== undefined) return known;
      const entry = (await registry.list("iforest")).find((e) => e.details.model_hash === version);
      if (entry === undefined)
        throw new ConfigError("model_version", `no iforest model ${version} in the registry ${registry.store.where}`);
      const bytes = await registry.modelBytes(entry.id);
      // parseModel checks that the file's content hashes to the hash it states.
      const model = parseModel(new TextDecoder().decode(bytes), `${registry.store.where} ${entry.short_id}`);
      if (model.hash !== version)
        throw new ConfigError("model_version", `the registry's model ${entry.short_id} hashes to ${model.hash}, not ${version}`);
      found.set(version, model);
      return model;
    },
  };
}

function mapOf<V>(o: unknown): Map<string, V> | undefined {
  if (o === undefined || o === null) return undefined;
  return new Map(Object.entries(o as Record<string, V>));
}
