// The kernel module: every kernel family in one WebAssembly module over one imported, shared
// memory, so each worker instantiates it once and can run any key group's task.
export { rollingStateBytes, rollingInit, rollingProcess, ROLLING_OUT_FIELDS } from "./rolling";
export { memSum } from "./memsum";
export { serialStateBytes, serialInit, serialProcess, gs1CheckDigitValid, SERIAL_OUT_FIELDS } from "./serial";
export { spcStateBytes, spcInit, spcSetLimits, spcRebaseline, spcProcess, SPC_OUT_FIELDS } from "./spc";
export { gatherColumn } from "./features";
export { iforestScore, iforestAveragePathLength, IFOREST_ERR_MODEL, IFOREST_ERR_ARGS } from "./iforest";
