/**
 * Numbers for NDJSON output: 15 significant digits (DBL_DIG, the digits a double always
 * carries exactly), trailing zeros removed. `Number#toPrecision` is about 3× faster here than
 * the shortest round-trip form of `String(x)`, which dominated replay's time; 15 digits keep a
 * relative error below 5e-15, far inside what any statistic here is accurate to.
 */
export function formatStatistic(v: number): string {
  if (!Number.isFinite(v)) return "null";
  const s = v.toPrecision(15);
  if (s.indexOf("e") >= 0 || s.indexOf(".") < 0) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48) end--;
  if (s.charCodeAt(end - 1) === 46) end--;
  return end === s.length ? s : s.slice(0, end);
}
