/**
 * The model registry (connectors/registry) on both of its stores — a temporary directory and a
 * JetStream object store on a throw-away nats-server — with the same cases, then the two stores
 * side by side: the same operations give the same listing. No case asserts a time.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryError, type RegistryRefusal } from "../engine/core/errors.js";
import {
  type Actor,
  type Change,
  DirectoryStore,
  type ModelEntry,
  ModelRegistry,
  NOTES_CHARS_MAX,
  ObjectStoreRegistry,
  type RegistryStore,
} from "../connectors/registry/mod.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { type RegistryTestModels, registryTestModels } from "./kit/registry-models.js";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { encodeRulModel } from "../operators/prediction/training/onnx-export.js";
import { buildRulDataset, trainRulModel } from "../operators/prediction/training/rul-train.js";
import { TEST_MODEL_OPTIONS } from "./kit/prediction-model.js";

const ACTOR: Actor = { command: "linewatch models push (test)", user: "tester", host: "test-host" };
const MODELS: RegistryTestModels = registryTestModels();
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function refusal(p: Promise<unknown>): Promise<RegistryRefusal> {
  const error = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RegistryError);
  return (error as RegistryError).reason;
}

/** An entry without its times (the one thing two stores written at different moments differ by). */
function timeless(e: ModelEntry): Omit<ModelEntry, "created_at" | "stage_changed_at"> {
  const { created_at: _, stage_changed_at: __, ...rest } = e;
  return rest;
}

let server: NatsServer | undefined;
let nc: NatsConnection | undefined;
let bucketCount = 0;
const haveNats = serverAvailable("nats-server");

