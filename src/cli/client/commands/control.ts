import type { ControlAccepted, RetryFailedResponse } from '../../../contracts/batch-control.js';
import type { ApiClient } from '../api-client.js';
import { ExitCode } from '../exit-code.js';
import { batchSubject } from '../follow.js';
import { writeOut } from '../stdout.js';

/** The steering commands and the route each posts to. */
export const ControlCommand = {
  cancel: 'cancel',
  pause: 'pause',
  resume: 'resume',
  retryFailed: 'retry-failed',
} as const;
export type ControlCommand = (typeof ControlCommand)[keyof typeof ControlCommand];

const DONE: Record<ControlCommand, string> = {
  cancel: 'cancel requested for',
  pause: 'paused',
  resume: 'resumed',
  'retry-failed': 'retrying failed items of',
};

/** `batchline cancel|pause|resume|retry-failed ID`: one POST; a batch that has ended is the API's 409. */
export async function control(
  api: ApiClient,
  command: ControlCommand,
  id: string,
  options: { json?: boolean },
): Promise<number> {
  const answer = await api.json<ControlAccepted | RetryFailedResponse>(
    'POST',
    `/v1/batches/${encodeURIComponent(id)}/${command}`,
    { subject: batchSubject(id) },
  );
  if (options.json) {
    await writeOut(`${JSON.stringify(answer)}\n`);
  } else {
    const retried = 'retried' in answer ? `: ${answer.retried} item(s) queued again` : '';
    await writeOut(`${DONE[command]} batch ${id}${retried}\n`);
  }
  return ExitCode.ok;
}
