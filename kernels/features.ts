// Feature assembly: copies one f64 column of a row-major source (an input column, or another
// analysis's output rows) into a column of a row-major feature matrix, so a model can read the
// features of each record side by side. Strides and columns count f64s.

export function gatherColumn(dst: usize, dstStride: i32, dstCol: i32, src: usize, srcStride: i32, srcCol: i32, n: i32): i32 {
  let d = dst + (<usize>dstCol << 3);
  let s = src + (<usize>srcCol << 3);
  const ds = <usize>dstStride << 3;
  const ss = <usize>srcStride << 3;
  for (let i = 0; i < n; i++) {
    store<f64>(d, load<f64>(s));
    d += ds;
    s += ss;
  }
  return n;
}
