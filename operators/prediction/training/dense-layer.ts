/**
 * Forward and backward passes of one dense layer over a batch of rows, for the MLP trainers
 * (failure model: rul-train.ts; batch quality: operators/quality/training/quality-train.ts).
 * Row-major: a is n × wi, W is wi × wo, z is n × wo.
 */

/** One dense layer forward over the batch's n rows: z = a·W + b, then ReLU when `relu`. */
export function forwardLayer(
  a: Float64Array,
  z: Float64Array,
  w: Float64Array,
  b: Float64Array,
  n: number,
  wi: number,
  wo: number,
  relu: boolean,
): void {
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < wo; k++) z[i * wo + k] = b[k];
    for (let j = 0; j < wi; j++) {
      const aj = a[i * wi + j];
      if (aj === 0) continue;
      const row = j * wo;
      for (let k = 0; k < wo; k++) z[i * wo + k] += aj * w[row + k];
    }
    if (relu) for (let k = 0; k < wo; k++) if (z[i * wo + k] < 0) z[i * wo + k] = 0;
  }
}

/**
 * One dense layer backward: the gradients of its weights and bias from its output deltas `dz`,
 * and, when there is a layer below (`da`), the deltas of its input through that layer's ReLU.
 */
export function backwardLayer(
  a: Float64Array,
  dz: Float64Array,
  w: Float64Array,
  gw: Float64Array,
  gb: Float64Array,
  da: Float64Array | null,
  n: number,
  wi: number,
  wo: number,
): void {
  gw.fill(0);
  gb.fill(0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < wo; k++) gb[k] += dz[i * wo + k];
    for (let j = 0; j < wi; j++) {
      const aj = a[i * wi + j];
      if (aj === 0) continue;
      const row = j * wo;
      for (let k = 0; k < wo; k++) gw[row + k] += aj * dz[i * wo + k];
    }
  }
  if (da === null) return;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < wi; j++) {
      // ReLU: no gradient where the activation was cut to 0.
      if (a[i * wi + j] <= 0) {
        da[i * wi + j] = 0;
        continue;
      }
      let s = 0;
      const row = j * wo;
      for (let k = 0; k < wo; k++) s += w[row + k] * dz[i * wo + k];
      da[i * wi + j] = s;
    }
  }
}
