/**
 * What-if preview of a key's SPC settings, in the browser: the engine's SPC kernel (kernels/spc.ts,
 * built alone as build/spc-web.wasm) runs over a key's recent readings with the limits and rules a
 * quality engineer is trying, and says which alarms would have fired.
 *
 * The same code as the engine at every step, not a re-implementation: the kernel is the engine's
 * source compiled with the engine's options (only its memory is not shared, so the page needs no
 * cross-origin isolation; test/spc-preview.test.ts checks the two builds' SPC functions are the
 * same instructions); the key starts and changes limits through operators/spc's initSpcKey and
 * applySpcLimitsChange; spcProcess is called as the engine calls it (state, stride, slots, times,
 * values, n, out, event list); the rows the event list names go through the engine's alert
 * episode tracker (EpisodeTracker.observeChunk) with the engine's maskRules before each decision, as the
 * SPC analysis's observeChunk does; firings are the alert conditions (alertConditions) a row sets. Plain ES module code without Node imports: the same
 * file runs in Node (the equality test) and in the page.
 *
 * Readings that are not finite (value or time) are skipped, as the engine never sees them (its
 * sources dead-letter them); their rows are NaN and their indices listed in `skipped`.
 */
import { ConfigError, type KernelExports, KernelLoadError } from "../../../engine/core/web.js";
import {
  ALL_RULES,
  alertConditions,
  conditionWindows,
  applySpcLimitsChange,
  initSpcKey,
  maskRules,
  type RuleSelection,
  rulesForBudget,
  TEXTBOOK_RULES,
  SPC_COL,
  SPC_OUT_FIELDS,
  type AlertEpisodeEvent,
  DEFAULT_EPISODE_SETTINGS,
  EpisodeTracker,
  type SpcLimits,
  type SpcLimitsChange,
  type SpcParams,
  spcInitArgs,
  spcStateBytes,
  validateFixedLimits,
} from "../../../operators/spc/web.js";

/** The exports of build/spc-web.wasm (kernels/spc-web.ts): the SPC entry points of the engine's kernel module. */
export type SpcWebKernel = Pick<KernelExports, "spcStateBytes" | "spcInit" | "spcSetLimits" | "spcRebaseline" | "spcProcess">;

/** Records per spcProcess call: the buffer the memory holds (the engine's batches are of this order too). */
export const PREVIEW_BATCH_RECORDS = 4096;
/** Readings one preview takes at most (the result rows are 120 bytes each: 12 MB at the cap). */
export const PREVIEW_READINGS_MAX = 100_000;
/** Low memory left to the module's own data, as the engine's layout leaves it (engine/core MEMORY_RESERVED_BYTES). */
export const PREVIEW_RESERVED_BYTES = 65536;
const PREVIEW_KEY = "what-if";
const PAGE_BYTES = 65536;

export interface SpcPreviewSettings {
  params: SpcParams;
  /** Fixed limits from the first reading (params.baselineN must then be 0), as a key's configured limits. */
  limits?: SpcLimits;
  /**
   * Limit changes, each applied before reading `at` (0 ≤ at < readings, ascending): what the API's
   * PUT /api/spc/limits/{key} ({kind: "set"}) and POST …/rebaseline ({kind: "rebaseline"}) do
   * between two records of the stream.
   */
  changes?: ReadonlyArray<{ at: number; change: SpcLimitsChange }>;
  /** The rules reported: a selection, a false-alarm budget per reading (rulesForBudget), or every rule. */
  rules?: RuleSelection | { faBudget: number };
}

export interface SpcPreviewInput extends SpcPreviewSettings {
  /** The key's name in the alert events (default "what-if"). */
  key?: string;
  /** Event times of the readings (not read by the charts, which are over reading order; kept in the firings). */
  times: ArrayLike<number>;
  values: ArrayLike<number>;
}

export interface SpcFiring {
  /** Index of the reading. */
  index: number;
  time: number;
  value: number;
  /** Alert rule names that fired (WE1–WE4, N2, N3, N4, N7, N8, CUSUM, EWMA; N1/N5/N6 report as WE1–WE3). */
  rules: string[];
}

