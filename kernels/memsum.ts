// Memory-bandwidth ceiling for the benchmarks: a SIMD sum of f64 lanes over a byte range.
// It reads every byte once and does the least work a kernel could do per value.

export function memSum(ptr: usize, bytes: i32): f64 {
  let acc0 = f64x2.splat(0), acc1 = f64x2.splat(0), acc2 = f64x2.splat(0), acc3 = f64x2.splat(0);
  const end = ptr + (<usize>bytes & ~63);
  let p = ptr;
  while (p < end) {
    acc0 = f64x2.add(acc0, v128.load(p));
    acc1 = f64x2.add(acc1, v128.load(p, 16));
    acc2 = f64x2.add(acc2, v128.load(p, 32));
    acc3 = f64x2.add(acc3, v128.load(p, 48));
    p += 64;
  }
  const acc = f64x2.add(f64x2.add(acc0, acc1), f64x2.add(acc2, acc3));
  let sum = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
  const tail = ptr + <usize>bytes;
  while (p + 8 <= tail) { sum += load<f64>(p); p += 8; }
  return sum;
}
