/**
 * The dashboard's models view (connectors/live/dashboard/models.ts) in a real browser (Debian's
 * chromium through playwright-core, test/kit/browser.ts, as test/dashboard-browser.test.ts drives it):
 *
 * - `linewatch run` replaying C-MAPSS FD001 unit after unit with the prediction model of the
 *   prediction tests, a drift window of 500 predictions and s11 moved by +3 (11σ) from the first
 *   cycle (test/model-drift-run.test.ts's API run): the view shows the model's card, a bar for each
 *   of its 28 features, highest PSI first, s11.mean at major, the open model_drift episode, and its
 *   link opens the alerts view on that episode. At --speed 360000 (100 cycles/s: the file lasts
 *   about 3.5 min, the window fills in 5 s), so the page sees the run before it ends; stopped once seen.
 * - `--predict registry` (a directory registry) and a promotion mid-run: the new model's card in
 *   use and first, the old one's swapped out; a card opens its model's drift panel.
 * - a plain simulator run (no --predict): the view says the run has no model and how to start one,
 *   and the page asks nothing bound to fail.
 *
 * Screenshots: test-output/dashboard/models.png, models-swapped.png and models-no-model.png. Waits are bounded
 * (waitUntil), never asserted as durations.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { type Actor, DirectoryStore, ModelRegistry } from "../connectors/registry/mod.js";
import { browserAvailable, launchBrowser, watchedPage } from "./kit/browser.js";
import { type CliProcess, startCli } from "./kit/cli.js";
import { testModelBytes } from "./kit/prediction-model.js";
import { registryTestModels } from "./kit/registry-models.js";
import { waitUntil } from "./kit/wait.js";

const OUT = resolve("test-output/dashboard");
const FILE = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const ACTOR: Actor = { command: "linewatch models (dashboard test)", user: "tester", host: "test-host" };
/** The test model's inputs: mean and slope of FD001's 14 informative sensors. */
const FEATURES = 28;