export interface SpcPreviewResult {
  /** A row of SPC_OUT_FIELDS f64 per reading, in SPC_FIELDS order (index with SPC_COL), masks as reported; NaN rows for skipped readings. */
  rows: Float64Array;
  /** Readings at which a rule, the CUSUM or the EWMA alarm fired, in order. */
  firings: SpcFiring[];
  /** Per alert rule: readings at which it fired. */
  counts: Record<string, number>;
  /** Per alert rule: the episodes it would open (the engine's episode tracker's `opened` events, by first rule). */
  alerts: Record<string, number>;
  /** The episode events the engine's tracker would raise (opened, updated, closed; `position` = the reading's index). */
  events: AlertEpisodeEvent[];
  /** Indices of the readings that are not finite (value or time). */
  skipped: number[];
  /** The rules that were on. */
  rules: RuleSelection;
}

/** The SPC kernel instantiated over its own memory: one key's state and one buffer of PREVIEW_BATCH_RECORDS. */
export class SpcPreview {
  private readonly statePtr = PREVIEW_RESERVED_BYTES;
  private readonly stateBytes: number;
  private readonly buf: { slots: number; times: number; values: number; out: number; events: number };

  private constructor(
    private readonly kernel: SpcWebKernel,
    private readonly memory: WebAssembly.Memory,
  ) {
    this.stateBytes = kernel.spcStateBytes();
    if (this.stateBytes !== spcStateBytes()) {
      throw new KernelLoadError(
        `spc-web.wasm keeps ${this.stateBytes} bytes per key, the layout says ${spcStateBytes()}: rebuild the kernels`,
      );
    }
    const B = PREVIEW_BATCH_RECORDS;
    const slots = align(this.statePtr + this.stateBytes);
    const times = align(slots + 4 * B);
    const values = align(times + 8 * B);
    const out = align(values + 8 * B);
    const events = align(out + 8 * B * SPC_OUT_FIELDS);
    this.buf = { slots, times, values, out, events };
    // Every record is the one key's, slot 0.
    new Uint32Array(memory.buffer, slots, B).fill(0);
  }

  /** Compiles and instantiates build/spc-web.wasm (its bytes, or the module compiled already). */
  static async create(wasm: ArrayBuffer | ArrayBufferView | WebAssembly.Module): Promise<SpcPreview> {
    const module = wasm instanceof WebAssembly.Module ? wasm : await asyncWasm.compile(wasm);
    const B = PREVIEW_BATCH_RECORDS;
    const bytes = PREVIEW_RESERVED_BYTES + spcStateBytes() + 4 * B + 16 * B + 8 * B * SPC_OUT_FIELDS + 4 * (1 + B) + 5 * 64;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const instance = await asyncWasm.instantiate(module, {
      env: {
        memory,
        abort(_msg: number, _file: number, line: number, column: number): never {
          throw new KernelLoadError(`SPC kernel assertion failed at line ${line}:${column}`);
        },
      },
    });
    return new SpcPreview(instance.exports as unknown as SpcWebKernel, memory);
  }

  /** Fetches build/spc-web.wasm from `url` (in the dashboard's assets: spc-web.wasm beside this file) and instantiates it. */
  static async load(url: string | URL = new URL("./spc-web.wasm", import.meta.url)): Promise<SpcPreview> {
    const response = await fetch(url);
    if (!response.ok) throw new KernelLoadError(`${url} answered ${response.status}`);
    return SpcPreview.create(await response.arrayBuffer());
  }

