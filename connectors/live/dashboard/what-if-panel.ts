/**
 * The machine view's what-if panel (`#limits-editor`): a quality engineer tries limits and rules on
 * one sensor's key over the readings its chart holds, sees which alarms would have fired beside
 * what the run actually fired, and applies the limits through the API's limit lifecycle.
 *
 * The readings are the key's sensor's chart window. When the run keys its charts by operating mode
 * (`run`'s default: `<machine>/<sensor>/<mode>`), that window holds the sensor's readings in every
 * mode — the score frames carry no mode — so the preview runs the chosen key's trial settings over
 * all of them.
 *
 * The preview is the engine's own code: spc-preview.ts runs the SPC kernel (build/spc-web.wasm)
 * with the engine's masking and alert tracker, equal to the engine bit for bit
 * (test/spc-preview*.test.ts). It is loaded at run time from the live server (/assets/www/, see
 * preview-types.ts for why by URL), once per page.
 *
 * Trial limits are CL and σ from the first reading (params.baselineN = 0), or a baseline over the
 * first N readings; Apply sends them as PUT /api/spc/limits/{key} {cl, sigma} or POST
 * …/rebaseline {records: N}, then follows GET /api/spc/limits/{key} until the key's limits
 * version moves (the engine takes a change at the key's next record; a re-baseline when N more
 * records are in). The rule and chart settings are the preview's: the run keeps its own.
 */
import { ApiError, getJson, postJson, putJson } from "./api.js";
import {
  PREVIEW_MODULE_URL,
  type PreviewModule,
  SPC_FACE_URL,
  type SpcFace,
  type TrialInput,
  type TrialParams,
  type TrialResult,
  type TrialRules,
} from "./preview-types.js";
import type UPlot from "uplot";
import { checkedRuleMasks } from "./rule-masks.js";
import { finiteRange, type SensorChart } from "./sensor-chart.js";
import { fillTable, h, table } from "./view.js";

/** What the panel showed last: for the browser test (window.linewatch.view().whatIf.state) to read. */
export interface WhatIfState {
  input: TrialInput | null;
  result: TrialResult | null;
  /** Per alert rule: readings of the same window at which the run's rows fired it. */
  actual: Record<string, number> | null;
  /** The key's limits version as last read from the API (null: none yet). */
  limitsVersion: number | null;
}

const WE_RULES = [1, 2, 3, 4];
const NELSON_RULES = [2, 3, 4, 7, 8];
/** The moving-range rules, bit r − 1 of mr_mask (operators/spc/layout.ts MR_RULES). */
const MR_RULE_NAMES = ["JUMP", "NOISY", "STUCK"];
const NUMBER_PARAMS = [
  "cusumK",
  "cusumH",
  "ewmaLambda",
  "ewmaL",
  "we4Run",
  "n2Run",
  "n3Run",
  "n4Run",
  "n7Run",
  "n8Run",
  "jumpLimit",
  "noisyRun",
  "stuckRun",
] as const;
/** How long Apply follows the key's limits version, and how often it asks. */
const VERSION_WAIT_MS = 60_000;
const VERSION_POLL_MS = 1000;

let modules: Promise<{ preview: PreviewModule; face: SpcFace }> | undefined;

/** The preview module and operators/spc's face, imported once per page (a failed load is tried again next time). */
function loadModules(): Promise<{ preview: PreviewModule; face: SpcFace }> {
  // URLs in variables: the dashboard's build does not resolve them (they are served, not compiled here).
  const urls = [PREVIEW_MODULE_URL, SPC_FACE_URL];
  modules ??= Promise.all(urls.map((u) => import(u))).then(
    ([preview, face]) => ({ preview: preview as PreviewModule, face: face as SpcFace }),
    (e: unknown) => {
      modules = undefined;
      throw e;
    },
  );
  return modules;
}

export class WhatIfPanel {
  readonly state: WhatIfState = { input: null, result: null, actual: null, limitsVersion: null };
  private readonly form: HTMLFormElement;
  private readonly status = h("p", "status-line");
  private readonly chartBox = h("div", "chart what-if-chart");
  private readonly counts = table(["rule", "would fire (readings)", "would open (alerts)", "fired in the window (readings)"]);
  private plot: UPlot | null = null;
  /** The y range over finite values only (rows before limits exist are NaN; uPlot's own range would be NaN). */
  private yRange: [number, number] = [0, 1];
  private stopped = false;

