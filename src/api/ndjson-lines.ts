import { BatchItem } from '../contracts/batch.js';
import type { ErrorDetail } from '../errors.js';
import { ITEM_ID, MAX_INPUT_NAME_LENGTH, MAX_ITEM_ID_LENGTH } from '../contracts/limits.js';
import { flatNumbersFit, isLineSpace } from '../runtime/input-validation.js';
import type { TensorSpec } from '../runtime/model-config.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { itemRow, type ItemRow } from '../stores/item-store.js';
import { inputProblems } from './batch-submission.js';
import { scanJson, type JsonScan } from './json-depth.js';

/** What an NDJSON body's lines came to, in line order. */
export type LineOutput =
  /** `rows.length` valid items in their stored form, with the line (from 1) of each: a group to append. */
  | { kind: 'rows'; rows: ItemRow[]; lines: number[] }
  /** A line that was not stored, and why (path `line.<n>...`). */
  | { kind: 'bad'; path: (string | number)[]; details: ErrorDetail[] }
  /** Line `line` is item `total`, over the item limit: nothing after it was read. */
  | { kind: 'too-many'; line: number; total: number };

export interface NdjsonLinesOptions {
  model: ResolvedModel;
  maxItems: number;
  /** Valid items per `rows` output (the store's ItemStore.appendSize); the last may hold fewer. */
  groupSize: number;
}

/**
 * Reads an NDJSON body (one `{ id?, inputs }` per line) piece by piece, as it arrives: each line is checked against
 * the model and, if valid, put in the form the store keeps (a common line by one scan of its bytes, see CommonLine;
 * any other by JSON.parse, the item schema and the model's check). Once a line is bad, later valid lines are only
 * checked (a batch with a bad line stores nothing, but its 400 names up to MAX_REPORTED_ISSUES lines); past the item
 * limit it stops. No I/O: readNdjsonItems reads the body and hands the rows to the store.
 */
export class NdjsonLines {
  /** The start of a line that no piece has ended yet (a line may span many pieces). */
  private carry: Buffer[] = [];
  private line = 0;
  /** Items counted so far (lines that are not blank, valid or not). */
  total = 0;
  private bad = false;
  private stopped = false;
  private rows: ItemRow[] = [];
  private lines: number[] = [];
  /** The common line of this model's items, when it has one: checked without parsing it (see commonLine). */
  private readonly common: CommonLine | undefined;

  constructor(private readonly options: NdjsonLinesOptions) {
    this.common = commonLine(options.model);
  }

  /** The outputs of the lines that this piece of the body completes. */
  write(bytes: Uint8Array): LineOutput[] {
    const piece = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: LineOutput[] = [];
    let from = 0;
    for (let nl = piece.indexOf(0x0a); nl !== -1 && !this.stopped; nl = piece.indexOf(0x0a, from)) {
      if (this.carry.length > 0) {
        const line = Buffer.concat([...this.carry, piece.subarray(from, nl)]);
        this.carry = [];
        this.take(line, 0, line.length, out);
      } else {
        this.take(piece, from, nl, out);
      }
      from = nl + 1;
    }
    // copied: the caller may reuse its piece
    if (!this.stopped && from < piece.length) this.carry.push(Buffer.from(piece.subarray(from)));
    return out;
  }

  /** The outputs of the last line and the last (partial) group. */
  end(): LineOutput[] {
    const out: LineOutput[] = [];
    const last = Buffer.concat(this.carry);
    this.carry = [];
    if (!this.stopped) this.take(last, 0, last.length, out);
    if (!this.stopped) this.group(out);
    return out;
  }

  /** Handles the line `bytes[from, to)` (its newline excluded). */
  private take(bytes: Buffer, from: number, to: number, out: LineOutput[]): void {
    this.handle(bytes, from, to, out);
    if (this.rows.length >= this.options.groupSize) this.group(out);
  }

  private group(out: LineOutput[]): void {
    if (this.rows.length > 0) out.push({ kind: 'rows', rows: this.rows, lines: this.lines });
    this.rows = [];
    this.lines = [];
  }

  private handle(bytes: Buffer, from: number, to: number, out: LineOutput[]): void {
    const line = ++this.line;
    if (to > from && bytes[to - 1] === 0x0d) to--; // a CRLF line end
    // Blank (String.prototype.trim would leave nothing): only ASCII whitespace, or, when the first other byte is
    // not ASCII, a text that trims to nothing (a no-break space, say).
    let first = from;
    while (first < to && isAsciiSpace(bytes[first]!)) first++;
    if (first === to) return;
    let text: string | undefined;
    if (bytes[first]! >= 0x80) {
      text = bytes.toString('utf8', from, to);
      if (text.trim() === '') return;
    }
    if (++this.total > this.options.maxItems) {
      this.stopped = true;
      out.push({ kind: 'too-many', line, total: this.total });
      return;
    }
    const row = text === undefined && this.common && commonRow(this.common, bytes, from, to);
    if (row) {
      // What the general path below would find for this line, without building it: a valid item.
      if (this.bad) return;
      this.rows.push(row);
      this.lines.push(line);
      return;
    }
    text ??= bytes.toString('utf8', from, to);
    const fail = (details: ErrorDetail[]) => {
      this.bad = true;
      this.rows = [];
      this.lines = [];
      out.push({ kind: 'bad', path: ['line', line], details });
    };
    const scan = scanJson(text);
    if (scan.tooDeep) return fail([{ path: [], message: 'JSON nested too deeply' }]);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return fail([{ path: [], message: 'not valid JSON' }]);
    }
    const parsed = BatchItem.safeParse(value);
    if (!parsed.success) {
      return fail(
        parsed.error.issues.map((i) => ({
          path: i.path.filter((p): p is string | number => typeof p !== 'symbol'),
          message: i.message,
        })),
      );
    }
    const problems = inputProblems(this.options.model, parsed.data);
    if (problems) return fail(problems);
    if (this.bad) return;
    this.rows.push(storedRow(text, scan, parsed.data));
    this.lines.push(line);
  }
}