  /** Runs the kernel over the readings with the settings; what the engine would have written and alerted. */
  run(input: SpcPreviewInput): SpcPreviewResult {
    const n = input.values.length;
    if (input.times.length !== n) throw new ConfigError("times", `${input.times.length} times for ${n} values`);
    if (n > PREVIEW_READINGS_MAX) throw new ConfigError("values", `${n} readings, more than the preview's ${PREVIEW_READINGS_MAX}`);
    const changes = checkedChanges(input.changes ?? [], n);
    validateFixedLimits(input.params, input.limits);
    initSpcKey(this.kernel, this.statePtr, spcInitArgs(input.params), input.limits);
    const fold = new FiringFold(input.params, ruleSelection(input), input);
    const batch = { indices: new Int32Array(PREVIEW_BATCH_RECORDS), length: 0 };
    let c = 0;
    for (let i = 0; i < n; i++) {
      while (c < changes.length && changes[c].at === i) {
        this.process(batch, input, fold);
        applySpcLimitsChange(this.kernel, this.statePtr, changes[c++].change);
      }
      if (!Number.isFinite(input.values[i]) || !Number.isFinite(input.times[i])) {
        fold.skip(i);
        continue;
      }
      batch.indices[batch.length++] = i;
      if (batch.length === PREVIEW_BATCH_RECORDS) this.process(batch, input, fold);
    }
    this.process(batch, input, fold);
    return fold.result();
  }

  /** One spcProcess call over the batch's readings; its rows and event list into the fold. */
  private process(batch: { indices: Int32Array; length: number }, input: SpcPreviewInput, fold: FiringFold): void {
    const m = batch.length;
    if (m === 0) return;
    const { slots, times, values, out, events } = this.buf;
    const t = new Float64Array(this.memory.buffer, times, m);
    const v = new Float64Array(this.memory.buffer, values, m);
    for (let j = 0; j < m; j++) {
      t[j] = input.times[batch.indices[j]];
      v[j] = input.values[batch.indices[j]];
    }
    this.kernel.spcProcess(this.statePtr, this.stateBytes, slots, times, values, m, out, events);
    const rows = new Float64Array(this.memory.buffer, out, m * SPC_OUT_FIELDS);
    const listed = new Uint32Array(this.memory.buffer, events, 1 + m);
    fold.add({ rows, times: t, values: v, events: listed.subarray(1, 1 + listed[0]) }, batch.indices, m);
    batch.length = 0;
  }
}

let loaded: Promise<SpcPreview> | undefined;

/**
 * The page's one call: runs the preview with the kernel loaded once per page (spc-web.wasm beside
 * this module, fetched on the first call; a failed load is tried again on the next).
 */
export async function previewSpc(input: SpcPreviewInput): Promise<SpcPreviewResult> {
  loaded ??= SpcPreview.load().catch((e: unknown) => {
    loaded = undefined;
    throw e;
  });
  return (await loaded).run(input);
}

/**
 * The rows of a preview, with the engine's rule masking and alert tracker on the rows the event
 * list names, and the firings of the alert conditions.
 */
class FiringFold {
  readonly rows: Float64Array;
  private readonly conditions: ReturnType<typeof alertConditions>;
  private readonly tracker: EpisodeTracker;
  private readonly events: AlertEpisodeEvent[] = [];
  private readonly counts: number[];
  private readonly firings: SpcFiring[] = [];
  private readonly skipped: number[] = [];
  /** Key id of every record of a batch: the one key, 0. */
  private readonly keyIds = new Uint32Array(PREVIEW_BATCH_RECORDS);

  constructor(
    params: SpcParams,
    private readonly rules: RuleSelection,
    private readonly input: SpcPreviewInput,
  ) {
    this.rows = new Float64Array(input.values.length * SPC_OUT_FIELDS);
    // As spcAnalysis builds them: the alert conditions with the run lengths of the parameters.
    this.conditions = alertConditions(conditionWindows(params), params);
    this.tracker = new EpisodeTracker(
      this.conditions,
      DEFAULT_EPISODE_SETTINGS,
      (e) => this.events.push(e),
      () => ({}),
    );
    this.counts = this.conditions.map(() => 0);
  }

  skip(index: number): void {
    this.rows.fill(Number.NaN, index * SPC_OUT_FIELDS, (index + 1) * SPC_OUT_FIELDS);
    this.skipped.push(index);
  }

