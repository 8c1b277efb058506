import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWebAssets, type WebAssets } from "../connectors/live/web-assets.js";
import { type LiveServer, startLiveServer } from "../connectors/live/mod.js";
import { serverAvailable } from "../connectors/local/mod.js";
import { allocateBatch, appendRecord, memoryLogger, packageRoot, StreamEngine } from "../engine/core/mod.js";
import { observeChunkRows, type RowContext } from "../operators/mod.js";
import { applySpcLimitsChange, SPC_OUT_FIELDS, type SpcLimitsChange, spcAnalysis } from "../operators/spc/mod.js";
import { bits, type Case, cases, engineFirings, engineRun, P, plantLike, WHAT_IF_KEY } from "./kit/spc-what-if.js";

/**
 * The what-if preview in a real browser (Debian's chromium, driven by playwright-core): the
 * dashboard's assets as `npm run build` makes them (dist/www), served over HTTP with the live
 * server's API behind /api; the module's result in the page equals the engine's for the same
 * readings and settings, bit for bit; the page previews, draws, and applies its limits through the
 * API to a running engine, whose rows from then on are the ones the page showed.
 */

const ROOT = packageRoot(import.meta.url) as string;
const CHROMIUM = "/usr/bin/chromium";
const OUTPUT = join(ROOT, "test-output", "spc-preview-browser");
const TOKEN = "what-if-test-token-0123456789";
const KEY = "M-007/temperature";
/** What /readings.json answers. */
const FETCHED = plantLike(21, 600);
const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
};

let assets: WebAssets;
let live: LiveServer;
let web: Server;
let origin: string;
let browser: Browser;
/** The engine behind the API: one key, fixed limits only from the API, budget 0.01 (as the page's settings below). */
let engine: StreamEngine;
let keyId: number;
const engineRows: number[] = [];
const known = new Map<string, object>();

/** Static files from dist/www; /api/… forwarded to the live server, as one origin (the page calls relative paths). */
async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://x");
  if (url.pathname.startsWith("/api/")) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const h of ["authorization", "content-type"]) if (typeof req.headers[h] === "string") headers[h] = req.headers[h] as string;
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const reply = await fetch(`${live.url}${url.pathname}${url.search}`, { method: req.method, headers, body });
    res.writeHead(reply.status, { "content-type": reply.headers.get("content-type") ?? "application/json" });
    res.end(Buffer.from(await reply.arrayBuffer()));
    return;
  }
  if (url.pathname === "/readings.json") {
    // Readings as a history endpoint might give them: records with an ISO time and a value.
    const records = FETCHED.map((value, i) => ({ timestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), value }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(records));
    return;
  }
  const path = normalize(join(assets.dir, decodeURIComponent(url.pathname)));
  if (!path.startsWith(assets.dir + sep) || !existsSync(path) || MIME[extname(path)] === undefined) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": MIME[extname(path)] }).end(readFileSync(path));
}

async function change(key: string, c: SpcLimitsChange): Promise<boolean> {
  if (key !== KEY) return false;
  await engine.flush();
  await engine.withKeyState(keyId, 0, (k, ptr) => applySpcLimitsChange(k, ptr, c));
  return true;
}

