/** engine/cli: the `linewatch` program (for tests that parse without running) and the flag parsers the bench command shares. */
export { buildProgram } from "./program.js";
export { durationOption, integerOption, numberOption } from "./options.js";
export { parseRunAnalysisSettings, type RunAnalysisSettings, runAnalyses } from "./run-settings.js";
