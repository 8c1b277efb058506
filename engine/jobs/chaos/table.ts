/** The chaos harness's result table: one row per scenario run, as text for people and as JSON. */

/** One scenario's outcome. Counts are records; times are milliseconds; RSS is bytes. */
export interface ChaosRow {
  scenario: string;
  /** The load it ran under, in words ("2000 rec/s JetStream, 12000 records"). */
  load: string;
  /** Fault cycles injected (kills, outages, restarts). */
  cycles: number;
  lost: number;
  duplicated: number;
  /** Engine processes that ended on their own (not by the harness's signal), or ended a clean stop non-zero. */
  crashes: number;
  /** Worst time from a fault to the engine consuming again, ms (null: not measured). */
  recoveryMs: number | null;
  /** Highest resident set of the engine process over its lives, bytes (null: not measured). */
  peakRssBytes: number | null;
  /** Further checks of the scenario: each must be 0 for a pass (state or episode differences…). */
  mismatches: Record<string, number>;
  /** Figures measured beside the verdict (spill size, ingest rate…), for the report. */
  figures: Record<string, number | string>;
  /** What went wrong, when something did. */
  notes: string[];
  verdict: "pass" | "fail";
}

/** A row's verdict: fail on anything lost, duplicated, crashed or mismatched. */
export function verdictOf(row: Omit<ChaosRow, "verdict">): "pass" | "fail" {
  const clean = row.lost === 0 && row.duplicated === 0 && row.crashes === 0 && Object.values(row.mismatches).every((n) => n === 0);
  return clean ? "pass" : "fail";
}

const HEAD = ["scenario", "load", "cycles", "lost", "duplicated", "recovery", "peak RSS", "verdict"] as const;

/** The table for people: the eight columns, then each row's figures and notes on lines of their own. */
export function formatChaosTable(rows: readonly ChaosRow[]): string {
  const cells = rows.map((r) => [
    r.scenario,
    r.load,
    String(r.cycles),
    String(r.lost),
    String(r.duplicated),
    r.recoveryMs === null ? "-" : `${(r.recoveryMs / 1000).toFixed(2)} s`,
    r.peakRssBytes === null ? "-" : `${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
    r.verdict,
  ]);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: readonly string[]): string =>
    c
      .map((x, i) => x.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  const out = [line(HEAD), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)];
  for (const r of rows) {
    const checks = Object.entries(r.mismatches).map(([k, v]) => `${k} ${v}`);
    const figures = Object.entries(r.figures).map(([k, v]) => `${k} ${v}`);
    out.push("", `${r.scenario}: ${[...checks, ...figures, `crashes ${r.crashes}`].join(", ")}`);
    for (const n of r.notes) out.push(`  ${n}`);
  }
  return `${out.join("\n")}\n`;
}

/** Whether the run as a whole failed (the CLI's exit code). */
export function chaosFailed(rows: readonly ChaosRow[]): boolean {
  return rows.some((r) => r.verdict === "fail");
}
