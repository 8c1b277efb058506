/**
 * The what-if page (what-if.html): readings and trial settings in, the SPC kernel's verdict out —
 * the chart with its limits and the readings where alarms would have fired, the firings per rule —
 * and "apply" sending the limits to the key through the live server's API (PUT
 * /api/spc/limits/{key}, POST …/rebaseline), with the token from the form, the URL fragment
 * (#token=…) or the session cookie the server set. The preview is spc-preview.ts; this file only
 * reads the form and draws.
 */
import { DEFAULT_SPC_PARAMS, type RuleSelection, SPC_COL, SPC_OUT_FIELDS, type SpcParams } from "../../../operators/spc/web.js";
import { checkedRuleMasks } from "./rule-masks.js";
import { previewSpc, type SpcPreviewInput, type SpcPreviewResult } from "./spc-preview.js";

const form = document.getElementById("settings") as HTMLFormElement;
const status = document.getElementById("status") as HTMLElement;

/** What the page shows last: for a test or the dashboard's machine view to read. */
export interface WhatIfState {
  input: SpcPreviewInput | null;
  result: SpcPreviewResult | null;
  /** The preview before the last: its alerts are shown beside the last one's, to compare settings. */
  previous: SpcPreviewResult | null;
}
export const whatIf: WhatIfState = { input: null, result: null, previous: null };

/** A field's value (an input, a select, or the checked radio of a group). */
function field(name: string): string {
  return (form.elements.namedItem(name) as { value: string } | null)?.value.trim() ?? "";
}

function numberField(name: string): number {
  return Number(field(name));
}

function checked(name: string): number[] {
  return [...form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)].map((e) => Number(e.value));
}

/** Lines of `value` or `time,value`; a line without a time takes its line number. Empty lines are left out. */
export function parseReadings(text: string): { times: Float64Array; values: Float64Array } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const times = new Float64Array(lines.length);
  const values = new Float64Array(lines.length);
  lines.forEach((line, i) => {
    const cells = line.split(/[,;\t]/).map((c) => c.trim());
    times[i] = cells.length > 1 ? Number(cells[0]) : i;
    values[i] = Number(cells[cells.length - 1]);
  });
  return { times, values };
}

/**
 * Readings from a URL (the token sent as for the API): JSON — an array of numbers, `{times,
 * values}`, or an array of records with `value`/`sensor_value` and `timestamp`/`time` — or text
 * lines as pasted. Put into the readings box as `time,value` lines.
 */
async function fetchReadings(): Promise<void> {
  try {
    const url = field("readingsUrl");
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
    const text = await response.text();
    const { times, values } = readingsOf(text);
    (form.elements.namedItem("readings") as HTMLTextAreaElement).value = Array.from(values, (v, i) => `${times[i]},${v}`).join("\n");
    say(`${values.length} readings from ${url}`);
  } catch (e) {
    say((e as Error).message, true);
  }
}

/** The readings in a fetched body (see fetchReadings). */
export function readingsOf(text: string): { times: Float64Array; values: Float64Array } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return parseReadings(text);
  }
  if (json !== null && typeof json === "object" && !Array.isArray(json) && "values" in json) {
    const { times, values } = json as { times?: number[]; values: number[] };
    return { times: Float64Array.from(times ?? values.map((_, i) => i)), values: Float64Array.from(values) };
  }
  if (!Array.isArray(json)) throw new Error("readings: expected an array or {times, values}");
  const records = json as Array<number | Record<string, unknown>>;
  const value = (r: number | Record<string, unknown>) => (typeof r === "number" ? r : Number(r.value ?? r.sensor_value));
  const time = (r: number | Record<string, unknown>, i: number) => {
    const t = typeof r === "number" ? i : (r.timestamp ?? r.time ?? i);
    return typeof t === "string" ? Date.parse(t) : Number(t);
  };
  return { times: Float64Array.from(records, time), values: Float64Array.from(records, value) };
}

