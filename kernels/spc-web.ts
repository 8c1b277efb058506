// The SPC kernel alone, for the dashboard's what-if preview in the browser: the same source as
// the engine's build (kernels/index.ts), built with the same compiler options except that its
// memory is not shared (asconfig.spc-web.json), so a page that is not cross-origin isolated can
// instantiate it.
export { spcStateBytes, spcInit, spcSetLimits, spcRebaseline, spcProcess, SPC_OUT_FIELDS } from "./spc";
