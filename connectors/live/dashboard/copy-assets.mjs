// Part of `npm run build:dashboard`: copies the page, its stylesheet and uPlot's browser build
// (from node_modules, pinned in package.json) beside the compiled modules in dist/dashboard/.
// Nothing is fetched at build or run time.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "..", "dist", "dashboard");
const uplot = join(dirname(createRequire(import.meta.url).resolve("uplot/package.json")), "dist");
mkdirSync(out, { recursive: true });
for (const f of ["index.html", "dashboard.css"]) copyFileSync(join(here, f), join(out, f));
for (const f of ["uPlot.iife.min.js", "uPlot.min.css"]) copyFileSync(join(uplot, f), join(out, f));