/** The form as the preview's input. */
function readInput(): SpcPreviewInput {
  const params: SpcParams = {
    ...DEFAULT_SPC_PARAMS,
    baselineN: field("limits") === "baseline" ? numberField("baselineN") : 0,
    sigmaMethod: field("sigmaMethod") === "std" ? "std" : "mr",
    cusumK: numberField("cusumK"),
    cusumH: numberField("cusumH"),
    ewmaLambda: numberField("ewmaLambda"),
    ewmaL: numberField("ewmaL"),
    we4Run: numberField("we4Run"),
    n2Run: numberField("n2Run"),
    n3Run: numberField("n3Run"),
    n4Run: numberField("n4Run"),
    n7Run: numberField("n7Run"),
    n8Run: numberField("n8Run"),
    jumpLimit: numberField("jumpLimit"),
    noisyRun: numberField("noisyRun"),
    stuckRun: numberField("stuckRun"),
  };
  const rules: RuleSelection | { faBudget: number } =
    field("ruleMode") === "select" ? selectedRules() : { faBudget: numberField("faBudget") };
  const { times, values } = parseReadings(field("readings"));
  const limits = params.baselineN === 0 ? { cl: numberField("cl"), sigma: numberField("sigma") } : undefined;
  return { times, values, params, limits, rules };
}

/** The checked rules as masks (rule-masks.ts). */
function selectedRules(): RuleSelection {
  return checkedRuleMasks(checked("we"), checked("nelson"), checked("mr"));
}

async function runPreview(): Promise<void> {
  try {
    const input = readInput();
    const t0 = performance.now();
    const result = await previewSpc(input);
    const ms = performance.now() - t0;
    whatIf.input = input;
    whatIf.previous = whatIf.result;
    whatIf.result = result;
    draw(input, result);
    showCounts(result);
    showFirings(result);
    const skipped = result.skipped.length > 0 ? `, ${result.skipped.length} not finite (skipped, as the engine dead-letters them)` : "";
    say(`${input.values.length} readings${skipped}: ${result.firings.length} with an alarm, in ${ms.toFixed(1)} ms`);
    document.body.dataset.previewed = String(input.values.length);
  } catch (e) {
    say((e as Error).message, true);
  }
}

function say(text: string, error = false): void {
  status.textContent = text;
  status.className = error ? "error" : "";
}

function showCounts(result: SpcPreviewResult, previous: SpcPreviewResult | null = whatIf.previous): void {
  const table = document.getElementById("counts") as HTMLTableElement;
  const names = Object.keys(result.counts);
  table.innerHTML = "";
  const head = table.insertRow();
  head.insertCell().textContent = "rule";
  for (const n of names) head.insertCell().textContent = n;
  const rows: Array<[string, Record<string, number>]> = [
    ["firings", result.counts],
    ["alerts", result.alerts],
  ];
  if (previous !== null) rows.push(["alerts, previous preview", previous.alerts]);
  for (const [label, by] of rows) {
    const row = table.insertRow();
    row.insertCell().textContent = label;
    for (const n of names) {
      const cell = row.insertCell();
      cell.textContent = String(by[n] ?? 0);
      cell.dataset.rule = n;
      cell.dataset.kind = label;
    }
  }
}

/** The firings as a list (the first 1000: the counts above have them all). */
function showFirings(result: SpcPreviewResult): void {
  const list = document.getElementById("firings") as HTMLOListElement;
  list.innerHTML = "";
  for (const f of result.firings.slice(0, 1000)) {
    const li = document.createElement("li");
    li.dataset.index = String(f.index);
    li.dataset.rules = f.rules.join(" ");
    li.textContent = `#${f.index} t=${f.time} value=${f.value}: ${f.rules.join(", ")}`;
    list.append(li);
  }
}

