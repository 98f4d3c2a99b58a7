/** Deepest nesting of arrays and objects a request may carry: far beyond any model input, far below a stack. */
export const MAX_JSON_DEPTH = 32;

/** What one scan over JSON text found, before JSON.parse builds it. */
export interface JsonScan {
  /** Arrays/objects nest deeper than the limit (the scan stopped there). */
  tooDeep: boolean;
  /** A comma directly inside the outermost array or object: it holds more than one member (or element). */
  manyMembers: boolean;
}

/**
 * Scans JSON text once (its bytes, or a string's UTF-16 code units: the structural characters are ASCII, so either
 * reads the same), skipping strings: how deep it nests, and whether the outermost value has more than one member.
 */
export function scanJson(text: Uint8Array | string, max = MAX_JSON_DEPTH): JsonScan {
  const str = typeof text === 'string';
  let depth = 0;
  let inString = false;
  let manyMembers = false;
  for (let i = 0; i < text.length; i++) {
    const c = str ? text.charCodeAt(i) : text[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return { tooDeep: true, manyMembers };
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && depth === 1) manyMembers = true;
  }
  return { tooDeep: false, manyMembers };
}

/** Whether JSON text nests arrays/objects deeper than `max`, so a hostile body is refused before JSON.parse. */
export function jsonDepthExceeds(text: Uint8Array | string, max = MAX_JSON_DEPTH): boolean {
  return scanJson(text, max).tooDeep;
}