/** A page that records console errors and uncaught exceptions. */
async function openPage(path: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${origin}${path}`);
  return { page, errors };
}

function base64(values: ArrayLike<number>): string {
  return Buffer.from(Float64Array.from(values).buffer).toString("base64");
}

interface PageResult {
  rows: string;
  firings: unknown[];
  alerts: Record<string, number>;
  counts: Record<string, number>;
  skipped: number[];
  events: unknown[];
}

/**
 * The page's side of previewInPage, as source text: vitest rewrites `import()` in functions it
 * compiles, so the function the page runs is not one of this file's.
 */
const IN_PAGE = `async ({ module, key, values, settings, params }) => {
  const bytes = Uint8Array.from(atob(values), (ch) => ch.charCodeAt(0));
  const v = new Float64Array(bytes.buffer);
  const { previewSpc } = await import(module);
  const r = await previewSpc({ ...settings, key, params, times: v.map((_, i) => i), values: v });
  const out = new Uint8Array(r.rows.buffer);
  let s = "";
  for (let i = 0; i < out.length; i += 8192) s += String.fromCharCode(...out.subarray(i, i + 8192));
  return { rows: btoa(s), firings: r.firings, alerts: r.alerts, counts: r.counts, skipped: r.skipped, events: r.events };
}`;

/** Runs the preview module inside the page over the readings (sent as their f64 bytes: NaN, ±Inf and -0 intact). */
async function previewInPage(page: Page, c: Case): Promise<PageResult> {
  const arg = {
    module: "/connectors/live/dashboard/spc-preview.js",
    key: WHAT_IF_KEY,
    values: base64(c.values),
    settings: c.settings,
    params: c.params,
  };
  return (await page.evaluate(`(${IN_PAGE})(${JSON.stringify(arg)})`)) as PageResult;
}

function rowsOf(b64: string): Float64Array {
  const bytes = Buffer.from(b64, "base64");
  return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
}

// Debian's chromium (apt-get install -y chromium); skipped loudly when missing, failed under LINEWATCH_REQUIRE_SERVERS=1.
describe.skipIf(!serverAvailable("chromium"))("spc what-if preview in Chromium", () => {
  beforeAll(async () => {
    // Into a folder of its own, as `npm run build:web` builds dist/www (other tests may build at the same time).
    assets = buildWebAssets(ROOT, mkdtempSync(join(tmpdir(), "lw-www-")));
    mkdirSync(OUTPUT, { recursive: true });
    const analysis = spcAnalysis({ params: { ...P, baselineN: 0 }, falseAlarmBudget: 0.01, ewmaField: "ewma" });
    const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
    engine = new StreamEngine(
      { kernels: [analysis.kernel], workers: 2, groups: 1, keysMax: 2, batchRecordsMax: 256, lateness: null, reorderRecordsPerKeyMax: 1 },
      {
        onOutput(chunk) {
          observeChunkRows([analysis], chunk, () => KEY, ctx);
          engineRows.push(...chunk.outs[0].subarray(0, chunk.length * SPC_OUT_FIELDS));
        },
      },
    );
    keyId = engine.internKey(KEY);
    live = await startLiveServer({
      host: "127.0.0.1",
      port: 0,
      log: memoryLogger().log,
      tokens: [{ token: TOKEN, name: "quality", scopes: ["spc:*"] }],
      providers: {
        spcLimits: {
          limits: (key) => known.get(key) ?? (key === KEY ? { key, limits_version: 0 } : null),
          rebaseline: async (key, records) =>
            (await change(key, { kind: "rebaseline", records: records ?? 100 })) ? { key, rebaseline_records: records } : null,
          setLimits: async (key, l) => {
            if (!(await change(key, { kind: "set", cl: l.cl, sigma: l.sigma }))) return null;
            const limits = { key, cl: l.cl, sigma: l.sigma, effective: "next record" };
            known.set(key, limits);
            return limits;
          },
        },
      },
    });
    web = createServer((req, res) => void serve(req, res).catch((e) => res.writeHead(500).end(String(e))));
    await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => web?.close(resolve));
    await live?.close();
    await engine?.close();
  });

  it("the module in the page gives the engine's rows bit for bit, its firings and alert openings", async () => {
    const { page, errors } = await openPage("/connectors/live/dashboard/what-if.html");
    const picked = cases().filter((_, k) => [0, 2, 4, 7, 8].includes(k));
    for (const c of picked) {
      const got = await previewInPage(page, c);
      const want = await engineRun(c, 64, 5);
      const rows = rowsOf(got.rows);
      const finite = new Float64Array(want.indices.length * SPC_OUT_FIELDS);
      want.indices.forEach((i, j) => finite.set(rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS), j * SPC_OUT_FIELDS));
      expect(bits(finite), c.name).toEqual(bits(want.rows));
      expect(got.firings, c.name).toEqual(engineFirings(c, want));
      const opened: Record<string, number> = Object.fromEntries(Object.keys(got.alerts).map((r) => [r, 0]));
      for (const e of want.events) if (e.event === "opened") opened[e.first_rule]++;
      expect(got.alerts, c.name).toEqual(opened);
      expect(got.events, c.name).toEqual(want.events);
      expect(got.skipped.length, c.name).toBe(c.values.length - want.indices.length);
    }
    expect(errors).toEqual([]);
    await page.close();
  });

  it("the page previews the readings, draws them, and its apply sets the limits the engine then uses", async () => {
    const values = plantLike(11, 2000);
    const { page, errors } = await openPage(`/connectors/live/dashboard/what-if.html#token=${TOKEN}`);
    await page.fill('textarea[name="readings"]', values.map(String).join("\n"));
    await page.fill('input[name="key"]', KEY);
    await page.check('input[name="limits"][value="fixed"]');
    await page.fill('input[name="cl"]', "20");
    await page.fill('input[name="sigma"]', "1.1");
    await page.check('input[name="ruleMode"][value="budget"]');
    await page.fill('input[name="faBudget"]', "0.01");
    await page.click("#preview");
    await page.waitForSelector(`body[data-previewed="${values.length}"]`);
    const shown = await page.evaluate(() => {
      const w = (globalThis as unknown as { whatIf: { result: { firings: unknown[]; rows: Float64Array } } }).whatIf;
      const bytes = new Uint8Array(w.result.rows.buffer);
      let s = "";
      for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
      return { firings: w.result.firings, rows: btoa(s) };
    });
    const listed = await page.locator("#firings li").count();
    const c: Case = {
      name: "page",
      values,
      params: { ...P, baselineN: 0 },
      settings: { limits: { cl: 20, sigma: 1.1 }, rules: { faBudget: 0.01 } },
    };
    const want = await engineRun(c, 256, 3);
    expect(bits(rowsOf(shown.rows))).toEqual(bits(want.rows));
    expect(shown.firings).toEqual(engineFirings(c, want));
    expect(shown.firings.length).toBeGreaterThan(20);
    expect(listed).toBe(Math.min(1000, shown.firings.length));
    await page.screenshot({ path: join(OUTPUT, "what-if.png"), fullPage: true });

    // Apply: PUT /api/spc/limits/{key} through the live server into the running engine's key; then the key's readings.
    await page.click("#apply");
    await page.waitForSelector('#status:text-matches("^applied")');
    expect(known.get(KEY)).toMatchObject({ cl: 20, sigma: 1.1 });
    const batch = allocateBatch(values.length);
    values.forEach((v, i) => appendRecord(batch, keyId, i, v, i));
    await engine.push(batch);
    await engine.flush();
    expect(bits(Float64Array.from(engineRows))).toEqual(bits(rowsOf(shown.rows)));
    await page.screenshot({ path: join(OUTPUT, "what-if-applied.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("the page fetches readings from a URL and shows a preview's alerts beside the previous one's", async () => {
    const { page, errors } = await openPage("/connectors/live/dashboard/what-if.html");
    await page.fill('input[name="readingsUrl"]', "/readings.json");
    await page.click("#fetch-readings");
    await page.waitForSelector('#status:text-matches("^600 readings")');
    await page.check('input[name="limits"][value="baseline"]');
    await page.fill('input[name="baselineN"]', "50");
    await page.click("#preview");
    await page.waitForSelector('body[data-previewed="600"]');
    // Every rule on instead of the budget: more alerts, the budget's beside them.
    await page.check('input[name="ruleMode"][value="select"]');
    await page.click("#preview");
    await page.waitForSelector('td[data-kind="alerts, previous preview"]');
    const alerts = await page.evaluate(
      `[...document.querySelectorAll('td[data-kind^="alerts"]')].map((td) => [td.dataset.kind, td.dataset.rule, Number(td.textContent)])`,
    );
    const c: Case = { name: "fetched", values: FETCHED, params: { ...P, baselineN: 50 }, settings: {} };
    const want = await engineRun(c, 64, 1);
    const opened = (rule: string) => want.events.filter((e) => e.event === "opened" && e.first_rule === rule).length;
    for (const [kind, rule, n] of alerts as Array<[string, string, number]>) if (kind === "alerts") expect(n, rule).toBe(opened(rule));
    const total = (kind: string) =>
      (alerts as Array<[string, string, number]>).filter(([k]) => k === kind).reduce((a, [, , n]) => a + n, 0);
    expect(total("alerts")).toBeGreaterThan(total("alerts, previous preview"));
    await page.screenshot({ path: join(OUTPUT, "what-if-compare.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("the page shows a setting the kernel cannot take as an error, not a result", async () => {
    const { page, errors } = await openPage("/connectors/live/dashboard/what-if.html");
    await page.fill('textarea[name="readings"]', "1\n2\n3");
    await page.fill('input[name="n3Run"]', "40");
    await page.click("#preview");
    await page.waitForSelector("#status.error");
    expect(await page.textContent("#status")).toContain("n3Run");
    expect(await page.$("body[data-previewed]")).toBeNull();
    expect(errors).toEqual([]);
    await page.close();
  });
});
