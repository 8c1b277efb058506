/**
 * The dashboard's quality view (connectors/live/dashboard/quality.ts) in a real browser (Debian's
 * chromium through playwright-core, test/kit/browser.ts, as the other dashboard tests drive it):
 *
 * - `linewatch run` on the simulator with the built-in quality model (`--quality-model builtin`,
 *   4 packaging lines, speed 120: a batch lasts 45–90 s, a prediction every 5 min of event time
 *   is one every 2.5 s): the view shows a panel per line; each running batch's card shows the
 *   predicted yield, defect rate and defect probability per category of one of the batch's
 *   predictions as the API has them (`GET /api/ml/quality/batches/{id}/`, its history), coloured
 *   by the band the engine's own thresholds give (engine/jobs/quality-job.ts qualityLevel); a card
 *   whose batch has an open episode shows the episode and its drivers as the API has them; the
 *   finished batches' table shows each one's predicted and actual yield and the error as the API
 *   has them; a card moves on to a later prediction without a reload; the quality episode is
 *   listed below and can be acknowledged there.
 * - a run without a quality job: the view says so, asking nothing bound to fail.
 *
 * The page refreshes every 3 s, so each comparison re-reads the page and the API until they agree
 * (bounded waits, never asserted as durations). Screenshots: test-output/dashboard/quality.png (an
 * open episode with its drivers), quality-finished.png (once a batch has finished) and quality-off.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUALITY_THRESHOLDS, type QualityBatchView, qualityLevel } from "../engine/jobs/mod.js";
import { browserAvailable, launchBrowser, watchedPage } from "./kit/browser.js";
import { type CliProcess, startCli } from "./kit/cli.js";
import { waitUntil } from "./kit/wait.js";

const OUT = resolve("test-output/dashboard");
const LINES = ["L-001", "L-002", "L-003", "L-004"];
const CATEGORIES = ["packaging", "labelling", "serialization", "other"] as const;
type Level = "ok" | "warning" | "critical";

/** What a user reads on a running batch's card (browser-side reading in cardsScript). */
interface CardSeen {
  batch: string;
  line: string;
  level: string;
  border: string;
  at: string | null;
  yieldText: string | null;
  yieldLevel: string | null;
  yieldColour: string | null;
  defectText: string | null;
  defectLevel: string | null;
  categories: Record<string, string>;
  episode: { id: string; severity: string; drivers: string[][] } | null;
}

// Browser-side code as text: this file is compiled without the DOM's types.
const cardsScript = `[...document.querySelectorAll(".batch-card")].map((c) => {
  const q = (sel) => c.querySelector(sel);
  const e = q(".quality-episode");
  return {
    batch: c.dataset.batch, line: c.dataset.line, level: c.dataset.level, border: getComputedStyle(c).borderLeftColor,
    at: q(".predicted-at")?.dataset.timestamp ?? null,
    yieldText: q(".qv.yield")?.textContent ?? null, yieldLevel: q(".qv.yield")?.dataset.level ?? null,
    yieldColour: q(".qv.yield") ? getComputedStyle(q(".qv.yield")).backgroundColor : null,
    defectText: q(".qv.defect-rate")?.textContent ?? null, defectLevel: q(".qv.defect-rate")?.dataset.level ?? null,
    categories: Object.fromEntries([...c.querySelectorAll(".category")].map((x) => [x.dataset.category, x.textContent])),
    episode: e === null ? null : { id: e.dataset.episode, severity: e.dataset.severity,
      drivers: [...e.querySelectorAll("tr[data-feature]")].map((tr) => [...tr.cells].map((td) => td.textContent)) },
  };
})`;

const finishedScript = `[...document.querySelectorAll("table.finished tbody tr")].map((tr) => ({
  batch: tr.dataset.batch, cells: [...tr.cells].map((td) => td.textContent),
  levels: Object.fromEntries([...tr.querySelectorAll(".qv")].map((x) => [x.classList[1], x.dataset.level])),
}))`;

/** The page's formats (quality-cards.ts), as a user reads them. */
const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
const points = (v: number) => {
  const s = (Math.abs(v) * 100).toFixed(2);
  return `${v < 0 && s !== "0.00" ? "−" : "+"}${s} pp`;
};
const bandOf = (p: { predicted_yield: number; predicted_defect_rate: number; defect_probability: unknown }): Level => {
  const l = qualityLevel(p as Parameters<typeof qualityLevel>[0]);
  return l === null ? "ok" : l.severity === "high" ? "critical" : "warning";
};
const yieldBand = (y: number): Level =>
  y < QUALITY_THRESHOLDS.yieldCritical ? "critical" : y < QUALITY_THRESHOLDS.yieldWarning ? "warning" : "ok";
