// Messages between the InferencePool (main thread) and its inference threads, and the tensor arrays they carry.

/** onnxruntime session settings, the same for every thread of a pool. */
export interface SessionSettings {
  /** Threads one operator may use (onnxruntime intra-op). */
  intraOpNumThreads: number;
  /** Let idle intra-op threads spin (lower latency, burns CPU). */
  allowSpinning: boolean;
}

export interface WireTensor {
  name: string;
  dtype: string;
  data: Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;
  dims: number[];
}

const TYPED_ARRAYS: Record<string, new (n: number) => WireTensor['data']> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

/** The typed array that holds an onnxruntime tensor of this element type (bool as bytes), if it is one we carry. */
export function typedArrayFor(dtype: string): (new (n: number) => WireTensor['data']) | undefined {
  return TYPED_ARRAYS[dtype];
}

export type ThreadRequest =
  { type: 'load'; id: number; file: string } | { type: 'run'; id: number; file: string; feeds: WireTensor[] };

/**
 * Tells a thread the pool has let it go (its run timed out): it exits as soon as it reads this, which is once the
 * native run it is in returns. Terminating it from outside instead would abort the whole process when that run
 * returns (onnxruntime-node then throws into a thread that is being torn down).
 */
export const RETIRE = { type: 'retire' } as const;

/** A model's signature as its ONNX file declares it (batch dimension included; symbolic dims as strings). */
export interface OnnxSignature {
  inputs: { name: string; type: string; shape: (number | string)[] }[];
  outputs: { name: string; type: string; shape: (number | string)[] }[];
}

export type ThreadResponse =
  | { id: number; ok: true; outputs: WireTensor[]; signature?: OnnxSignature }
  | { id: number; ok: false; phase: 'load' | 'run'; error: string };
