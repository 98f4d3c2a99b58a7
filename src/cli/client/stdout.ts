import { once } from 'node:events';

/**
 * Writes to stdout and waits while its buffer is full, so a million result lines into a slow pipe are never held
 * in memory. A reader that goes away (`| head`) ends the command quietly, as other Unix tools do.
 */
export async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

let epipeHandled = false;
/** From now on, a closed stdout (EPIPE) exits 0 instead of throwing. */
export function exitQuietlyOnClosedStdout(): void {
  if (epipeHandled) return;
  epipeHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
