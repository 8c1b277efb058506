/**
 * ClickHouse schema and errors: the tables create on a real clickhouse-server (18.16 from
 * Debian here), twice without harm; rows encode as the tables expect; the error code is read
 * from the server's own messages, in its format and in the current one.
 */
import { createClient, ClickHouseLogLevel } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backoffMs, classifyFailure } from "../connectors/clickhouse/failure.js";
import {
  CLICKHOUSE_TABLES,
  createSchema,
  encodeRow,
  schemaStatements,
  TABLE_SCHEMAS,
  type AlertRow,
  type ScoreRow,
  type SensorDataRow,
} from "../connectors/clickhouse/schema.js";
import { ClickHouseError, EncodeError } from "../connectors/errors.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";
import { type ScoredRecord, scoreRow } from "../engine/jobs/outputs.js";
import { TABLE_ROWS } from "./kit/clickhouse-rows.js";

/** Real messages: 18.16 over HTTP, and a current server (24.x) for the same mistakes. */
const TEXT_18_16 =
  "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 1: SELEC 1. Expected one of: SELECT query, e.what() = DB::Exception\n";
const TEXT_CURRENT =
  "Code: 62. DB::Exception: Syntax error: failed at position 1 ('SELEC'): SELEC 1. Expected one of: Query, SELECT query. (SYNTAX_ERROR) (version 24.3.1.2672 (official build))\n";
const TEXT_ROW_18_16 =
  'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected " before: abc"}: (while read the value of key f): (at row 3)\n, e.what() = DB::Exception\n';

describe("ClickHouseError.parse - server text", () => {
  it("reads code, name and message from 18.16's format", () => {
    const e = ClickHouseError.parse(TEXT_18_16);
    expect(e).toBeInstanceOf(ClickHouseError);
    expect(e?.code).toBe(62);
    expect(e?.type).toBe("SYNTAX_ERROR");
    expect(e?.kind).toBe("permanent");
    expect(e?.serverMessage.startsWith("Syntax error: failed at position 1")).toBe(true);
    expect(e?.serverMessage).not.toMatch(/e\.what\(\)/);
  });

  it("reads code, name and message from the current format", () => {
    const e = ClickHouseError.parse(TEXT_CURRENT);
    expect(e?.code).toBe(62);
    expect(e?.type).toBe("SYNTAX_ERROR");
    expect(e?.serverMessage).not.toMatch(/version/);
  });

  it("a row error names the row and is of kind row", () => {
    const e = ClickHouseError.parse(TEXT_ROW_18_16);
    expect(e?.code).toBe(27);
    expect(e?.kind).toBe("row");
    expect(e?.atRow).toBe(3);
  });

  it("text without a code is not a ClickHouse error; failures without one may pass", () => {
    expect(ClickHouseError.parse("connect ECONNREFUSED 127.0.0.1:8123")).toBeNull();
    const network = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8123"), { code: "ECONNREFUSED" });
    expect(classifyFailure(network).kind).toBe("transient");
    expect(classifyFailure(new Error("<html>502 Bad Gateway</html>")).kind).toBe("transient");
    expect(classifyFailure(new Error("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)")).kind).toBe("transient");
    expect(classifyFailure(new Error(TEXT_18_16)).error).toBeInstanceOf(ClickHouseError);
  });
});

describe("backoff - bounded, jittered, exponential", () => {
  it("stays within [ceiling/2, ceiling] and stops growing at the maximum", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** attempt);
      expect(backoffMs(attempt, 100, 5000, () => 0)).toBe(ceiling / 2);
      expect(backoffMs(attempt, 100, 5000, () => 0.999999)).toBeLessThanOrEqual(ceiling);
    }
  });
});

