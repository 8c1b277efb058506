/**
 * NIST SP 800-90B §6.3.1, the most common value estimate, on a file of symbols read the way
 * NIST's tool (github.com/usnistgov/SP800-90B_EntropyAssessment, ea_non_iid) reads it: one
 * symbol per byte, bits_per_symbol 1..8 (inferred from the highest bit set when not given; a
 * symbol wider than the given width is an error, a narrower data set a warning), the "literal"
 * estimate over the symbols and, for more than one bit per symbol, the "bitstring" estimate over
 * the symbols' bits, most significant first.
 *
 *   p̂ = mode / n,  p_u = min(1, p̂ + z·sqrt(p̂(1 − p̂)/(n − 1))),  H = −log2 p_u
 *
 * z = 2.5758293035489008, the unrounded 99.5 % quantile NIST's tool uses (ZALPHA), so the figures
 * equal the tool's to the last digit (test/nist-mcv.test.ts, on NIST's sample files and their
 * published outputs); the standard's text rounds it to 2.576 (pass `z` to use that).
 */
import { InputError } from "../../engine/core/mod.js";
import { MCV_Z } from "./layout.js";

export interface McvEstimate {
  samples: number;
  mode_count: number;
  p_hat: number;
  p_u: number;
  /** Bits per sample. */
  min_entropy: number;
}

export interface SymbolFileEstimate {
  symbols: number;
  bits_per_symbol: number;
  z: number;
  literal: McvEstimate;
  /** Per bit; null for one bit per symbol (the literal estimate is the bitstring one). */
  bitstring: McvEstimate | null;
  /** min(literal, bits_per_symbol × bitstring): the MCV bound per symbol, as the tool combines them. */
  min_entropy_per_symbol: number;
  warnings: string[];
}

export function mcvEstimate(modeCount: number, samples: number, z: number = MCV_Z): McvEstimate {
  if (!Number.isInteger(samples) || samples < 2) throw new InputError(`the MCV estimate needs at least 2 samples, got ${samples}`);
  const p = modeCount / samples;
  const pu = Math.min(1, p + z * Math.sqrt((p * (1 - p)) / (samples - 1)));
  return { samples, mode_count: modeCount, p_hat: p, p_u: pu, min_entropy: 0 - Math.log2(pu) };
}

/** The literal and bitstring MCV estimates of `data` (one symbol per byte). */
export function mcvOfSymbols(data: Uint8Array, bitsPerSymbol?: number, z: number = MCV_Z): SymbolFileEstimate {
  if (data.length < 2) throw new InputError(`need at least 2 symbols, got ${data.length}`);
  let or = 0;
  for (let i = 0; i < data.length; i++) or |= data[i];
  const used = or === 0 ? 1 : 32 - Math.clz32(or);
  const warnings: string[] = [];
  let bits = bitsPerSymbol ?? used;
  if (bitsPerSymbol !== undefined) {
    if (!Number.isInteger(bitsPerSymbol) || bitsPerSymbol < 1 || bitsPerSymbol > 8)
      throw new InputError(`bits per symbol must be 1..8, got ${bitsPerSymbol}`);
    if (used > bitsPerSymbol) throw new InputError(`symbols use ${used} bits, more than --bits-per-symbol ${bitsPerSymbol}`);
    if (used < bitsPerSymbol) warnings.push(`symbols appear to be narrower (${used} bits) than described (${bitsPerSymbol})`);
  }
  bits = Math.max(1, bits);
  const counts = new Float64Array(256);
  for (let i = 0; i < data.length; i++) counts[data[i]]++;
  let mode = 0;
  for (const c of counts) if (c > mode) mode = c;
  const literal = mcvEstimate(mode, data.length, z);
  let bitstring: McvEstimate | null = null;
  if (bits > 1) {
    let ones = 0;
    for (let v = 0; v < 256; v++) if (counts[v] > 0) ones += counts[v] * popcount(v);
    const n = data.length * bits;
    bitstring = mcvEstimate(Math.max(ones, n - ones), n, z);
  }
  return {
    symbols: data.length,
    bits_per_symbol: bits,
    z,
    literal,
    bitstring,
    min_entropy_per_symbol: bitstring === null ? literal.min_entropy : Math.min(literal.min_entropy, bits * bitstring.min_entropy),
    warnings,
  };
}

function popcount(v: number): number {
  let c = 0;
  for (; v !== 0; v &= v - 1) c++;
  return c;
}
