/**
 * NASA C-MAPSS turbofan run-to-failure data (Saxena, Goebel, Simon, Eklund, "Damage Propagation
 * Modeling for Aircraft Engine Run-to-Failure Simulation", PHM 2008): one row per engine and
 * operational cycle, 26 space-separated numbers — unit, cycle, three operational settings,
 * 21 sensors. In a training file every unit runs to failure, so the remaining useful life (RUL)
 * at a row is that unit's last cycle − the row's cycle.
 *
 * linewatch uses it to train and check its failure-prediction model, and replays it as a fleet of
 * machines (one per unit, one reading per sensor and cycle).
 */
import { readFileSync, statSync } from "node:fs";
import { InputError } from "../../engine/core/mod.js";

/** The 21 sensors, in file order (Saxena et al. 2008, Table 2). `name` is the sensor_type linewatch uses. */
export const CMAPSS_SENSORS: readonly CmapssSensor[] = [
  { name: "s1", symbol: "T2", description: "total temperature at fan inlet", unit: "°R" },
  { name: "s2", symbol: "T24", description: "total temperature at LPC outlet", unit: "°R" },
  { name: "s3", symbol: "T30", description: "total temperature at HPC outlet", unit: "°R" },
  { name: "s4", symbol: "T50", description: "total temperature at LPT outlet", unit: "°R" },
  { name: "s5", symbol: "P2", description: "pressure at fan inlet", unit: "psia" },
  { name: "s6", symbol: "P15", description: "total pressure in bypass duct", unit: "psia" },
  { name: "s7", symbol: "P30", description: "total pressure at HPC outlet", unit: "psia" },
  { name: "s8", symbol: "Nf", description: "physical fan speed", unit: "rpm" },
  { name: "s9", symbol: "Nc", description: "physical core speed", unit: "rpm" },
  { name: "s10", symbol: "epr", description: "engine pressure ratio (P50/P2)", unit: "" },
  { name: "s11", symbol: "Ps30", description: "static pressure at HPC outlet", unit: "psia" },
  { name: "s12", symbol: "phi", description: "ratio of fuel flow to Ps30", unit: "pps/psi" },
  { name: "s13", symbol: "NRf", description: "corrected fan speed", unit: "rpm" },
  { name: "s14", symbol: "NRc", description: "corrected core speed", unit: "rpm" },
  { name: "s15", symbol: "BPR", description: "bypass ratio", unit: "" },
  { name: "s16", symbol: "farB", description: "burner fuel-air ratio", unit: "" },
  { name: "s17", symbol: "htBleed", description: "bleed enthalpy", unit: "" },
  { name: "s18", symbol: "Nf_dmd", description: "demanded fan speed", unit: "rpm" },
  { name: "s19", symbol: "PCNfR_dmd", description: "demanded corrected fan speed", unit: "rpm" },
  { name: "s20", symbol: "W31", description: "HPT coolant bleed", unit: "lbm/s" },
  { name: "s21", symbol: "W32", description: "LPT coolant bleed", unit: "lbm/s" },
];

export interface CmapssSensor {
  name: string;
  symbol: string;
  description: string;
  unit: string;
}

/** One unit's trajectory, cycles in file order (1, 2, …). */
export interface CmapssUnit {
  unit: number;
  cycles: Int32Array;
  /** settings[k][i]: operational setting k + 1 at cycle index i. */
  settings: Float64Array[];
  /** sensors[k][i]: sensor k + 1 (CMAPSS_SENSORS[k]) at cycle index i. */
  sensors: Float64Array[];
}

export const CMAPSS_COLUMNS = 26;
/** A C-MAPSS file is a few MiB; anything far larger is not one. */
export const CMAPSS_FILE_BYTES_MAX = 64 << 20;

/** Remaining useful life at cycle index i of a unit that ran to failure: last cycle − cycle. */
export function remainingUsefulLife(u: CmapssUnit, i: number): number {
  return u.cycles[u.cycles.length - 1] - u.cycles[i];
}

/**
 * Reads a C-MAPSS file (train_FD00x.txt layout). Every row must have 26 finite numbers, units must
 * be contiguous and each unit's cycles must count 1, 2, 3 …; anything else is an InputError naming
 * the line.
 */
export function readCmapss(path: string): CmapssUnit[] {
  const cannotRead = (cause: unknown) => new InputError(`${path}: cannot read the C-MAPSS file: ${(cause as Error).message}`, { cause });
  let size: number;
  try {
    size = statSync(path).size;
  } catch (cause) {
    throw cannotRead(cause);
  }
  if (size > CMAPSS_FILE_BYTES_MAX)
    throw new InputError(`${path}: ${size} bytes is more than a C-MAPSS file (${CMAPSS_FILE_BYTES_MAX} bytes at most)`);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    // A directory, or a file that went away or lost its permission since the stat.
    throw cannotRead(cause);
  }
  return parseCmapss(text, path);
}

/** Parses the text of a C-MAPSS file; `source` names it in errors. */
export function parseCmapss(text: string, source = "C-MAPSS text"): CmapssUnit[] {
  const units: CmapssUnit[] = [];
  let rows: number[][] = [];
  let unitNo = -1;
  const close = () => {
    if (rows.length === 0) return;
    const col = (c: number) => Float64Array.from(rows, (r) => r[c]);
    units.push({
      unit: unitNo,
      cycles: Int32Array.from(rows, (r) => r[1]),
      settings: [col(2), col(3), col(4)],
      sensors: Array.from({ length: 21 }, (_, k) => col(5 + k)),
    });
    rows = [];
  };
  const lines = text.split("\n");
  const seen = new Set<number>();
  for (let li = 0; li < lines.length; li++) {
    const line = lines[li].trim();
    if (line === "") continue;
    const where = `${source}, line ${li + 1}`;
    const cells = line.split(/\s+/);
    if (cells.length !== CMAPSS_COLUMNS) throw new InputError(`${where}: ${cells.length} columns, a C-MAPSS row has ${CMAPSS_COLUMNS}`);
    const r = cells.map(Number);
    const bad = r.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new InputError(`${where}: column ${bad + 1} (${JSON.stringify(cells[bad])}) is not a finite number`);
    if (!Number.isInteger(r[0]) || r[0] < 1) throw new InputError(`${where}: unit ${cells[0]} is not a positive integer`);
    if (r[0] !== unitNo) {
      close();
      if (seen.has(r[0]))
        throw new InputError(`${where}: unit ${r[0]} appears again after other units (rows of a unit must be contiguous)`);
      seen.add(r[0]);
      unitNo = r[0];
    }
    if (r[1] !== rows.length + 1) throw new InputError(`${where}: unit ${unitNo} cycle ${cells[1]}, expected ${rows.length + 1}`);
    rows.push(r);
  }
  close();
  if (units.length === 0) throw new InputError(`${source}: no C-MAPSS rows`);
  return units;
}