  /**
   * A batch's rows (m, in memory) for the readings `indices` (their times and values in memory
   * too), and the kernel's event list: the rows that are loud or follow a loud row. Only those can
   * open, fire or close an alert, so only they are masked and decided — the engine's observeChunk,
   * run here on the same tracker with the same masking before each decision.
   */
  add(batch: { rows: Float64Array; times: Float64Array; values: Float64Array; events: Uint32Array }, indices: Int32Array, m: number): void {
    const F = SPC_OUT_FIELDS;
    const { rows, events } = batch;
    const chunk = {
      length: m,
      keyIds: this.keyIds,
      positions: Float64Array.from(indices.subarray(0, m)),
      times: batch.times,
      values: batch.values,
    };
    this.tracker.observeChunk(
      chunk,
      rows,
      events,
      () => this.input.key ?? PREVIEW_KEY,
      (i) => {
        if (this.rules !== ALL_RULES) maskRules(rows, i * F, this.rules);
      },
    );
    // Row by row to the reading's place (skipped readings leave gaps); no view made per row.
    for (let j = 0; j < m; j++) {
      const to = indices[j] * F;
      for (let f = 0; f < F; f++) this.rows[to + f] = rows[j * F + f];
    }
    for (const j of events) this.decide(indices[j], indices[j] * F);
  }

  /** The conditions the row at `at` fires (the alert tracker's test: a 0/1 flag column, or a bit of a finite mask). */
  private decide(index: number, at: number): void {
    if (!(this.rows[at + SPC_COL.limits_version] > 0)) return;
    let fired: string[] | undefined;
    for (let ci = 0; ci < this.conditions.length; ci++) {
      const c = this.conditions[ci];
      const v = this.rows[at + c.column];
      if (c.bit === 0 ? v === 1 : Number.isFinite(v) && (v & c.bit) !== 0) {
        (fired ??= []).push(c.name);
        this.counts[ci]++;
      }
    }
    if (fired !== undefined) this.firings.push({ index, time: this.input.times[index], value: this.input.values[index], rules: fired });
  }

  result(): SpcPreviewResult {
    const byName = (xs: number[]) => Object.fromEntries(this.conditions.map((c, ci) => [c.name, xs[ci]]));
    return {
      rows: this.rows,
      firings: this.firings,
      counts: byName(this.counts),
      alerts: byName(this.conditions.map((c) => this.events.filter((e) => e.event === "opened" && e.first_rule === c.name).length)),
      events: this.events,
      skipped: this.skipped,
      rules: this.rules,
    };
  }
}

function ruleSelection(input: SpcPreviewSettings): RuleSelection {
  const r = input.rules;
  if (r === undefined) return TEXTBOOK_RULES;
  if ("faBudget" in r) return rulesForBudget(r.faBudget, input.params);
  for (const [name, mask, all] of [
    ["we", r.we, 0b1111],
    ["nelson", r.nelson, 0b11111111],
    ["mr", r.mr, 0b1111],
  ] as const) {
    if (!Number.isInteger(mask) || mask < 0 || (mask & ~all) !== 0)
      throw new ConfigError(`rules.${name}`, `must be a mask within ${all}, got ${mask}`);
  }
  return r.we === ALL_RULES.we && r.nelson === ALL_RULES.nelson && r.mr === ALL_RULES.mr ? ALL_RULES : r;
}

function checkedChanges(
  changes: SpcPreviewSettings["changes"] & object,
  n: number,
): ReadonlyArray<{ at: number; change: SpcLimitsChange }> {
  let last = 0;
  for (const { at } of changes) {
    if (!Number.isInteger(at) || at < last || at >= n)
      throw new ConfigError("changes", `at must ascend within 0..${n - 1}, got ${at} after ${last}`);
    last = at;
  }
  return changes;
}

/**
 * The asynchronous WebAssembly calls, which Node's types leave out (lib "dom" declares them): a
 * page's main thread may compile only small modules synchronously.
 */
const asyncWasm = WebAssembly as unknown as {
  compile(bytes: ArrayBuffer | ArrayBufferView): Promise<WebAssembly.Module>;
  instantiate(module: WebAssembly.Module, imports: Record<string, Record<string, unknown>>): Promise<WebAssembly.Instance>;
};

function align(n: number): number {
  return Math.ceil(n / 64) * 64;
}
