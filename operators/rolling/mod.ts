/** operators/rolling: the names other folders use. Import from here, never from a file inside. */
export {
  DEFAULT_ROLLING_ALPHA,
  DEFAULT_TIME_WINDOW_CAPACITY,
  ROLLING_FIELDS,
  ROLLING_OUT_FIELDS,
  rollingAnalysis,
  type RollingField,
  type RollingOptions,
  rollingKernel,
  rollingMinCount,
  rollingRowText,
  type RollingWindow,
} from "./rolling.js";
