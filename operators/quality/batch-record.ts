/**
 * The records of the process and quality streams (DESIGN.md §4; docs/wire-formats.md): a running
 * batch's process readings on `lw.<site>.process.<line>`, its quality outcome at the end on
 * `lw.<site>.quality.<line>`. The names are the source schema's (`process_parameters`,
 * `environmental_conditions`, `material_properties`, `first_pass_yield`, `defect_rate`); the wire
 * codec (connectors/wire/batch-codec.ts), the simulator (connectors/sim/batch-simulator.ts) and
 * the quality model's features (batch-features.ts) share them.
 */

export const PROCESS_PARAMETERS = ["temperature", "humidity", "pressure", "speed", "feed_rate"] as const;
export type ProcessParameter = (typeof PROCESS_PARAMETERS)[number];
/** The numeric members of `environmental_conditions` (`cleanroom_grade` is a label). */
export const ENVIRONMENT_NUMBERS = ["ambient_temperature", "ambient_humidity"] as const;
export type EnvironmentNumber = (typeof ENVIRONMENT_NUMBERS)[number];
export const DEFECT_CATEGORIES = ["packaging", "labelling", "serialization", "other"] as const;
export type DefectCategory = (typeof DEFECT_CATEGORIES)[number];
/** The suppliers and cleanroom grades the simulator draws (a model learns whichever its data holds). */
export const SUPPLIERS = ["SUP-A", "SUP-B", "SUP-C"] as const;
export const CLEANROOM_GRADES = ["A", "B", "C", "D"] as const;

/** Units of the numbers of a process reading. */
export const PROCESS_UNITS: Readonly<Record<ProcessParameter | EnvironmentNumber, string>> = {
  temperature: "°C",
  humidity: "%RH",
  pressure: "Pa",
  speed: "units/min",
  feed_rate: "% of nominal",
  ambient_temperature: "°C",
  ambient_humidity: "%RH",
};

/** One process reading of a running batch. Times are epoch ms. */
export interface ProcessRecord {
  line_id: string;
  work_order_id: string;
  batch_id: string;
  timestamp: number;
  /** Units made in the batch so far, this reading's interval included. */
  units_produced: number;
  planned_units: number;
  process_parameters: Record<ProcessParameter, number>;
  environmental_conditions: Record<EnvironmentNumber, number> & { cleanroom_grade: string };
  material_properties: { supplier: string; material_batch_number: string };
}

export type DefectCounts = Record<DefectCategory, number>;

/** A batch's quality outcome at its end. */
export interface QualityRecord {
  line_id: string;
  work_order_id: string;
  batch_id: string;
  /** End of the batch. */
  timestamp: number;
  /** Start of the batch (absent: not reported). */
  start_timestamp?: number;
  units_produced: number;
  /** Units that passed the first inspection, as a fraction of units_produced. */
  first_pass_yield: number;
  /** Defective units (Σ defects) as a fraction of units_produced. */
  defect_rate: number;
  /** Defective units by category (each counted in its primary category). */
  defects: DefectCounts;
  /** Units that failed the first inspection and passed after rework (absent: not reported). */
  reworked_units?: number;
}
