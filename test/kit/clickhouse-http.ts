/**
 * Raw HTTP to a throw-away clickhouse-server, for the encoder tests: a body POSTed as it is (a
 * RowBinary or Native insert) and a SELECT's answer as bytes, without the client library's
 * formats in between.
 */
import { request } from "node:http";
import type { ClickHouseServer } from "../../connectors/local/clickhouse-server.js";

/** POSTs a body; resolves with the server's answer, rejects with its error text. */
export function postBody(server: ClickHouseServer, sql: string, body: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.httpPort, path: `/?query=${encodeURIComponent(sql)}`, method: "POST" }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(text))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A SELECT's answer as bytes; rejects with the server's error text. */
export function selectBytes(server: ClickHouseServer, sql: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.httpPort, path: `/?query=${encodeURIComponent(sql)}`, method: "GET" }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(parts)) : reject(new Error(Buffer.concat(parts).toString()))));
    });
    req.on("error", reject);
    req.end();
  });
}
