import { BatchFileId, type OpenAIFile } from '../contracts/openai.js';
import type { OpenAIBatchRecord } from '../stores/openai-store.js';
import type { RouteDeps } from './deps.js';
import { batchFileLines, type BatchFileKind } from './openai-output.js';

/** A batch's output or error file: written from its event log whenever it is read. */
export interface BatchFile {
  record: OpenAIBatchRecord;
  kind: BatchFileKind;
  /** The file object; its `bytes` are those written so far (counted by writing them). */
  describe(): Promise<OpenAIFile>;
  lines(): AsyncIterable<string>;
  /** Whether the batch has ended, so the file will not grow. */
  complete(): Promise<boolean>;
}

/** The tenant's batch file with this id, or undefined (no such batch, or one that failed validation). */
export async function batchFile(deps: RouteDeps, fileId: string, tenant: string): Promise<BatchFile | undefined> {
  if (!BatchFileId.safeParse(fileId).success) return undefined;
  const [, hex, kind] = /^file-batch_([0-9a-f]+)-(output|errors)$/.exec(fileId)! as unknown as [
    string,
    string,
    BatchFileKind,
  ];
  const record = await deps.openai.getBatch(hex, tenant);
  if (!record || record.errors || !(await deps.batches.store.getBatch(hex))) return undefined;
  const store = deps.batches.store;
  const lines = () => batchFileLines(store, record, kind);
  return {
    record,
    kind,
    lines,
    complete: async () => (await store.getEnd(hex)) !== undefined,
    describe: async () => {
      let bytes = 0;
      for await (const line of lines()) bytes += Buffer.byteLength(line);
      return {
        id: fileId,
        object: 'file',
        bytes,
        created_at: Math.floor(record.createdAt / 1000),
        filename: `batch_${hex}_${kind}.jsonl`,
        purpose: 'batch_output',
        status: 'processed',
        expires_at: null,
      };
    },
  };
}