  constructor(
    readonly el: HTMLElement,
    private readonly machine: string,
    private readonly chartOf: (sensor: string) => SensorChart | undefined,
  ) {
    this.form = whatIfForm();
    this.counts.table.classList.add("what-if-counts");
    el.append(
      h("h2", "", "What-if: limits and rules"),
      h("p", "muted", "Try limits and rules on a sensor over the readings its chart holds; the SPC kernel runs here, as in the engine."),
      this.form,
      this.status,
      this.chartBox,
      this.counts.table,
    );
    this.form.addEventListener("submit", (e) => e.preventDefault());
    this.button("preview").onclick = () => void this.preview();
    this.button("apply").onclick = () => void this.apply();
    this.select("key").onchange = () => void this.loadLimits();
    void this.prefill();
  }

  /** The chart parameters and run lengths at the engine's defaults (operators/spc DEFAULT_SPC_PARAMS). */
  private async prefill(): Promise<void> {
    try {
      const d = (await loadModules()).face.DEFAULT_SPC_PARAMS;
      for (const p of [...NUMBER_PARAMS, "baselineN"] as const) this.input(p).value = String(d[p]);
      this.select("sigmaMethod").value = d.sigmaMethod;
    } catch (e) {
      this.say(`what-if preview not available: ${e instanceof Error ? e.message : String(e)}`, true);
    }
  }

  /** The machine's keys (GET /api/plant), as the key choices; a key's limits are loaded when it is chosen. */
  sync(keys: readonly string[]): void {
    const select = this.select("key");
    for (const k of keys) if (![...select.options].some((o) => o.value === k)) select.add(new Option(k, k));
  }

  stop(): void {
    this.stopped = true;
    this.plot?.destroy();
  }

  /** The chosen key (`<machine>/<sensor>` or `<machine>/<sensor>/<mode>`, as the API names it). */
  key(): string {
    return this.select("key").value;
  }

  /** The chosen key's sensor: its chart's readings are the preview's. */
  private sensor(): string {
    return this.key()
      .slice(this.machine.length + 1)
      .split("/")[0];
  }

