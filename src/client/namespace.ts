import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { ensureSearchAttributes } from './search-attributes.js';
import { GrpcStatus } from './temporal-errors.js';

/** How long a new namespace's workflow history is kept after the workflow closes. */
const RETENTION = '7 days';

/**
 * Makes a Temporal cluster ready for batchline: registers `namespace` unless it exists, waits until the frontend
 * serves it (its namespace cache refreshes every few seconds), and registers the project's search attributes.
 * What `batchline cluster` does before starting workers, and what docker-compose.yml's `temporal-setup` runs
 * (`batchline temporal-setup`). Returns what it created.
 */
export async function ensureNamespace(
  connection: Connection,
  namespace: string,
  timeoutMs = 60_000,
): Promise<{ namespaceCreated: boolean; searchAttributesAdded: string[] }> {
  let namespaceCreated = false;
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(RETENTION),
    });
    namespaceCreated = true;
  } catch (err) {
    if (!isGrpcServiceError(err) || err.code !== GrpcStatus.ALREADY_EXISTS) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return { namespaceCreated, searchAttributesAdded: await ensureSearchAttributes(connection, namespace) };
}
