/**
 * The rule masks of a what-if form's checked boxes — the machine view's panel and the standalone
 * page read the same boxes the same way: bit r − 1 per checked rule of each family; Nelson 1, 5
 * and 6 follow their Western Electric twins (WE1–3), as in the alerts.
 */
export function checkedRuleMasks(
  we: readonly number[],
  nelson: readonly number[],
  mr: readonly number[],
): { we: number; nelson: number; mr: number; rate: number } {
  const twin: Record<number, number> = { 1: 1, 2: 5, 3: 6 };
  const masks = { we: 0, nelson: 0, mr: 0, rate: Number.NaN };
  for (const r of we) {
    masks.we |= 1 << (r - 1);
    if (twin[r] !== undefined) masks.nelson |= 1 << (twin[r] - 1);
  }
  for (const r of nelson) masks.nelson |= 1 << (r - 1);
  for (const r of mr) masks.mr |= 1 << (r - 1);
  return masks;
}
