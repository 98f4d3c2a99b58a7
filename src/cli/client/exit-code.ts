/** How a client command ends (docs/cli.md#exit-codes). A closed set: `as const` plus a derived union. */
export const ExitCode = {
  /** The command did what it was asked; a batch it reports on ended with every item succeeded, or still runs. */
  ok: 0,
  /** A batch ended with failed items, or was canceled, or failed; or `results` wrote a failed item. */
  itemsFailed: 1,
  /** The command line was wrong: an unknown command or option, a bad value, a file that cannot be read. */
  usage: 2,
  /** The API could not be reached or refused the request (401, 404, any other 4xx or 5xx). */
  api: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Thrown by client commands for a fault that ends the command with one line on stderr and `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** The HTTP status of an API error, when there was one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
