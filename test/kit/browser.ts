/**
 * Debian's `chromium` driven by playwright-core (its own browser download cannot reach its host):
 * whether it is there, a launch, a page that collects every console error, failed request and
 * uncaught exception, and the page's frame rate.
 *
 * Missing chromium: the browser tests skip, loudly (test/kit/ensure-servers.ts installs it when
 * it can); with LINEWATCH_REQUIRE_SERVERS=1 (CI) a missing browser fails instead.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

/** The browser binary: LINEWATCH_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.LINEWATCH_CHROMIUM ?? "/usr/bin/chromium";

export function browserAvailable(): boolean {
  const found = existsSync(CHROMIUM) && spawnSync(CHROMIUM, ["--version"], { stdio: "ignore", timeout: 30_000 }).status === 0;
  if (!found && process.env.LINEWATCH_REQUIRE_SERVERS === "1")
    throw new Error(`${CHROMIUM} is not installed and LINEWATCH_REQUIRE_SERVERS=1: the browser tests must not skip`);
  if (!found) console.error(`\n!!! ${CHROMIUM} is not installed: the browser tests are SKIPPED (apt-get install -y chromium) !!!\n`);
  return found;
}

export async function launchBrowser(): Promise<Browser> {
  // Chromium's sandbox needs user namespaces, which a root CI container usually lacks.
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  return chromium.launch({ executablePath: CHROMIUM, args: root ? ["--no-sandbox"] : [] });
}

/** A page whose problems are collected: console errors and warnings, uncaught exceptions, HTTP answers ≥ 400. */
export async function watchedPage(browser: Browser, width = 1400, height = 900): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width, height } });
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return { page, problems };
}

/** requestAnimationFrame callbacks per second over `ms` of the page's life, and its draw loop's redraws in that time. */
export async function frameRate(page: Page, ms: number): Promise<{ fps: number; drawsPerSecond: number }> {
  // Browser-side code as text: the tests are compiled without the DOM's types.
  return (await page.evaluate(`new Promise((resolve) => {
    const draws0 = window.linewatch.draws.draws;
    let frames = 0;
    const t0 = performance.now();
    const tick = () => {
      frames++;
      const dt = performance.now() - t0;
      if (dt < ${Number(ms)}) requestAnimationFrame(tick);
      else resolve({ fps: (frames * 1000) / dt, drawsPerSecond: ((window.linewatch.draws.draws - draws0) * 1000) / dt });
    };
    requestAnimationFrame(tick);
  })`)) as { fps: number; drawsPerSecond: number };
}
