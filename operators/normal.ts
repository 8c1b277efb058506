/**
 * The standard normal distribution's tail functions, for the analyses that turn a probability
 * into a limit or back (SPC rule rates and budgets, failure probabilities). Browser-clean.
 */

/** Φ(z), the standard normal distribution function, to about 1e-14 relative: Φ(z) = erfc(−z/√2) / 2. */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  return 0.5 * erfc(-z / Math.SQRT2);
}

/**
 * erfc(x). For |x| < 2.5 from the series erf(x) = 2/√π · e^(−x²) · Σ (2x²)^n x / (1·3·…·(2n+1))
 * (all terms positive, no cancellation; Abramowitz & Stegun 7.1.6); beyond, from the continued
 * fraction erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) (A&S 7.1.14),
 * evaluated backwards.
 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x === Infinity) return 0;
  if (x < 2.5) {
    let term = x;
    let sum = x;
    const x2 = 2 * x * x;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  let t = x;
  for (let n = 120; n >= 1; n--) t = x + n / 2 / t;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / t;
}
