/** uPlot is loaded by index.html as its browser build (/assets/uPlot.iife.min.js): a global, typed from the package. */
import type UPlot from "uplot";

declare global {
  const uPlot: typeof UPlot;
}