describe("schema - rows encode as the tables expect", () => {
  const reading: SensorDataRow = { machine_id: "M1", sensor_type: "temperature", timestamp: 1_700_000_000_123.7, sensor_value: 21.5 };

  it("times become DateTime seconds plus exact milliseconds", () => {
    const row = JSON.parse(encodeRow("ml_sensor_data", reading));
    expect(row).toMatchObject({ timestamp: 1_700_000_000, timestamp_ms: 1_700_000_000_123, seq: 0, sensor_unit: "" });
  });

  it("undefined statistics are NULL, never NaN", () => {
    const score: ScoreRow = {
      machine_id: "M1",
      sensor_type: "t",
      timestamp: 1,
      value: 1,
      mean: Number.NaN,
      std: undefined,
      z: Infinity,
      cl: 2,
    };
    const row = JSON.parse(encodeRow("ml_scores", score));
    expect(row.mean).toBeNull();
    expect(row.std).toBeNull();
    expect(row.z).toBeNull();
    expect(row.cl).toBe(2);
  });

  it("refuses rows that break the table's rules, with a reason", () => {
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(EncodeError);
        return (e as EncodeError).reason;
      }
      return "accepted";
    };
    expect(reason(() => encodeRow("ml_sensor_data", { ...reading, sensor_value: Number.NaN }))).toBe("not_finite");
    expect(reason(() => encodeRow("ml_sensor_data", { ...reading, timestamp: -1 }))).toBe("bad_timestamp");
    expect(reason(() => encodeRow("ml_sensor_data", { ...reading, machine_id: undefined as unknown as string }))).toBe("missing_field");
    expect(reason(() => encodeRow("ml_equipment_health", { machine_id: "M1", computed_at: 1, health_score: 101, risk_level: "low" }))).toBe(
      "invalid_field",
    );
    expect(
      reason(() => encodeRow("ml_equipment_health", { machine_id: "M1", computed_at: 1, health_score: 50, risk_level: "none" as "low" })),
    ).toBe("invalid_field");
    // Rule masks: bits of rules the family does not have (WE 1–4, Nelson 1–8, moving range 1–3).
    const score: ScoreRow = { machine_id: "M1", sensor_type: "t", timestamp: 1, value: 1 };
    expect(reason(() => encodeRow("ml_scores", { ...score, we_mask: 0x10 }))).toBe("invalid_field");
    expect(reason(() => encodeRow("ml_scores", { ...score, nelson_mask: 0x100 }))).toBe("invalid_field");
    expect(reason(() => encodeRow("ml_scores", { ...score, mr_mask: 0x08 }))).toBe("invalid_field");
    expect(JSON.parse(encodeRow("ml_scores", { ...score, mr_mask: 0x07 })).mr_mask).toBe(7);
    // The run's row of a scored record: mr_mask from the members' `mr` names; a name that is no rule is refused, not dropped.
    const scored: ScoredRecord = { machineId: "M1", sensorType: "t", key: "M1/t", time: 1, value: 1, seq: 0 };
    expect(scoreRow(scored, { mr: ["JUMP", "STUCK"] }).mr_mask).toBe(0b101);
    expect(scoreRow(scored, { mr: [] }).mr_mask).toBe(0);
    expect(reason(() => encodeRow("ml_scores", scoreRow(scored, { mr: ["NOISY", "JUMPY"] })))).toBe("invalid_field");
  });

  it("an episode's row version grows through its life: more firings, acknowledged, closed", () => {
    const alert = {
      episode_id: "00000000000000ff",
      key: "M1/t",
      machine_id: "M1",
      sensor_type: "t",
      family: "level",
      rules: ["WE1"],
      first_rule: "WE1",
      severity: "high",
      opened_at: 1000,
      last_fired_at: 1000,
      firings: 1,
      limits_version: 1,
      points: [],
    } as const;
    const version = (r: Partial<AlertRow>): number => JSON.parse(encodeRow("ml_alerts", { ...alert, state: "open", ...r })).version;
    const life = [
      version({}),
      version({ firings: 7, last_fired_at: 1500 }),
      // Acknowledged: beats any later firing count of the open episode, so a later update cannot drop it…
      version({ firings: 7, acknowledged_at: 1600 }),
      version({ firings: 9, acknowledged_at: 1600 }),
      // …and closed beats open, acknowledged or not.
      version({ firings: 9, state: "closed", closed_at: 2000 }),
      version({ firings: 9, state: "closed", closed_at: 2000, acknowledged_at: 2500 }),
    ];
    for (let i = 1; i < life.length; i++) expect(life[i]).toBeGreaterThan(life[i - 1]);
    expect(version({ firings: 2 ** 32 - 1 })).toBeLessThan(version({ firings: 1, acknowledged_at: 1 }));
    expect(version({ firings: 2 ** 32 - 1, acknowledged_at: 1 })).toBeLessThan(version({ firings: 1, state: "closed", closed_at: 2 }));
  });
});