const defectBand = (d: number): Level =>
  d > QUALITY_THRESHOLDS.defectCritical ? "critical" : d > QUALITY_THRESHOLDS.defectWarning ? "warning" : "ok";

describe.skipIf(!browserAvailable())("dashboard - the quality view in Chromium", () => {
  let dir: string;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "lw-dashboard-quality-"));
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("dashboard - running batches with the API's predictions in the thresholds' colours, an open episode's drivers, finished batches predicted vs actual, the episode acknowledged", async () => {
    const run = startCli(
      [
        ...["run", "--speed", "120", "--machines", "1", "--sensors", "temperature", "--quality-model", "builtin"],
        ...["--port", "0", "--no-file", "--no-serials", "--alerts", join(dir, "alerts.ndjson"), "--summary-interval", "0"],
      ],
      dir,
    );
    try {
      const { page, problems } = await watchedPage(browser);
      const api = await signIn(page, run);
      await page.goto(`${api.origin}/#/quality`);
      expect(await waitUntil(async () => (await page.locator(".quality-line").count()) === LINES.length, 60_000), run.output()).toBe(true);
      expect(await page.locator(".quality-line").evaluateAll((els) => els.map((e) => e.getAttribute("data-line")))).toEqual(LINES);

      const cards = await cardsMatchApi(page, api, run);
      // The page as it was when it agreed with the API, an open episode's drivers on it.
      await page.screenshot({ path: join(OUT, "quality.png"), fullPage: true });
      const withEpisode = cards.find((c) => c.episode !== null) as CardSeen;
      await updatesWithoutReload(page, cards);
      await coloursAreTheBands(page, cards);
      const finished = await finishedMatchApi(page, api);
      await page.screenshot({ path: join(OUT, "quality-finished.png"), fullPage: true });
      await acknowledgeInTable(page, api, withEpisode);
      process.stdout.write(
        `dashboard quality test: ${cards.length} running batches checked against the API, episode ${withEpisode.episode?.id} of ` +
          `${withEpisode.batch} (${withEpisode.episode?.severity}) with drivers ${withEpisode.episode?.drivers.map((d) => d[0]).join(", ")}, ` +
          `${finished} finished batches; screenshot ${join(OUT, "quality.png")}\n`,
      );
      await page.close();
      expect(problems).toEqual([]);
    } finally {
      const code = await run.stop();
      expect(code, run.output()).toBe(0);
    }
  }, 300_000);

  it("dashboard - a run without a quality job: the quality view says so and how to start one, asking nothing bound to fail", async () => {
    const run = startCli(
      [
        "run",
        "--machines",
        "2",
        "--port",
        "0",
        "--no-file",
        "--summary-interval",
        "0",
        "--no-serials",
        "--no-predict",
        "--no-quality-model",
      ],
      dir,
    );
    try {
      const { page, problems } = await watchedPage(browser);
      const api = await signIn(page, run);
      await page.goto(`${api.origin}/#/quality`);
      const note = page.locator("section.quality > p.muted").first();
      expect(await waitUntil(async () => /no quality job/.test((await note.textContent()) ?? ""), 30_000)).toBe(true);
      expect(await note.textContent()).toMatch(/^This run has no quality job: start it with --quality-model/);
      expect(await page.locator(".batch-card").count()).toBe(0);
      await page.screenshot({ path: join(OUT, "quality-off.png") });
      await page.close();
      expect(problems).toEqual([]);
    } finally {
      const code = await run.stop();
      expect(code, run.output()).toBe(0);
    }
  }, 120_000);
});

interface Api {
  origin: string;
  get<T>(path: string): Promise<T>;
}

/** Opens the run's dashboard and signs in through the login form with the token the run printed. */
async function signIn(page: Page, run: CliProcess): Promise<Api> {
  const printed = await waitUntil(() => /linewatch run: dashboard (\S+)/.test(run.output()), 60_000);
  expect(printed, run.output()).toBe(true);
  const url = new URL((/linewatch run: dashboard (\S+)/.exec(run.output()) as RegExpExecArray)[1]);
  const token = new URLSearchParams(url.hash.slice(1)).get("token") as string;
  await page.goto(`${url.origin}/`);
  await page.locator("#login").waitFor({ state: "visible" });
  await page.fill("#login-token", token);
  await page.click('#login button[type="submit"]');
  await page.locator("#nav").waitFor({ state: "visible" });
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${url.origin}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  return { origin: url.origin, get };
}

