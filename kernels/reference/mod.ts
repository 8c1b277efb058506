/** kernels/reference: the names other folders use. Import from here, never from a file inside. */
export { referenceScores } from "./iforest-reference.js";
export { NeumaierSum, RollingReference } from "./rolling-reference.js";
export { SerialReference } from "./serial-reference.js";
export { SpcReference } from "./spc-reference.js";
