import type { KServeDatatype } from '../contracts/predict.js';
import { InvalidRequestError } from '../errors.js';

// Tensor values as the binary tensor data extension lays them out: little-endian, row-major, no padding; BOOL one
// byte (0 or 1); BYTES each element a 4-byte little-endian length and then its bytes. Decoding checks every size
// against the shape, so a body that does not add up is the client's mistake (400), never a crash.

type Fixed = Exclude<KServeDatatype, 'BYTES'>;

/** Bytes per element of each fixed-size datatype. */
export const ELEMENT_BYTES: Record<Fixed, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

const READ: Record<Fixed, (b: Buffer, at: number) => number | bigint | boolean> = {
  BOOL: (b, at) => b.readUInt8(at) !== 0,
  UINT8: (b, at) => b.readUInt8(at),
  INT8: (b, at) => b.readInt8(at),
  UINT16: (b, at) => b.readUInt16LE(at),
  INT16: (b, at) => b.readInt16LE(at),
  FP16: (b, at) => halfToNumber(b.readUInt16LE(at)),
  UINT32: (b, at) => b.readUInt32LE(at),
  INT32: (b, at) => b.readInt32LE(at),
  FP32: (b, at) => b.readFloatLE(at),
  UINT64: (b, at) => b.readBigUInt64LE(at),
  INT64: (b, at) => b.readBigInt64LE(at),
  FP64: (b, at) => b.readDoubleLE(at),
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The `count` values of tensor `name` from its bytes. A size that disagrees with the shape, a BOOL byte other
 * than 0 or 1, a 64-bit integer beyond 2^53 or a BYTES element that is cut short or not UTF-8 is 400.
 */
export function decodeTensor(name: string, datatype: KServeDatatype, bytes: Buffer, count: number): unknown[] {
  const bad = (why: string): never => {
    throw new InvalidRequestError(`input '${name}': ${why}`);
  };
  if (datatype === 'BYTES') return decodeBytes(bytes, count, bad);
  const size = ELEMENT_BYTES[datatype];
  if (bytes.length !== count * size) {
    bad(`${count} ${datatype} values take ${count * size} bytes, binary_data_size is ${bytes.length}`);
  }
  const read = READ[datatype];
  const values = new Array<unknown>(count);
  for (let i = 0; i < count; i++) {
    const v = read(bytes, i * size);
    if (typeof v === 'bigint') {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        bad(`value ${v} at element ${i} is beyond what this server takes (2^53)`);
      }
      values[i] = Number(v);
    } else {
      if (datatype === 'BOOL' && bytes[i]! > 1) bad(`BOOL element ${i} is byte ${bytes[i]}, not 0 or 1`);
      values[i] = v;
    }
  }
  return values;
}

function decodeBytes(bytes: Buffer, count: number, bad: (why: string) => never): string[] {
  const values: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) bad(`BYTES element ${values.length}: its 4-byte length is cut short`);
    const length = bytes.readUInt32LE(at);
    at += 4;
    if (at + length > bytes.length) {
      bad(`BYTES element ${values.length} says ${length} bytes, ${bytes.length - at} are left`);
    }
    try {
      values.push(utf8.decode(bytes.subarray(at, at + length)));
    } catch {
      bad(`BYTES element ${values.length} is not UTF-8 text`);
    }
    at += length;
  }
  if (values.length !== count) bad(`the shape holds ${count} BYTES elements, binary data has ${values.length}`);
  return values;
}

/** IEEE 754 half precision to a number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Output values as bytes, for an output asked for with `binary_data` (FP16 is not an output datatype here). */
export function encodeTensor(datatype: KServeDatatype, values: readonly unknown[]): Buffer {
  if (datatype === 'BYTES') {
    const parts = values.map((v) => Buffer.from(String(v), 'utf8'));
    const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0));
    let at = 0;
    for (const p of parts) {
      at = out.writeUInt32LE(p.length, at);
      at += p.copy(out, at);
    }
    return out;
  }
  if (datatype === 'FP16') throw new Error('FP16 outputs are not encoded');
  const size = ELEMENT_BYTES[datatype];
  const out = Buffer.alloc(values.length * size);
  const write = WRITE[datatype];
  for (let i = 0; i < values.length; i++) write(out, values[i], i * size);
  return out;
}

const WRITE: Record<Exclude<Fixed, 'FP16'>, (b: Buffer, v: unknown, at: number) => void> = {
  BOOL: (b, v, at) => b.writeUInt8(v ? 1 : 0, at),
  UINT8: (b, v, at) => b.writeUInt8(Number(v), at),
  INT8: (b, v, at) => b.writeInt8(Number(v), at),
  UINT16: (b, v, at) => b.writeUInt16LE(Number(v), at),
  INT16: (b, v, at) => b.writeInt16LE(Number(v), at),
  UINT32: (b, v, at) => b.writeUInt32LE(Number(v), at),
  INT32: (b, v, at) => b.writeInt32LE(Number(v), at),
  FP32: (b, v, at) => b.writeFloatLE(Number(v), at),
  UINT64: (b, v, at) => b.writeBigUInt64LE(BigInt(v as number), at),
  INT64: (b, v, at) => b.writeBigInt64LE(BigInt(v as number), at),
  FP64: (b, v, at) => b.writeDoubleLE(Number(v), at),
};
