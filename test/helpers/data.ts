import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './temporal.js';

/** One held-out row with scikit-learn's own prediction for it (models/<name>/testdata/heldout.jsonl). */
export interface HeldoutRow {
  inputs: { input: number[] };
  expected: { label: number; labelName: string; probabilities: number[] };
  truth: number;
}

export function heldout(model: 'digits' | 'breast-cancer'): HeldoutRow[] {
  const file = path.join(ROOT, 'models', model, 'testdata', 'heldout.jsonl');
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as HeldoutRow);
}

/** A JSON request against the API under test; returns status, headers and the parsed body. */
export async function http(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
