/**
 * Which alert conditions fire on an SPC row, as bits by condition index: per mask column a table
 * from the mask's value to the conditions it fires (a rule mask is at most 8 bits wide), per flag
 * column the conditions a 1 fires — a few loads a row where a test per condition was most of
 * deciding a loud row. Same answer as testing each condition: a flag fires at exactly 1, a mask
 * bit when the value is finite and has the bit; a mask value outside 0…255 or not an integer
 * takes the per-condition test.
 */
import type { Condition } from "./alerts.js";

/** Mask values a column's table covers. */
const TABLE_VALUES = 256;

interface ColumnPlan {
  column: number;
  /** Conditions a value of 1 fires (flags, bit 0). */
  flagBits: number;
  /** Per mask value 0…255: the conditions with a bit in it fire; null when the column has no bit conditions. */
  table: Int32Array | null;
  /** The column's bit conditions: (condition index, bit), for values the table does not cover. */
  bitConditions: Array<{ index: number; bit: number }>;
}

export class FiredConditions {
  private readonly plans: ColumnPlan[] = [];

  constructor(conditions: readonly Condition[]) {
    const byColumn = new Map<number, ColumnPlan>();
    conditions.forEach((c, index) => {
      let plan = byColumn.get(c.column);
      if (plan === undefined) {
        plan = { column: c.column, flagBits: 0, table: null, bitConditions: [] };
        byColumn.set(c.column, plan);
        this.plans.push(plan);
      }
      if (c.bit === 0) plan.flagBits |= 1 << index;
      else plan.bitConditions.push({ index, bit: c.bit });
    });
    for (const plan of this.plans) {
      if (plan.bitConditions.length === 0) continue;
      const table = new Int32Array(TABLE_VALUES);
      for (let m = 0; m < TABLE_VALUES; m++) for (const { index, bit } of plan.bitConditions) if ((m & bit) !== 0) table[m] |= 1 << index;
      plan.table = table;
    }
  }

  /** The conditions firing on the row at rows[at …]. */
  of(rows: Float64Array, at: number): number {
    let fired = 0;
    for (let p = 0; p < this.plans.length; p++) {
      const plan = this.plans[p];
      const v = rows[at + plan.column];
      if (v === 1) fired |= plan.flagBits;
      const table = plan.table;
      if (table === null) continue;
      // v >>> 0 === v: an integer in 0 … 2^32 − 1 (NaN and fractions fail).
      if (v >>> 0 === v && v < TABLE_VALUES) fired |= table[v];
      else if (Number.isFinite(v)) for (const { index, bit } of plan.bitConditions) if ((v & bit) !== 0) fired |= 1 << index;
    }
    return fired;
  }
}
