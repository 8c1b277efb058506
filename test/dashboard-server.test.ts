/**
 * The live server's side of the dashboard: its files from a fixed table (no request path reaches
 * the file system), the login that turns a token into the HttpOnly cookie, the cookie accepted by
 * the API and the WebSocket, and the plant, session and history routes.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type LiveServer, startLiveServer } from "../connectors/live/live-server.js";
import { decodeScoreFrame, encodeScoreFrame } from "../connectors/wire/score-frame.js";
import { createLogger } from "../engine/core/mod.js";

const TOKEN = "dashboard-test-token-0123456789";
const QUIET = createLogger({ level: "silent" });
const servers: LiveServer[] = [];

afterAll(async () => {
  for (const s of servers) await s.close();
});

/** The first bytes of every WebAssembly module (magic, version 1). */
const WASM_HEADER = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

/**
 * A built dashboard in a temporary folder, the what-if preview's assets beside it (www/, as
 * dist/www beside dist/dashboard), and a secret beside both that must never be served.
 */
function dashboardDir(): string {
  const root = mkdtempSync(join(tmpdir(), "lw-dash-"));
  const dir = join(root, "dashboard");
  mkdirSync(join(dir, "js"), { recursive: true });
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>linewatch</title>");
  writeFileSync(join(dir, "js", "app.js"), "export {};");
  writeFileSync(join(dir, "dashboard.css"), "body{}");
  writeFileSync(join(dir, "notes.txt"), "not an asset type");
  writeFileSync(join(root, "secret.json"), '{"secret":true}');
  const preview = join(root, "www", "connectors", "live", "dashboard");
  mkdirSync(preview, { recursive: true });
  writeFileSync(join(preview, "spc-preview.js"), "export async function previewSpc() {}");
  writeFileSync(join(preview, "spc-web.wasm"), WASM_HEADER);
  writeFileSync(join(preview, "notes.txt"), "not an asset type");
  return dir;
}

async function server(dir: string | null): Promise<LiveServer> {
  const frame = encodeScoreFrame({ keys: ["M-001.temperature"], keyIndex: [0], times: [1], values: [42], columns: [], length: 1 });
  const s = await startLiveServer({
    host: "127.0.0.1",
    port: 0,
    log: QUIET,
    dashboardDir: dir,
    tokens: [{ token: TOKEN, name: "operator", topics: ["#"], scopes: ["*"] }],
    providers: {
      alerts: { openAlerts: () => [] },
      plant: {
        machines: () => [
          {
            machine_id: "M-001",
            health_score: 70,
            risk_level: "medium",
            open_alerts: 1,
            sensors: ["temperature"],
            keys: ["M-001/temperature"],
            prediction: null,
          },
        ],
      },
      history: { frame: (id) => (id === "M-001" ? frame : null) },
    },
  });
  servers.push(s);
  return s;
}

