import type { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/search-attributes.js';

const INDEXED_VALUE_TYPE = { KEYWORD: 2, INT: 3 } as const; // temporal.api.enums.v1.IndexedValueType

/** `--search-attribute` flags for `temporal server start-dev`. */
export function devServerSearchAttributeFlags(): string[] {
  const cliType = { KEYWORD: 'Keyword', INT: 'Int' } as const;
  return SEARCH_ATTRIBUTE_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=${cliType[k.type]}`]);
}

/** Registers the project's search attributes that the namespace lacks (a cluster not started by `batchline dev`). */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !customAttributes?.[k.name]);
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_VALUE_TYPE[k.type]])),
  });
  return missing.map((k) => k.name);
}