/**
 * Re-reads the running batches' cards and the API until they agree and one card shows an open
 * episode; the cards of that reading.
 */
async function cardsMatchApi(page: Page, api: Api, run: CliProcess): Promise<CardSeen[]> {
  let cards: CardSeen[] = [];
  let mismatches: string[] = ["not read yet"];
  const agreed = await waitUntil(async () => {
    cards = (await page.evaluate(cardsScript)) as CardSeen[];
    mismatches = [];
    for (const c of cards) mismatches.push(...cardMismatches(c, await api.get<QualityBatchView>(`/api/ml/quality/batches/${c.batch}/`)));
    return cards.length > 0 && cards.some((c) => c.episode !== null) && mismatches.length === 0;
  }, 150_000);
  expect(mismatches, run.output()).toEqual([]);
  expect(agreed, `no open episode shown: ${JSON.stringify(cards)}`).toBe(true);
  return cards;
}

/** How a card differs from its batch in the API (empty when it shows one of its predictions as the API has it). */
function cardMismatches(c: CardSeen, b: QualityBatchView): string[] {
  // A batch just started and not scored yet says so (its first prediction comes at the quality interval).
  if (c.at === null)
    return c.level === "unscored" && c.yieldText === null ? [] : [`${c.batch}: no prediction time but ${JSON.stringify(c)}`];
  const p = b.history.find((x) => String(x.timestamp) === c.at);
  if (p === undefined) return [`${c.batch}: no prediction at ${c.at} in the API's history`];
  const expected = {
    line: b.line_id,
    level: bandOf(p),
    yieldText: pct(p.predicted_yield),
    yieldLevel: yieldBand(p.predicted_yield),
    defectText: pct(p.predicted_defect_rate),
    defectLevel: defectBand(p.predicted_defect_rate),
    categories: Object.fromEntries(CATEGORIES.map((k) => [k, `${k} ${pct(p.defect_probability[k])}`])),
  };
  const seen = {
    line: c.line,
    level: c.level,
    yieldText: c.yieldText,
    yieldLevel: c.yieldLevel,
    defectText: c.defectText,
    defectLevel: c.defectLevel,
    categories: c.categories,
  };
  const out =
    JSON.stringify(seen) === JSON.stringify(expected) ? [] : [`${c.batch}: saw ${JSON.stringify(seen)}, API ${JSON.stringify(expected)}`];
  return [...out, ...episodeMismatches(c, b)];
}

function episodeMismatches(c: CardSeen, b: QualityBatchView): string[] {
  if (c.episode === null) return [];
  const e = b.episode;
  if (e === null || e.episode_id !== c.episode.id || e.closed_at !== null)
    return [`${c.batch}: episode ${c.episode.id} is not open in the API`];
  const drivers = (JSON.parse(e.fields.drivers ?? "[]") as Array<Record<string, number | string>>).map((d) => [
    String(d.feature),
    (d.value as number).toFixed(3),
    (d.training_mean as number).toFixed(3),
    points(d.delta_yield as number),
    points(d.delta_defect_rate as number),
  ]);
  const expected = JSON.stringify({ severity: e.severity, drivers });
  const seen = JSON.stringify({ severity: c.episode.severity, drivers: c.episode.drivers });
  if (drivers.length === 0) return [`${c.batch}: the API's episode has no drivers`];
  return seen === expected ? [] : [`${c.batch}: episode saw ${seen}, API ${expected}`];
}

/** Live: without a reload, a batch's card moves on to a later prediction (the page polls the API). */
async function updatesWithoutReload(page: Page, before: readonly CardSeen[]): Promise<void> {
  const was = new Map(before.filter((c) => c.at !== null).map((c) => [c.batch, Number(c.at)]));
  const moved = await waitUntil(async () => {
    const now = (await page.evaluate(cardsScript)) as CardSeen[];
    return now.some((c) => c.at !== null && Number(c.at) > (was.get(c.batch) ?? Number.POSITIVE_INFINITY));
  }, 60_000);
  expect(moved, "no card moved on to a later prediction").toBe(true);
}