  /** GET /api/spc/limits/{key}: its CL and σ into the trial limits, its version shown. */
  async loadLimits(): Promise<void> {
    if (this.key() === "") return;
    try {
      const l = await getJson<{ cl: number | null; sigma: number | null; limits_version: number }>(this.limitsPath());
      if (typeof l.cl === "number") this.input("cl").value = String(l.cl);
      if (typeof l.sigma === "number") this.input("sigma").value = String(l.sigma);
      this.showVersion(l.limits_version);
      this.say(`${this.key()}: limits version ${l.limits_version}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) this.say(`${this.key()}: no limits yet (its baseline is not complete)`);
      else this.say(String(e), true);
    }
  }

  /** Runs the preview over the chart's window with the form's settings; draws it and counts it beside what fired. */
  async preview(): Promise<void> {
    if (this.key() === "") return this.say("choose a key", true);
    const chart = this.chartOf(this.sensor());
    if (chart === undefined) return this.say(`no chart for ${this.sensor()} yet`, true);
    try {
      const { preview, face } = await loadModules();
      const shot = chart.snapshot();
      const input = this.readInput(face.DEFAULT_SPC_PARAMS, shot.times, shot.values);
      const result = await preview.previewSpc(input);
      if (this.stopped) return;
      const actual = actualCounts(face, shot.alarms, input.values.length);
      Object.assign(this.state, { input, result, actual });
      this.draw(face, input, result, shot.alarms);
      this.showCounts(result, actual);
      const skipped = result.skipped.length > 0 ? `, ${result.skipped.length} not finite (skipped)` : "";
      this.say(`${input.values.length} readings of ${this.key()}${skipped}: ${result.firings.length} would fire`);
      this.el.dataset.previewed = String(input.values.length);
    } catch (e) {
      this.say(e instanceof Error ? e.message : String(e), true);
    }
  }

  /** Applies the trial limits to the key (PUT, or POST …/rebaseline) and follows its limits version until it moves. */
  async apply(): Promise<void> {
    if (this.key() === "") return this.say("choose a key", true);
    try {
      const before = this.state.limitsVersion ?? 0;
      if (this.field("mode") === "fixed") {
        await putJson(this.limitsPath(), { cl: this.number("cl"), sigma: this.number("sigma") });
      } else {
        await postJson(`${this.limitsPath()}/rebaseline`, { records: this.number("baselineN") });
      }
      this.say(`applied to ${this.key()}; the engine takes it at the key's next records (limits version ${before} now)`);
      const t0 = performance.now();
      while (!this.stopped && performance.now() - t0 < VERSION_WAIT_MS) {
        await new Promise((r) => setTimeout(r, VERSION_POLL_MS));
        const l = await getJson<{ limits_version: number }>(this.limitsPath()).catch(() => null);
        if (l !== null && l.limits_version > before) {
          this.showVersion(l.limits_version);
          return this.say(`applied to ${this.key()}: limits version ${l.limits_version}`);
        }
      }
    } catch (e) {
      this.say(e instanceof Error ? e.message : String(e), true);
    }
  }

  private readInput(defaults: Readonly<TrialParams>, times: Float64Array, values: Float64Array): TrialInput {
    const params: TrialParams = { ...defaults, sigmaMethod: this.field("sigmaMethod") === "std" ? "std" : "mr" };
    for (const p of NUMBER_PARAMS) params[p] = this.number(p);
    const fixed = this.field("mode") === "fixed";
    params.baselineN = fixed ? 0 : this.number("baselineN");
    const rules: TrialRules = this.field("ruleMode") === "budget" ? { faBudget: this.number("faBudget") } : this.selectedRules();
    const limits = fixed ? { cl: this.number("cl"), sigma: this.number("sigma") } : undefined;
    return { key: this.key(), times, values, params, limits, rules };
  }

  /** The checked rules as masks (rule-masks.ts). */
  private selectedRules(): TrialRules {
    return checkedRuleMasks(this.checked("we"), this.checked("nelson"), this.checked("mr"));
  }

  /** The window: the readings, the trial CL/UCL/LCL at each, the readings that would fire and those that fired. */
  private draw(face: SpcFace, input: TrialInput, result: TrialResult, alarms: ReadonlyMap<string, Float64Array>): void {
    const n = input.values.length;
    const F = face.SPC_OUT_FIELDS;
    const col = (c: number) => Float64Array.from({ length: n }, (_, i) => result.rows[i * F + c]);
    const would = new Float64Array(n).fill(Number.NaN);
    for (const f of result.firings) would[f.index] = f.value;
    const fired = new Float64Array(n).fill(Number.NaN);
    for (const c of face.alertConditions(ANY_WINDOWS)) {
      const a = alarms.get(face.SPC_FIELDS[c.column]);
      if (a !== undefined) for (let i = 0; i < n; i++) if (fires(a[i], c.bit)) fired[i] = input.values[i];
    }
    const data = [input.times, input.values, col(face.SPC_COL.cl), col(face.SPC_COL.ucl), col(face.SPC_COL.lcl), would, fired];
    this.yRange = finiteRange(data.slice(1, 5));
    if (this.plot === null)
      this.plot = new uPlot(
        previewChartOptions(this.chartBox, () => this.yRange),
        [[]],
        this.chartBox,
      );
    this.plot.setData(data as unknown as UPlot.AlignedData);
  }

  private showCounts(result: TrialResult, actual: Readonly<Record<string, number>>): void {
    fillTable(
      this.counts.body,
      Object.keys(result.counts).map((rule) => [
        rule,
        String(result.counts[rule]),
        String(result.alerts[rule] ?? 0),
        String(actual[rule] ?? 0),
      ]),
    );
    for (const [i, tr] of [...this.counts.body.rows].entries()) tr.dataset.rule = Object.keys(result.counts)[i];
  }

  private showVersion(v: number): void {
    this.state.limitsVersion = v;
    this.el.dataset.limitsVersion = String(v);
  }

  private limitsPath(): string {
    return `/api/spc/limits/${encodeURIComponent(this.key())}`;
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.className = error ? "status-line error" : "status-line";
  }

  private element(name: string): Element {
    return this.form.elements.namedItem(name) as Element;
  }

  private input(name: string): HTMLInputElement {
    return this.element(name) as HTMLInputElement;
  }

  private select(name: string): HTMLSelectElement {
    return this.element(name) as HTMLSelectElement;
  }

  private button(act: string): HTMLButtonElement {
    return this.form.querySelector(`button[data-act="${act}"]`) as HTMLButtonElement;
  }

  /** A field's value (an input, a select, or the checked radio of a group). */
  private field(name: string): string {
    return (this.element(name) as unknown as { value: string }).value.trim();
  }

  private number(name: string): number {
    return Number(this.field(name));
  }

  private checked(name: string): number[] {
    return [...this.form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)].map((e) => Number(e.value));
  }
}

/** Run lengths for alertConditions when only names, columns and bits are read. */
const ANY_WINDOWS = { we: [1, 1, 1, 1], nelson: [1, 1, 1, 1, 1, 1, 1, 1], mr: [2, 2, 2] };

