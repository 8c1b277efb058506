/**
 * What the machine view's what-if panel (what-if-panel.ts) uses of the SPC preview: the URLs it
 * loads at run time and the shapes it passes and reads, declared here because the dashboard's
 * tsconfig compiles this folder alone (the preview, spc-preview.ts, imports engine/core/web.ts and
 * operators/spc/web.ts: it is built by tsconfig.web.json into dist/www, which the live server
 * serves under /assets/www/). test/kit/spc-what-if.ts holds these declarations to the real ones
 * at compile time (npm run typecheck): each side assignable where the panel passes or reads it.
 *
 * No DOM here: the Node build compiles this file too, for that check.
 */

/** The preview module (connectors/live/dashboard/spc-preview.ts) as the live server serves it. */
export const PREVIEW_MODULE_URL = "/assets/www/connectors/live/dashboard/spc-preview.js";
/** operators/spc's browser face (web.ts): the default parameters, the row layout, the alert conditions. */
export const SPC_FACE_URL = "/assets/www/operators/spc/web.js";

/** operators/spc SpcParams. */
export interface TrialParams {
  baselineN: number;
  sigmaMethod: "std" | "mr";
  cusumK: number;
  cusumH: number;
  ewmaLambda: number;
  ewmaL: number;
  we4Run: number;
  n2Run: number;
  n3Run: number;
  n4Run: number;
  n7Run: number;
  n8Run: number;
  trackRecords: number;
  trackHold: number;
  trackGap: number;
  cusumCap: number;
  baselineTiesMax: number;
  jumpLimit: number;
  noisyRun: number;
  stuckRun: number;
}

/** Rule masks (bit r−1: WE rule r, Nelson rule r, moving-range rule r), or a false-alarm budget per reading (rulesForBudget picks). */
export type TrialRules = { we: number; nelson: number; mr: number; rate: number } | { faBudget: number };

/** SpcPreviewInput as the panel fills it. */
export interface TrialInput {
  key: string;
  times: Float64Array;
  values: Float64Array;
  params: TrialParams;
  /** Fixed limits from the first reading (params.baselineN = 0); absent: a baseline over the first baselineN readings. */
  limits?: { cl: number; sigma: number };
  rules: TrialRules;
}

/** SpcPreviewResult as the panel reads it. */
export interface TrialResult {
  /** SPC_OUT_FIELDS f64 per reading (SPC_COL indexes a row). */
  rows: Float64Array;
  firings: ReadonlyArray<{ index: number; time: number; value: number; rules: readonly string[] }>;
  /** Per alert rule: readings at which it fired. */
  counts: Readonly<Record<string, number>>;
  /** Per alert rule: alerts the engine's tracker would open. */
  alerts: Readonly<Record<string, number>>;
  skipped: readonly number[];
}

export interface PreviewModule {
  previewSpc(input: TrialInput): Promise<TrialResult>;
}

/** An alert condition: its rule name, the row column it reads and the bit (0: a 0/1 flag column). */
export interface TrialCondition {
  name: string;
  column: number;
  bit: number;
}

export interface SpcFace {
  DEFAULT_SPC_PARAMS: Readonly<TrialParams>;
  SPC_COL: { readonly cl: number; readonly ucl: number; readonly lcl: number; readonly limits_version: number };
  SPC_FIELDS: readonly string[];
  SPC_OUT_FIELDS: number;
  alertConditions(windows: { we: number[]; nelson: number[]; mr?: number[] }): TrialCondition[];
}