/** The readings, the centre line and 3σ limits as the kernel had them at each reading, and a red ring at each firing. */
function draw(input: SpcPreviewInput, result: SpcPreviewResult): void {
  const canvas = document.getElementById("chart") as HTMLCanvasElement;
  const g = canvas.getContext("2d") as CanvasRenderingContext2D;
  g.clearRect(0, 0, canvas.width, canvas.height);
  const n = input.values.length;
  const row = (i: number, col: number) => result.rows[i * SPC_OUT_FIELDS + col];
  const shown: number[] = [];
  for (let i = 0; i < n; i++)
    for (const v of [input.values[i], row(i, SPC_COL.ucl), row(i, SPC_COL.lcl)]) if (Number.isFinite(v)) shown.push(v);
  if (shown.length === 0) return;
  const lo = Math.min(...shown);
  const hi = Math.max(...shown);
  const pad = 10;
  const x = (i: number) => pad + (i / Math.max(1, n - 1)) * (canvas.width - 2 * pad);
  const y = (v: number) => canvas.height - pad - ((v - lo) / (hi - lo || 1)) * (canvas.height - 2 * pad);
  const line = (colour: string, at: (i: number) => number, dash: number[] = []) => {
    g.strokeStyle = colour;
    g.setLineDash(dash);
    g.beginPath();
    let pen = false;
    for (let i = 0; i < n; i++) {
      const v = at(i);
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      if (pen) g.lineTo(x(i), y(v));
      else g.moveTo(x(i), y(v));
      pen = true;
    }
    g.stroke();
  };
  line("#2a6fdb", (i) => input.values[i]);
  line("#1b8a3a", (i) => row(i, SPC_COL.cl));
  line("#c0392b", (i) => row(i, SPC_COL.ucl), [6, 4]);
  line("#c0392b", (i) => row(i, SPC_COL.lcl), [6, 4]);
  g.setLineDash([]);
  g.strokeStyle = "#d0021b";
  for (const f of result.firings) {
    g.beginPath();
    g.arc(x(f.index), y(f.value), 4, 0, 2 * Math.PI);
    g.stroke();
  }
}

function token(): string {
  const typed = field("token");
  if (typed !== "") return typed;
  return new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
}

/** A call of the live server's API, with the token as a bearer header when the page has one (else the session cookie goes). */
async function api(method: string, path: string, body?: object): Promise<unknown> {
  const headers = { ...authHeaders(), "content-type": "application/json" };
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const reply = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${reply?.error?.message ?? ""}`);
  return reply;
}

function authHeaders(): Record<string, string> {
  const t = token();
  return t === "" ? {} : { authorization: `Bearer ${t}` };
}

function keyPath(): string {
  return `/api/spc/limits/${encodeURIComponent(field("key"))}`;
}

async function loadLimits(): Promise<void> {
  try {
    const limits = (await api("GET", keyPath())) as { cl?: number; sigma?: number; limits_version?: number };
    if (typeof limits.cl === "number") (form.elements.namedItem("cl") as HTMLInputElement).value = String(limits.cl);
    if (typeof limits.sigma === "number") (form.elements.namedItem("sigma") as HTMLInputElement).value = String(limits.sigma);
    say(`limits of ${field("key")}: version ${limits.limits_version ?? "?"}`);
  } catch (e) {
    say((e as Error).message, true);
  }
}

/** Applies the previewed limits: fixed ones with PUT, a re-baseline with POST …/rebaseline. */
async function applyLimits(): Promise<void> {
  try {
    const input = readInput();
    const reply =
      input.limits !== undefined
        ? await api("PUT", keyPath(), { cl: input.limits.cl, sigma: input.limits.sigma })
        : await api("POST", `${keyPath()}/rebaseline`, { records: input.params.baselineN });
    say(`applied: ${JSON.stringify(reply)}`);
  } catch (e) {
    say((e as Error).message, true);
  }
}

document.getElementById("preview")?.addEventListener("click", () => void runPreview());
document.getElementById("load-limits")?.addEventListener("click", () => void loadLimits());
document.getElementById("apply")?.addEventListener("click", () => void applyLimits());
document.getElementById("fetch-readings")?.addEventListener("click", () => void fetchReadings());
(globalThis as { whatIf?: WhatIfState }).whatIf = whatIf;
