// Compact encodings for state a workflow carries across continue-as-new (Temporal refuses payloads over 2 MB:
// MAX_SHARD_SIZE bounds the worst case to half of that).
// Deterministic, dependency-free code: it runs inside the workflow sandbox.

/** Run-length encodes a typed array as [value, count, value, count, ...]. Runs of equal values are typical. */
export function rle(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length;) {
    const v = values[i]!;
    let j = i + 1;
    while (j < values.length && values[j] === v) j++;
    out.push(v, j - i);
    i = j;
  }
  return out;
}

/** Fills `into` from an encoding made by rle(); throws if the lengths disagree. */
export function unrle(encoded: readonly number[], into: { length: number; [i: number]: number }): void {
  let k = 0;
  for (let p = 0; p < encoded.length; p += 2) {
    const v = encoded[p]!;
    const n = encoded[p + 1]!;
    for (let m = 0; m < n; m++) into[k++] = v;
  }
  if (k !== into.length) throw new Error(`carried state holds ${k} values, expected ${into.length}`);
}