/** Each card's border and yield figure are its band's colour; the three bands' colours differ; some card or row is past a threshold. */
async function coloursAreTheBands(page: Page, cards: readonly CardSeen[]): Promise<void> {
  const colour = async (cls: string, property: string): Promise<string> =>
    (await page.evaluate(
      `(() => { const p = document.createElement("div"); p.className = "${cls}"; document.body.append(p); ` +
        `const c = getComputedStyle(p).${property}; p.remove(); return c; })()`,
    )) as string;
  const levels: Level[] = ["ok", "warning", "critical"];
  const borders = await Promise.all(levels.map((l) => colour(`batch-card level-${l}`, "borderLeftColor")));
  const fills = await Promise.all(levels.map((l) => colour(`qv level-${l}`, "backgroundColor")));
  expect(new Set(borders).size).toBe(3);
  expect(new Set(fills).size).toBe(3);
  for (const c of cards.filter((x) => x.at !== null)) {
    expect(c.border, c.batch).toBe(borders[levels.indexOf(c.level as Level)]);
    expect(c.yieldColour, c.batch).toBe(fills[levels.indexOf(c.yieldLevel as Level)]);
  }
  await someValuePastAThreshold(page, (l) => fills[levels.indexOf(l)]);
}

/** An episode opened at a warning, so some prediction shown (a card or a finished batch) is past one, in its band's fill: waits for it. */
async function someValuePastAThreshold(page: Page, fillOf: (level: Level) => string): Promise<void> {
  const past = ['[data-level="warning"]', '[data-level="critical"]']
    .flatMap((l) => [`.batch-card .qv${l}`, `table.finished .qv${l}`])
    .join(", ");
  let seen: { level: Level; fill: string } | null = null;
  const found = await waitUntil(async () => {
    seen = (await page.evaluate(
      `(() => { const e = document.querySelector('${past}'); return e === null ? null : { level: e.dataset.level, fill: getComputedStyle(e).backgroundColor }; })()`,
    )) as { level: Level; fill: string } | null;
    return seen !== null;
  }, 60_000);
  expect(found).toBe(true);
  const s = seen as unknown as { level: Level; fill: string };
  expect(s.fill).toBe(fillOf(s.level));
}

/** The finished batches' rows show the API's outcome and final prediction; returns how many rows. */
async function finishedMatchApi(page: Page, api: Api): Promise<number> {
  expect(await waitUntil(async () => (await page.locator("table.finished tbody tr").count()) > 0, 90_000)).toBe(true);
  const rows = (await page.evaluate(finishedScript)) as Array<{ batch: string; cells: string[]; levels: Record<string, string> }>;
  const list = await api.get<{ results: QualityBatchView[] }>("/api/ml/quality/batches/?status=completed");
  const byId = new Map(list.results.map((b) => [b.batch_id, b]));
  for (const r of rows) {
    const o = byId.get(r.batch)?.outcome;
    expect(o, r.batch).toBeTruthy();
    if (o === undefined || o === null || o.predicted_yield === null || o.yield_error === null) continue;
    // batch, line, work order, ended, units, predicted yield, actual yield, error, predicted defect rate, actual defect rate, episode
    expect([r.cells[0], r.cells[1], r.cells[4], r.cells[5], r.cells[6], r.cells[7], r.cells[9]]).toEqual([
      o.batch_id,
      o.line_id,
      String(o.units_produced),
      pct(o.predicted_yield),
      pct(o.first_pass_yield),
      points(o.yield_error),
      pct(o.defect_rate),
    ]);
    expect(r.levels["actual-yield"]).toBe(yieldBand(o.first_pass_yield));
    expect(r.levels["predicted-yield"]).toBe(yieldBand(o.predicted_yield));
  }
  expect(Number(await page.locator(".yield-chart").getAttribute("data-points"))).toBeGreaterThanOrEqual(rows.length);
  expect(await page.locator(".yield-chart canvas").count()).toBeGreaterThan(0);
  return rows.length;
}

/** The card's episode is listed among the quality episodes; its Acknowledge button acknowledges it (as the API then says). */
async function acknowledgeInTable(page: Page, api: Api, card: CardSeen): Promise<void> {
  const id = card.episode?.id as string;
  const row = page.locator(`table.quality-episodes tr[data-alert="${id}"]`);
  expect(await waitUntil(async () => (await row.count()) === 1, 30_000)).toBe(true);
  expect(await row.locator("td").nth(0).textContent()).toBe(card.line);
  expect(await row.locator("td").nth(1).textContent()).toBe(card.batch);
  await row.locator("button.ack").click();
  const acked = async () => {
    const r = await api.get<{ results: Array<{ episode_id: string; acknowledged_at: unknown }> }>(
      "/api/alerts/episodes?family=quality&state=all",
    );
    return r.results.some((e) => e.episode_id === id && e.acknowledged_at !== null && e.acknowledged_at !== undefined);
  };
  expect(await waitUntil(acked, 30_000)).toBe(true);
  expect(await waitUntil(async () => (await row.locator("button.ack").count()) === 0, 30_000)).toBe(true);
}
