/**
 * The kernel module's exports as TypeScript sees them: the engine's (build/kernels.wasm) and, for
 * the SPC entry points, the browser's (build/spc-web.wasm). No imports: engine/core/web.ts offers it.
 */
/** The exports of kernels/index.ts. Pointers are byte offsets into the shared memory. */
export interface KernelExports {
  rollingStateBytes(mode: number, cap: number): number;
  rollingInit(state: number, mode: number, cap: number, span: number, alpha: number, timeScale: number): void;
  rollingProcess(stateBase: number, stateStride: number, slots: number, times: number, values: number, n: number, out: number): number;
  memSum(ptr: number, bytes: number): number;
  /** Serial integrity (kernels/serial.ts; layouts: operators/serial/layout.ts). */
  serialStateBytes(window: number): number;
  serialInit(
    state: number,
    window: number,
    recent: number,
    prefixMin: number,
    prefixRepeat: number,
    lowVarPositions: number,
    statMin: number,
    warmup: number,
    deltaMax: number,
    lowVarShare: number,
    guessMax: number,
    fastAlpha: number,
    slowAlpha: number,
    burstRatio: number,
    gapFactor: number,
    minInterval: number,
    futureSkew: number,
    surprisalRatio: number,
  ): void;
  serialProcess(
    stateBase: number,
    stateStride: number,
    slots: number,
    times: number,
    payload: number,
    payloadBytes: number,
    n: number,
    out: number,
    tables: number,
  ): number;
  /** 1 when the ASCII digits at ptr end in their GS1 mod-10 check digit. */
  gs1CheckDigitValid(ptr: number, len: number): number;
  gatherColumn(dst: number, dstStride: number, dstCol: number, src: number, srcStride: number, srcCol: number, n: number): number;
  spcStateBytes(): number;
  spcInit(
    state: number,
    baselineN: number,
    sigmaMethod: number,
    k: number,
    h: number,
    lambda: number,
    L: number,
    we4Run: number,
    n2Run: number,
    n3Run: number,
    n4Run: number,
    n7Run: number,
    n8Run: number,
    trackRecords: number,
    cusumCap: number,
    tiesMax: number,
    trackHold: number,
    trackGap: number,
    jumpLimit: number,
    noisyRun: number,
    stuckRun: number,
    stepWindow: number,
    stepLimit: number,
  ): void;
  spcSetLimits(state: number, cl: number, sigma: number): void;
  spcRebaseline(state: number, n: number): void;
  spcProcess(
    stateBase: number,
    stateStride: number,
    slots: number,
    times: number,
    values: number,
    n: number,
    out: number,
    events?: number,
  ): number;
  /** Isolation forest scores of n rows (kernels/iforest.ts; model block: operators/iforest/layout.ts). */
  iforestScore(
    modelPtr: number,
    rowsPtr: number,
    rowStride: number,
    featureIdxPtr: number,
    n: number,
    outPtr: number,
    outStride: number,
  ): number;
  /** c(n) of the isolation forest. */
  iforestAveragePathLength(n: number): number;
}