/** A raw GET: the path goes out exactly as written (fetch would normalise `..`). */
function rawGet(
  s: LiveServer,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: s.port, path, method: "GET", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard server", () => {
  it("dashboard server - serves the page, its files and the what-if preview's module and wasm under /assets/www/ with their types and cache headers; traversal, encoded dots, absolute paths and other files are 404", async () => {
    const s = await server(dashboardDir());
    const page = await rawGet(s, "/");
    expect(page.status).toBe(200);
    expect(page.headers).toMatchObject({
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-cache",
      "x-frame-options": "DENY",
    });
    expect(page.body.toString()).toContain("<title>linewatch</title>");
    const js = await rawGet(s, "/assets/js/app.js");
    expect([js.status, js.headers["content-type"], js.headers["cache-control"]]).toEqual([
      200,
      "text/javascript; charset=utf-8",
      "public, max-age=300",
    ]);
    expect((await rawGet(s, "/assets/dashboard.css")).headers["content-type"]).toBe("text/css; charset=utf-8");
    // The what-if preview's module and the SPC kernel, from www/ beside the dashboard, under /assets/www/.
    const www = "/assets/www/connectors/live/dashboard";
    const module = await rawGet(s, `${www}/spc-preview.js`);
    expect([module.status, module.headers["content-type"], module.body.toString()]).toEqual([
      200,
      "text/javascript; charset=utf-8",
      "export async function previewSpc() {}",
    ]);
    const wasm = await rawGet(s, `${www}/spc-web.wasm`);
    expect([wasm.status, wasm.headers["content-type"], wasm.headers["cache-control"]]).toEqual([
      200,
      "application/wasm",
      "public, max-age=300",
    ]);
    expect(wasm.body.equals(WASM_HEADER)).toBe(true);
    for (const path of [
      `${www}/notes.txt`,
      `${www}/../../../../secret.json`,
      "/assets/www/%2e%2e/%2e%2e/secret.json",
      "/assets/www/../secret.json",
      "/assets/../www/connectors/live/dashboard/spc-web.wasm",
      "/www/connectors/live/dashboard/spc-web.wasm",
      "/assets/www/",
      "/assets/../secret.json",
      "/assets/%2e%2e/secret.json",
      "/assets/%2E%2E%2Fsecret.json",
      "/assets/js/../../secret.json",
      "/assets//etc/passwd",
      "/etc/passwd",
      "/assets/notes.txt",
      "/assets/",
      "/secret.json",
    ]) {
      const r = await rawGet(s, path);
      expect([path, r.status, r.body.toString().includes(`"secret":true`)]).toEqual([path, 404, false]);
    }
    // The JSON index moved to /api/.
    const index = await rawGet(s, "/api/");
    expect(JSON.parse(index.body.toString()).endpoints).toContain("GET /api/plant");
    // Without a built dashboard, / is the index.
    const bare = await server(null);
    expect(JSON.parse((await rawGet(bare, "/")).body.toString()).service).toBe("linewatch");
  });

  it("dashboard server - the login sets an HttpOnly SameSite=Strict cookie the API and the WebSocket accept; a wrong token is a 401, never a 500", async () => {
    const s = await server(dashboardDir());
    const post = (path: string, body: unknown) =>
      fetch(`${s.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    for (const body of [{ token: "wrong-token-wrong-token" }, { token: "" }, {}, { token: 7 }]) {
      const r = await post("/api/login", body);
      expect([JSON.stringify(body), r.status, ((await r.json()) as { error: string }).error]).toEqual([
        JSON.stringify(body),
        401,
        "unauthorized",
      ]);
    }
    expect((await fetch(`${s.url}/api/session`).then((r) => r.json())) as object).toEqual({ authenticated: false });
    const ok = await post("/api/login", { token: TOKEN });
    expect(ok.status).toBe(204);
    const setCookie = ok.headers.get("set-cookie") as string;
    expect(setCookie).toBe(`lw_token=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`);
    const cookie = setCookie.split(";")[0];

    const get = (path: string) => fetch(`${s.url}${path}`, { headers: { cookie } });
    expect(await (await get("/api/session")).json()).toEqual({ authenticated: true, name: "operator" });
    expect((await fetch(`${s.url}/api/plant`)).status).toBe(401);
    const plant = (await (await get("/api/plant")).json()) as { machines: Array<{ machine_id: string; risk_level: string }> };
    expect(plant.machines.map((m) => [m.machine_id, m.risk_level])).toEqual([["M-001", "medium"]]);
    const history = await get("/api/history/M-001");
    expect(history.headers.get("content-type")).toBe("application/octet-stream");
    expect(Array.from(decodeScoreFrame(new Uint8Array(await history.arrayBuffer())).values)).toEqual([42]);
    expect((await get("/api/history/M-999")).status).toBe(404);

    // The WebSocket takes the cookie too (a browser sends it on the upgrade).
    const ws = new WebSocket(s.wsUrl, { headers: { cookie } });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.close();
    const refused = new WebSocket(s.wsUrl, { headers: { cookie: "lw_token=wrong-token-wrong-token" } });
    const status = await new Promise<number>((resolve) => refused.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);

    const out = await fetch(`${s.url}/api/logout`, { method: "POST", headers: { cookie } });
    expect([out.status, out.headers.get("set-cookie")]).toEqual([204, "lw_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"]);
  });
});