beforeAll(async () => {
  if (!haveNats) return;
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

const STORES: [string, boolean, () => Promise<RegistryStore>][] = [
  ["a directory", true, async () => new DirectoryStore(join(mkdtempSync(join(tmpdir(), "lw-registry-")), "registry"))],
  ["a JetStream object store", haveNats, async () => ObjectStoreRegistry.open(nc as NatsConnection, `lw-models-${++bucketCount}`)],
];

describe.each(STORES)("model registry in %s", (_name, available, openStore) => {
  const registry = async () => new ModelRegistry(await openStore(), ACTOR);

  it.runIf(available)(
    "pushes an ONNX RUL model as a candidate with what its metadata says, and the same bytes again change nothing",
    async () => {
      const r = await registry();
      const { entry, created } = await r.push({ bytes: MODELS.rulA, kind: "rul", fileName: "rul-a.onnx", notes: "seed 1" });
      expect(created).toBe(true);
      expect(entry).toMatchObject({
        id: sha256(MODELS.rulA),
        short_id: sha256(MODELS.rulA).slice(0, 12),
        kind: "rul",
        stage: "candidate",
        file_name: "rul-a.onnx",
        size_bytes: MODELS.rulA.length,
        made_by: ACTOR,
        notes: "seed 1",
      });
      expect(entry.training_data).toContain("train_FD001.txt (2 epochs, seed 1");
      expect(entry.features).toContain("s2.mean");
      expect(Number.isFinite(entry.metrics?.validation_rmse)).toBe(true);
      expect(entry.details.window).toBe(30);
      const again = await r.push({ bytes: MODELS.rulA, kind: "rul", fileName: "renamed.onnx", notes: "other" });
      expect(again.created).toBe(false);
      expect(again.entry).toEqual(entry);
      expect(await r.list()).toEqual([entry]);
      expect(Buffer.from(await r.modelBytes(entry.short_id)).equals(Buffer.from(MODELS.rulA))).toBe(true);
    },
  );

  it.runIf(available)(
    "reads an iforest model's features and records null for what its file does not hold; reads a quality model's features and metrics",
    async () => {
      const r = await registry();
      const forest = (await r.push({ bytes: MODELS.iforest, kind: "iforest", fileName: "model.json" })).entry;
      expect(forest.features).toEqual(["fill_weight", "seal_temp", "torque"]);
      expect(forest.metrics).toBeNull();
      expect(forest.training_data).toBeNull();
      expect(forest.notes).toBeNull();
      expect(forest.details.trees).toBe(20);
      const quality = (await r.push({ bytes: MODELS.quality, kind: "quality", fileName: "q.bin" })).entry;
      expect(quality.format).toBe("onnx (linewatch quality model)");
      expect([quality.features, quality.metrics, quality.training_data]).toEqual([
        ["temperature.mean", "progress"],
        { validation_yield_mae: 0.01 },
        "registry tests (fixed weights)",
      ]);
      expect((await r.list("quality")).map((e) => e.id)).toEqual([quality.id]);
    },
  );

  it.runIf(available)(
    "refuses a file of another kind, an unknown kind, id or stage, long notes, and a rollback with no history",
    async () => {
      const r = await registry();
      expect(await refusal(r.push({ bytes: MODELS.rulA, kind: "iforest", fileName: "rul.onnx" }))).toBe("wrong_kind");
      expect(await refusal(r.push({ bytes: MODELS.iforest, kind: "rul", fileName: "model.json" }))).toBe("wrong_kind");
      expect(await refusal(r.push({ bytes: MODELS.iforest, kind: "quality", fileName: "model.json" }))).toBe("wrong_kind");
      expect(await refusal(r.push({ bytes: MODELS.rulA, kind: "quality", fileName: "rul.onnx" }))).toBe("wrong_kind");
      expect(await refusal(r.push({ bytes: MODELS.quality, kind: "weights", fileName: "q.bin" }))).toBe("unknown_kind");
      const long = "n".repeat(NOTES_CHARS_MAX + 1);
      expect(await refusal(r.push({ bytes: MODELS.quality, kind: "quality", fileName: "q.bin", notes: long }))).toBe("too_large");
      expect(await r.list()).toEqual([]);
      const { entry } = await r.push({ bytes: MODELS.rulA, kind: "rul", fileName: "rul-a.onnx" });
      expect(await refusal(r.show("0123456789ab"))).toBe("unknown_id");
      expect(await refusal(r.show("xyz"))).toBe("unknown_id");
      expect(await refusal(r.promote(entry.short_id, "staging"))).toBe("unknown_stage");
      expect(await refusal(r.rollback("rul"))).toBe("nothing_to_roll_back");
      expect((await r.show(entry.id)).stage).toBe("candidate");
    },
  );

  it.runIf(available)(
    "promotes to production (archiving the one before), rolls back from the history, and logs every change with who",
    async () => {
      const r = await registry();
      const a = (await r.push({ bytes: MODELS.rulA, kind: "rul", fileName: "rul-a.onnx" })).entry;
      const b = (await r.push({ bytes: MODELS.rulB, kind: "rul", fileName: "rul-b.onnx" })).entry;
      expect((await r.promote(a.short_id, "production")).replaced).toBeNull();
      const second = await r.promote(b.id.slice(0, 8), "production");
      expect(second.replaced?.id).toBe(a.id);
      expect((await r.production("rul"))?.id).toBe(b.id);
      expect((await r.show(a.id)).stage).toBe("archived");
      // Both took their stage when b was promoted: what ml_models orders an entry's rows by.
      const promotedB = (await r.history(b.id)).at(-1) as Change;
      expect([(await r.show(a.id)).stage_changed_at, (await r.show(b.id)).stage_changed_at]).toEqual([promotedB.at, promotedB.at]);
      expect((await r.promote(b.id, "production")).changed).toBe(false);

      const back = await r.rollback("rul");
      expect([back.entry.id, back.replaced?.id]).toEqual([a.id, b.id]);
      expect((await r.production("rul"))?.id).toBe(a.id);
      expect((await r.list("rul")).map((e) => [e.file_name, e.stage])).toEqual([
        ["rul-a.onnx", "production"],
        ["rul-b.onnx", "archived"],
      ]);
      expect(await refusal(r.rollback("rul"))).toBe("nothing_to_roll_back");

      await r.promote(a.id, "candidate");
      expect(await r.production("rul")).toBeNull();
      const changes = await r.history(a.id);
      expect(changes.map((c) => `${c.action} ${c.from_stage ?? "-"}→${c.to_stage}`)).toEqual([
        "push -→candidate",
        "promote candidate→production",
        "promote candidate→production",
        "rollback archived→production",
        "promote production→candidate",
      ]);
      expect(changes.every((c) => c.by.user === "tester" && c.by.host === "test-host" && c.at !== "")).toBe(true);
    },
  );

  it.runIf(available)("refuses a write from a registry that read the record before another one wrote it", async () => {
    const store = await openStore();
    const r = new ModelRegistry(store, ACTOR);
    await r.push({ bytes: MODELS.quality, kind: "quality", fileName: "q.bin" });
    const stale = await store.readRecord();
    await r.push({ bytes: MODELS.iforest, kind: "iforest", fileName: "model.json" });
    expect(stale).not.toBeNull();
    expect(await refusal(store.writeRecord(stale!.bytes, stale!.revision))).toBe("concurrent_change");
    expect((await r.list()).length).toBe(2);
  });
});

describe.skipIf(!haveNats)("the two stores side by side", () => {
  it("give the same listing and history for the same operations", async () => {
    const script = async (store: RegistryStore) => {
      const r = new ModelRegistry(store, ACTOR);
      const a = (await r.push({ bytes: MODELS.rulA, kind: "rul", fileName: "rul-a.onnx", notes: "first" })).entry;
      const b = (await r.push({ bytes: MODELS.rulB, kind: "rul", fileName: "rul-b.onnx" })).entry;
      await r.push({ bytes: MODELS.iforest, kind: "iforest", fileName: "model.json" });
      await r.push({ bytes: MODELS.rulA, kind: "rul", fileName: "rul-a.onnx" });
      await r.promote(a.id, "production");
      await r.promote(b.id, "production");
      await r.rollback("rul");
      const history = (await r.history(b.id)).map(({ at: _, ...c }) => c);
      return { list: (await r.list()).map(timeless), history };
    };
    const dir = await script(new DirectoryStore(mkdtempSync(join(tmpdir(), "lw-registry-same-"))));
    const nats = await script(await ObjectStoreRegistry.open(nc as NatsConnection, "lw-models-same"));
    expect(nats).toEqual(dir);
    expect(dir.list.map((e) => `${e.kind} ${e.stage}`)).toEqual(["rul production", "rul archived", "iforest candidate"]);
  });
});

describe("training-data fingerprint", () => {
  it("an entry's fingerprint is the SHA-256 of the rows its model was fitted on (names, then little-endian float64 rows)", async () => {
    const units = readCmapss(join(referenceDataDir(), "cmapss", "train_FD001.txt"));
    const trained = trainRulModel(units, { ...TEST_MODEL_OPTIONS, epochs: 1, seed: 4 }, "fingerprint test");
    const fitted = buildRulDataset(
      units.filter((u) => trained.trainUnits.includes(u.unit)),
      trained.spec.featureNames,
      trained.spec.window,
      trained.spec.rulCap,
    );
    const hash = createHash("sha256").update(JSON.stringify(trained.spec.featureNames));
    hash.update(Buffer.from(fitted.features.buffer, fitted.features.byteOffset, fitted.features.byteLength));
    const registry = new ModelRegistry(new DirectoryStore(mkdtempSync(join(tmpdir(), "lw-registry-fp-"))), ACTOR);
    const { entry } = await registry.push({ bytes: encodeRulModel(trained.spec), kind: "rul", fileName: "fp.onnx" });
    expect(entry.training_fingerprint).toBe(`sha256:${hash.digest("hex")}`);
    const forest = (await registry.push({ bytes: MODELS.iforest, kind: "iforest", fileName: "f.json" })).entry;
    expect(forest.training_fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await registry.push({ bytes: MODELS.quality, kind: "quality", fileName: "q.bin" })).entry.training_fingerprint).toBeNull();
  }, 60_000);
});