/** The alert tracker's test of a row value: a 0/1 flag column (bit 0), or a bit of a finite mask. */
function fires(v: number, bit: number): boolean {
  return bit === 0 ? v === 1 : Number.isFinite(v) && (v & bit) !== 0;
}

/** Per alert rule: readings of the window at which the run's rows (the chart's alarm columns) fired it. */
function actualCounts(face: SpcFace, alarms: ReadonlyMap<string, Float64Array>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of face.alertConditions(ANY_WINDOWS)) {
    const a = alarms.get(face.SPC_FIELDS[c.column]);
    let k = 0;
    if (a !== undefined) for (let i = 0; i < n; i++) if (fires(a[i], c.bit)) k++;
    out[c.name] = k;
  }
  return out;
}

function previewChartOptions(box: HTMLElement, yRange: () => [number, number]): UPlot.Options {
  const line = (label: string, stroke: string, dash?: number[]): UPlot.Series => ({
    label,
    stroke,
    width: 1,
    dash,
    points: { show: false },
  });
  const dots = (label: string, stroke: string, size: number, fill: string): UPlot.Series => ({
    label,
    stroke,
    paths: () => null,
    points: { show: true, size, fill, stroke },
  });
  return {
    width: Math.max(400, Math.min(1100, box.parentElement?.clientWidth ?? 900) - 20),
    height: 220,
    ms: 1,
    scales: { x: { time: true }, y: { range: yRange } },
    series: [
      {},
      line("value", "#1f77b4"),
      line("trial CL", "#2e7d32", [5, 4]),
      line("trial UCL", "#c62828"),
      line("trial LCL", "#c62828"),
      dots("would fire", "#c62828", 9, "rgba(198,40,40,0.15)"),
      dots("fired", "#1d2330", 4, "#1d2330"),
    ],
  };
}

/** The panel's form: the key's sensor, trial limits, the rules, the chart parameters and run lengths. */
function whatIfForm(): HTMLFormElement {
  const form = h("form", "what-if");
  form.id = "what-if";
  form.autocomplete = "off";
  const num = (name: string, label: string, value: string) =>
    `<label>${label} <input name="${name}" type="number" step="any" value="${value}"></label>`;
  const box = (group: string, r: number, label: string) =>
    `<label><input type="checkbox" name="${group}" value="${r}" checked>${label}</label>`;
  form.innerHTML = `
    <fieldset><legend>Key</legend><label>Key <select name="key"><option value="">choose a key</option></select></label></fieldset>
    <fieldset><legend>Limits</legend>
      <label><input type="radio" name="mode" value="fixed" checked> trial CL and σ</label>
      ${num("cl", "CL", "0")} ${num("sigma", "σ", "1")}
      <label><input type="radio" name="mode" value="baseline"> re-baseline over N readings</label>
      ${num("baselineN", "N", "")}
      <label>σ from <select name="sigmaMethod"><option value="mr">moving range / d2</option><option value="std">sample std</option></select></label>
    </fieldset>
    <fieldset><legend>Rules</legend>
      <label><input type="radio" name="ruleMode" value="budget" checked> false-alarm budget per reading</label>
      ${num("faBudget", "p", "0.0027")}
      <label><input type="radio" name="ruleMode" value="select"> these rules:</label>
      ${WE_RULES.map((r) => box("we", r, r < 4 ? `WE${r}/N${[1, 5, 6][r - 1]}` : "WE4")).join(" ")}
      ${NELSON_RULES.map((r) => box("nelson", r, `N${r}`)).join(" ")}
      ${MR_RULE_NAMES.map((name, i) => box("mr", i + 1, name)).join(" ")}
    </fieldset>
    <fieldset><legend>Charts and runs</legend>
      ${num("cusumK", "CUSUM k", "")} ${num("cusumH", "CUSUM h", "")} ${num("ewmaLambda", "EWMA λ", "")} ${num("ewmaL", "EWMA L", "")}
      ${num("we4Run", "WE4 run", "")} ${num("n2Run", "N2 run", "")} ${num("n3Run", "N3 run", "")}
      ${num("n4Run", "N4 run", "")} ${num("n7Run", "N7 run", "")} ${num("n8Run", "N8 run", "")}
      ${num("jumpLimit", "JUMP limit (σ)", "")} ${num("noisyRun", "NOISY run", "")} ${num("stuckRun", "STUCK run", "")}
    </fieldset>
    <div class="toolbar">
      <button type="button" data-act="preview">Preview</button>
      <button type="button" data-act="apply" title="PUT /api/spc/limits/{key} (trial CL, σ) or POST …/rebaseline (N)">Apply the limits to the key</button>
    </div>`;
  return form;
}