describe.skipIf(!serverAvailable("clickhouse-server"))("schema - on a real clickhouse-server", () => {
  let server: ClickHouseServer;
  beforeAll(async () => {
    server = await startClickHouseServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it("creates every table, in default and in its own database, and again without harm", async () => {
    for (const db of ["default", "linewatch"]) {
      await createSchema((sql) => server.query(sql), db);
      await createSchema((sql) => server.query(sql), db);
      const tables = (
        await server.query(
          `SELECT name, engine, sorting_key, partition_key FROM system.tables WHERE database = '${db}' ORDER BY name FORMAT JSONEachRow`,
        )
      )
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(tables.map((t) => t.name)).toEqual([...CLICKHOUSE_TABLES].sort());
      for (const t of tables) {
        expect(t.engine).toBe("ReplacingMergeTree");
        const spec = TABLE_SCHEMAS[t.name as keyof typeof TABLE_SCHEMAS];
        expect(t.sorting_key.split(",").map((k: string) => k.trim())).toEqual(spec.key);
        // The tables of readings and events sort by machine first; the registry's mirror by model kind, ml_audit_configs (settings documents) by their hash, the batch quality tables by line.
        const first =
          t.name === "ml_models"
            ? "kind"
            : t.name === "ml_audit_configs"
              ? "config_hash"
              : t.name.startsWith("ml_quality_")
                ? "line_id"
                : "machine_id";
        expect(t.sorting_key.startsWith(first), t.name).toBe(true);
      }
    }
  });

  it("uses nothing 18.16 lacks (and the statements say so)", () => {
    for (const sql of schemaStatements("linewatch")) {
      expect(sql).not.toMatch(/LowCardinality|DateTime64|\bTTL\b|CODEC|JSON\)|Object\(/);
    }
  });

  it("every table reads back the row written to it", async () => {
    await createSchema((sql) => server.query(sql), "readback");
    for (const t of CLICKHOUSE_TABLES) {
      const line = encodeRow(t, TABLE_ROWS[t] as never);
      await server.query(`INSERT INTO readback.${t} FORMAT JSONEachRow\n${line}\n`);
      const back = JSON.parse(
        await server.query(`SELECT * FROM readback.${t} FINAL FORMAT JSONEachRow`, { output_format_json_quote_64bit_integers: 0 }),
      );
      const sent = JSON.parse(line);
      for (const [k, v] of Object.entries(sent)) {
        const type = (TABLE_SCHEMAS[t].columns as ReadonlyArray<{ name: string; type: string }>).find((c) => c.name === k)?.type;
        if (typeof v === "number" && type === "DateTime") {
          expect(Date.parse(`${back[k]}Z`) / 1000, `${t}.${k}`).toBe(v);
        } else {
          expect(back[k], `${t}.${k}`).toEqual(v);
        }
      }
    }
  });

  it("reads the code from real server errors (syntax → 62, unknown table → 60, bad row → 27)", async () => {
    const client = createClient({ url: server.url, log: { level: ClickHouseLogLevel.OFF } });
    try {
      const expectCode = async (f: () => Promise<unknown>, code: number) => {
        const failure = await f().then(
          () => null,
          (e: unknown) => classifyFailure(e),
        );
        expect(failure?.error).toBeInstanceOf(ClickHouseError);
        expect((failure?.error as ClickHouseError | undefined)?.code).toBe(code);
        return failure?.error as ClickHouseError;
      };
      expect((await expectCode(() => client.query({ query: "SELEC 1" }), 62)).kind).toBe("permanent");
      expect((await expectCode(() => server.query("SELEC 1"), 62)).type).toBe("SYNTAX_ERROR");
      expect((await expectCode(() => client.command({ query: "SELECT * FROM default.no_such_table" }), 60)).kind).toBe("permanent");
      await createSchema((sql) => server.query(sql), "default");
      const bad = await expectCode(
        () =>
          client.insert({
            table: "ml_equipment_health",
            format: "JSONEachRow",
            values: [{ machine_id: "M1", computed_at: 1, computed_at_ms: 1000, health_score: "abc", risk_level: "low", version: 0 }],
          }),
        27,
      );
      expect(bad.kind).toBe("row");
      expect(bad.atRow).toBe(1);
    } finally {
      await client.close();
    }
  });
});
