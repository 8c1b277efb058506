/**
 * Reading linewatch's tables back, for `linewatch audit verify`: rows of ml_scores as RowBinary
 * (the exact doubles, which a text format would round on 18.16) decoded by the table's own
 * declaration, a page at a time so a key's whole history never sits in memory at once.
 */
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from "@clickhouse/client";
import { ConfigError } from "../../engine/core/mod.js";
import type { ColumnValue } from "./row-binary.js";
import { type ClickHouseTable, decodeRowBinary, isDatabaseName, TABLE_SCHEMAS } from "./schema.js";

export interface ClickHouseReaderOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
}

/** A stored row by column name (DateTime in seconds, UInt64 as a number where safe). */
export type StoredRow = Record<string, ColumnValue>;

export class ClickHouseReader {
  private readonly client: ClickHouseClient;
  readonly database: string;

  constructor(options: ClickHouseReaderOptions) {
    if (!isDatabaseName(options.database))
      throw new ConfigError("--database", `not a plain SQL identifier: ${JSON.stringify(options.database)}`);
    this.database = options.database;
    this.client = createClient({
      url: options.url,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  /**
   * Rows of `table` (FINAL: one per key) matching `where` (SQL over the table's columns; values
   * quoted with {@link sqlString}), ordered by `orderBy`, `limit` from `offset`.
   */
  async rows(table: ClickHouseTable, where: string, orderBy: string, offset: number, limit: number): Promise<StoredRow[]> {
    const columns = TABLE_SCHEMAS[table].columns.map((c) => c.name).join(", ");
    const query =
      `SELECT ${columns} FROM ${this.database}.${table} FINAL WHERE ${where} ORDER BY ${orderBy} ` +
      `LIMIT ${Math.floor(offset)}, ${Math.floor(limit)} FORMAT RowBinary`;
    const result = await this.client.exec({ query });
    const chunks: Buffer[] = [];
    for await (const chunk of result.stream) chunks.push(chunk as Buffer);
    return decodeRowBinary(table, Buffer.concat(chunks));
  }

  /** The values of one String column of `table` where `where` holds, distinct, sorted. */
  async distinct(table: ClickHouseTable, column: string, where: string): Promise<string[]> {
    const result = await this.client.query({
      query: `SELECT DISTINCT ${column} AS v FROM ${this.database}.${table} WHERE ${where} ORDER BY v`,
      format: "JSONEachRow",
    });
    return (await result.json<{ v: string }>()).map((r) => r.v);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** A String as an SQL literal: single-quoted, backslash and quote escaped. */
export function sqlString(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}