/**
 * A model with one numeric tensor input (`input`, say) takes lines that are mostly `{"inputs":{"input":[0,1.5,...]}}`
 * or `{"id":"a-1","inputs":{"input":[...]}}`, as JSON.stringify writes them, or with a space after each colon and
 * comma, as Python's json.dumps does. Such a line is checked by one scan of its bytes (commonRow, flatNumbersFit) and
 * stored with its inputs' text as it came (values the same as the general path would store); any other line, or one
 * the scan is unsure of (an id with an escape, the members in another order, ...), takes the general path
 * (JSON.parse, zod, the model's check), which decides and words the error.
 */
export interface CommonLine {
  /** The input's name as JSON spells it, quotes included, in UTF-8. */
  name: Buffer;
  spec: TensorSpec;
}

export function commonLine(model: ResolvedModel): CommonLine | undefined {
  const { config } = model;
  const spec = config.inputs[0];
  if (config.tokenizer || config.inputs.length !== 1 || !spec) return undefined;
  // a name BatchItem accepts as an input's key
  if (spec.name.length < 1 || spec.name.length > MAX_INPUT_NAME_LENGTH || spec.name === '__proto__') return undefined;
  return { name: Buffer.from(JSON.stringify(spec.name)), spec };
}

/** The tokens of a common line, in UTF-8. */
const TOKEN = {
  open: Buffer.from('{'),
  close: Buffer.from('}'),
  id: Buffer.from('"id"'),
  inputs: Buffer.from('"inputs"'),
  colon: Buffer.from(':'),
  comma: Buffer.from(','),
  quote: Buffer.from('"'),
};

/**
 * The stored row of the common line `bytes[from, to)` (`{ "id"?: <string without escapes>, "inputs": { <the input>:
 * [<numbers>] } }`, members in that order, spaces or tabs between tokens) whose id and values are valid, or
 * undefined. Only its id and its inputs' text are decoded.
 */
export function commonRow({ name, spec }: CommonLine, bytes: Buffer, from: number, to: number): ItemRow | undefined {
  let i = after(bytes, from, to, TOKEN.open);
  if (i < 0) return undefined;
  let id = '';
  const idAt = after(bytes, i, to, TOKEN.id);
  if (idAt >= 0) {
    i = after(bytes, after(bytes, idAt, to, TOKEN.colon), to, TOKEN.quote);
    if (i < 0) return undefined;
    const idFrom = i;
    for (; i < to && bytes[i] !== 0x22; i++) if (bytes[i] === 0x5c) return undefined; // an escape
    if (i >= to) return undefined; // no closing quote
    id = bytes.toString('utf8', idFrom, i);
    if (id.length < 1 || id.length > MAX_ITEM_ID_LENGTH || !ITEM_ID.test(id)) return undefined;
    i = after(bytes, i + 1, to, TOKEN.comma);
  }
  i = spaceFrom(bytes, after(bytes, after(bytes, i, to, TOKEN.inputs), to, TOKEN.colon), to);
  const inputsFrom = i;
  const arrayFrom = spaceFrom(
    bytes,
    after(bytes, after(bytes, after(bytes, i, to, TOKEN.open), to, name), to, TOKEN.colon),
    to,
  );
  if (arrayFrom < 0) return undefined;
  const arrayTo = bytes.indexOf(0x5d, arrayFrom) + 1;
  if (arrayTo === 0 || arrayTo > to || !flatNumbersFit(spec, bytes, arrayFrom, arrayTo)) return undefined;
  const inputsTo = after(bytes, arrayTo, to, TOKEN.close);
  i = spaceFrom(bytes, after(bytes, inputsTo, to, TOKEN.close), to);
  return i === to ? [id, bytes.toString('utf8', inputsFrom, inputsTo)] : undefined;
}

/** The position after spaces from `i`, before `to` (-1 stays -1). */
function spaceFrom(bytes: Buffer, i: number, to: number): number {
  while (i >= 0 && i < to && isLineSpace(bytes[i])) i++;
  return i;
}

/** The position after `token`, which follows spaces from `i`, before `to`; -1 if it does not (or `i` is -1). */
function after(bytes: Buffer, i: number, to: number, token: Buffer): number {
  i = spaceFrom(bytes, i, to);
  if (i < 0 || i + token.length > to) return -1;
  for (let k = 0; k < token.length; k++) if (bytes[i + k] !== token[k]) return -1;
  return i + token.length;
}

/** ASCII's whitespace, as String.prototype.trim removes it (tab, line feed, vertical tab, form feed, CR, space). */
const isAsciiSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** The line `{"inputs":<value>}` holds its inputs' JSON text from here to its last character. */
const INPUTS_ONLY = '{"inputs":';

/**
 * A valid line's item in its stored form. A line that is exactly `{"inputs":<value>}` (one member, no id, nothing
 * around it) already holds its inputs as JSON text: that text is stored as it came, not serialised again. It reads
 * back as the same values (its numbers may be spelled differently: `1.0` for `1`). Any other line is serialised.
 */
function storedRow(text: string, scan: JsonScan, item: BatchItem): ItemRow {
  if (item.id === undefined && !scan.manyMembers && text.startsWith(INPUTS_ONLY) && text.endsWith('}'))
    return ['', text.slice(INPUTS_ONLY.length, -1)];
  return itemRow(item);
}