describe.skipIf(!browserAvailable())("dashboard - the models view in Chromium", () => {
  let dir: string;
  let model: string;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "lw-dashboard-models-"));
    model = join(dir, "model.onnx");
    writeFileSync(model, testModelBytes(readCmapss(FILE)));
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("dashboard - a shifted C-MAPSS replay: the model's card, a PSI bar per feature highest first, s11.mean major, the open episode linked to the alerts view", async () => {
    const run = startCli(
      [
        "run",
        "--cmapss",
        FILE,
        "--cmapss-order",
        "unit",
        "--cycle",
        "1h",
        "--speed",
        "360000",
        "--predict",
        model,
        "--analysis",
        "rolling",
        "--drift-window",
        "500",
        "--cmapss-shift",
        "s11:+3@1",
        "--port",
        "0",
        "--no-file",
        "--alerts",
        join(dir, "alerts.ndjson"),
        "--summary-interval",
        "0",
        "--no-serials",
      ],
      dir,
    );
    try {
      const { page, problems } = await watchedPage(browser);
      await signIn(page, run);
      await page.goto(`${new URL(page.url()).origin}/#/models`);
      const card = page.locator(".model-card");
      const s11 = page.locator('.psi-row[data-feature="s11.mean"]');
      const seen = await waitUntil(
        async () => (await page.locator(".psi-row").count()) === FEATURES && (await s11.getAttribute("data-level")) === "major",
        90_000,
      );
      expect(seen, `${await page.locator("#view").textContent()}\n${run.output()}`).toBe(true);

      expect(await card.count()).toBe(1);
      expect(await card.getAttribute("data-version")).toMatch(/^rul-mlp-[0-9a-f]{12}$/);
      expect(await card.getAttribute("data-level")).toBe("major");
      expect(await card.textContent()).toContain("in use");
      // One bar per feature, each named once, highest PSI first; the shifted sensor's mean on top.
      // One snapshot of the bars (the page redraws every 3 s): name, PSI and geometry together.
      const bars = (await page.evaluate(`[...document.querySelectorAll(".psi-row")].map((row) => {
        const track = row.querySelector(".track").getBoundingClientRect();
        const at = (sel) => row.querySelector(sel).getBoundingClientRect();
        return { name: row.dataset.feature, psi: Number(row.dataset.psi), width: track.width, fill: at(".fill").width,
          moderate: at(".tick.moderate").x - track.x, major: at(".tick.major").x - track.x };
      })`)) as Array<{ name: string; psi: number; width: number; fill: number; moderate: number; major: number }>;
      expect(new Set(bars.map((b) => b.name)).size).toBe(FEATURES);
      expect(bars.map((b) => b.psi)).toEqual([...bars.map((b) => b.psi)].sort((a, b) => b - a));
      expect(bars[0].name).toBe("s11.mean");
      // Drawn to scale: on the square-root axis up to max(top PSI, 2 × major), a bar's length is
      // √(psi / max) of its track, the lines at √(0.1 / max) and √(0.25 / max) (within a pixel).
      const axis = Math.max(bars[0].psi, 0.5);
      for (const b of bars) {
        expect(Math.abs(b.fill - Math.sqrt(b.psi / axis) * b.width), b.name).toBeLessThan(1);
        expect(Math.abs(b.moderate - Math.sqrt(0.1 / axis) * b.width)).toBeLessThan(1);
        expect(Math.abs(b.major - Math.sqrt(0.25 / axis) * b.width)).toBeLessThan(1);
      }

      const episode = page.locator(".drift-panel .episode");
      expect(await waitUntil(async () => (await episode.count()) === 1, 30_000), run.output()).toBe(true);
      expect(await episode.textContent()).toContain("s11.mean");
      await page.screenshot({ path: join(OUT, "models.png"), fullPage: true });
      process.stdout.write(
        `dashboard models test: ${bars.length} bars, top ${bars
          .slice(0, 3)
          .map((b) => `${b.name} ${b.psi.toFixed(3)}`)
          .join(", ")}; screenshot ${join(OUT, "models.png")}\n`,
      );

      // The episode's link: the alerts view filtered to the model, the model_drift episode listed.
      await episode.locator("a").click();
      const row = page.locator('tr[data-machine="model:rul"]');
      expect(await waitUntil(async () => (await row.count()) > 0, 30_000)).toBe(true);
      expect(await page.locator('select[name="machine"]').inputValue()).toBe("model:rul");
      expect(await row.first().textContent()).toContain("model_drift");
      await page.close();
      expect(problems).toEqual([]);
    } finally {
      const code = await run.stop();
      expect(code, run.output()).toBe(0);
    }
  }, 240_000);

  it("dashboard - a promotion mid-run (--predict registry): the new model in use, the old one's card swapped out, a card opens its drift", async () => {
    const models = registryTestModels();
    const registry = new ModelRegistry(new DirectoryStore(join(dir, "registry")), ACTOR);
    const a = (await registry.push({ bytes: models.rulA, kind: "rul", fileName: "a.onnx" })).entry;
    const b = (await registry.push({ bytes: models.rulB, kind: "rul", fileName: "b.onnx" })).entry;
    await registry.promote(a.id, "production");
    const version = (id: string) => `rul-mlp-${id.slice(0, 12)}`;
    const run = startCli(
      [
        ...["run", "--cmapss", FILE, "--cmapss-order", "unit", "--cycle", "1h", "--speed", "360000", "--analysis", "rolling"],
        ...["--predict", "registry", "--registry", join(dir, "registry"), "--registry-poll", "200ms", "--drift-window", "500"],
        ...["--port", "0", "--no-file", "--alerts", join(dir, "registry-alerts.ndjson"), "--summary-interval", "0", "--no-serials"],
      ],
      dir,
    );
    try {
      const { page, problems } = await watchedPage(browser);
      await signIn(page, run);
      await page.goto(`${new URL(page.url()).origin}/#/models`);
      const cardOf = (id: string) => page.locator(`.model-card[data-version="${version(id)}"]`);
      expect(await waitUntil(async () => (await cardOf(a.id).getAttribute("data-in-use")) === "true", 60_000), run.output()).toBe(true);
      await registry.promote(b.id, "production");
      const swapped = await waitUntil(
        async () =>
          (await cardOf(b.id).getAttribute("data-in-use")) === "true" && (await cardOf(a.id).getAttribute("data-in-use")) === "false",
        60_000,
      );
      expect(swapped, run.output()).toBe(true);
      // The model in use first, its drift in the panel; the swapped-out card opens the old model's.
      expect(await page.locator(".model-card").evaluateAll((els) => els.map((e) => e.getAttribute("data-version")))).toEqual([
        version(b.id),
        version(a.id),
      ]);
      expect(await cardOf(a.id).textContent()).toContain("swapped out");
      expect(await page.locator(".drift-panel").getAttribute("data-version")).toBe(version(b.id));
      await cardOf(a.id).click();
      expect(await waitUntil(async () => (await page.locator(".drift-panel").getAttribute("data-version")) === version(a.id), 10_000)).toBe(
        true,
      );
      expect(await page.locator(".psi-row").count()).toBe(FEATURES);
      await page.screenshot({ path: join(OUT, "models-swapped.png"), fullPage: true });
      await page.close();
      expect(problems).toEqual([]);
    } finally {
      await registry.close();
      const code = await run.stop();
      expect(code, run.output()).toBe(0);
    }
  }, 240_000);

  it("dashboard - a run without a model: the models view says so and how to start one, asking nothing bound to fail", async () => {
    const run = startCli(
      ["run", "--machines", "2", "--port", "0", "--no-file", "--summary-interval", "0", "--no-serials", "--no-predict"],
      dir,
    );
    try {
      const { page, problems } = await watchedPage(browser);
      await signIn(page, run);
      await page.goto(`${new URL(page.url()).origin}/#/models`);
      const message = page.locator(".no-model");
      await message.waitFor({ timeout: 30_000 });
      expect(await message.textContent()).toMatch(/^This run has no model: start it with --predict <model file>/);
      expect(await page.locator(".model-card").count()).toBe(0);
      await page.screenshot({ path: join(OUT, "models-no-model.png") });
      await page.close();
      expect(problems).toEqual([]);
    } finally {
      const code = await run.stop();
      expect(code, run.output()).toBe(0);
    }
  }, 120_000);
});

/** Opens the run's dashboard and signs in with the token it printed, through the login form. */
async function signIn(page: Page, run: CliProcess): Promise<void> {
  const printed = await waitUntil(() => /linewatch run: dashboard (\S+)/.test(run.output()), 60_000);
  expect(printed, run.output()).toBe(true);
  const url = new URL((/linewatch run: dashboard (\S+)/.exec(run.output()) as RegExpExecArray)[1]);
  await page.goto(`${url.origin}/`);
  await page.locator("#login").waitFor({ state: "visible" });
  await page.fill("#login-token", new URLSearchParams(url.hash.slice(1)).get("token") as string);
  await page.click('#login button[type="submit"]');
  await page.locator("#nav").waitFor({ state: "visible" });
}
