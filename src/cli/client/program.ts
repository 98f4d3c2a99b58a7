import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BatchStatus } from '../../contracts/status.js';
import { ApiClient } from './api-client.js';
import { clientSettings } from './client-env.js';
import { control, ControlCommand } from './commands/control.js';
import { list } from './commands/list.js';
import { predict } from './commands/predict.js';
import { results } from './commands/results.js';
import { status } from './commands/status.js';
import { submit } from './commands/submit.js';
import { CliError, ExitCode } from './exit-code.js';
import { exitQuietlyOnClosedStdout } from './stdout.js';

/** The commands this program serves; `batchline` hands any other to the server commands. */
export const CLIENT_COMMANDS: readonly string[] = [
  'submit',
  'status',
  'ls',
  'results',
  'predict',
  ...Object.values(ControlCommand),
];

const ENVIRONMENT_AND_EXIT_CODES = `
Environment:
  BATCHLINE_URL      the API's base URL (default http://127.0.0.1:3000)
  BATCHLINE_API_KEY  sent as "Authorization: Bearer <key>" when set

Exit codes:
  0  done; a batch it reports on succeeded in every item (or still runs)
  1  a batch ended with failed or canceled items (or failed), or results wrote a failed item
  2  usage: an unknown command or option, a bad value, a file that cannot be read
  3  the API: unreachable, 401, 404, or another error it answered

More: docs/cli.md`;

/** A whole number in [min, max] for an option, or commander's usage error naming the value. */
const whole =
  (min: number, max: number) =>
  (raw: string): number => {
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, not '${raw}'.`);
    }
    return Number(raw);
  };

/**
 * Runs one client command (`argv` starts with its name) against the API that `env` names; resolves with the exit
 * code. Every fault is one line on stderr: usage errors from commander, API and connection errors as CliError.
 */
export async function runClient(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  exitQuietlyOnClosedStdout();
  let code: number = ExitCode.ok;
  let client: ApiClient | undefined;
  /** The API client, made when a command runs, so `--help` needs no valid BATCHLINE_URL. */
  const api = () => (client ??= new ApiClient(clientSettings(env)));
  const done = (c: number) => {
    code = c;
  };

  const program = new Command('batchline')
    .exitOverride()
    .showHelpAfterError('(batchline <command> --help for usage)')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText('after', ENVIRONMENT_AND_EXIT_CODES);
  const json = new Option('--json', 'machine-readable output on stdout');

  program
    .command('submit')
    .description('stream an NDJSON file (or - for stdin) into a new batch; prints its id')
    .argument('<file>', 'one {"id"?, "inputs"} object per line, or - for stdin')
    .requiredOption('--model <name>', 'the model to run')
    .option('--version <n>', 'a pinned model version (default: the latest)', whole(1, 999_999_999))
    .option('--chunk <n>', 'items per activity (the option itemsPerActivity, 1-5000)', whole(1, 5000))
    .option('--follow', 'show progress until the batch ends; exit 1 if any item failed')
    .addOption(json)
    .action(async (file: string, o) => done(await submit(api(), file, o)));

  program
    .command('status')
    .description("a batch's state, counts, rate and ETA; exits 1 if it ended with failures")
    .argument('<id>', 'the batch id')
    .addOption(json)
    .action(async (id: string, o) => done(await status(api(), id, o)));

  program
    .command('ls')
    .description('the batches of the API key, newest first')
    .addOption(new Option('--status <status>', 'only batches in this state').choices(Object.values(BatchStatus)))
    .option('--model <name>', "only this model's batches")
    .option('--limit <n>', 'batches per page (1-100, default 20)', whole(1, 100))
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .option('--all', 'every page')
    .addOption(json)
    .action(async (o) => done(await list(api(), o)));

  program
    .command('results')
    .description("a batch's finished items as NDJSON on stdout, in index order")
    .argument('<id>', 'the batch id')
    .option('--follow', 'each outcome as it is recorded, until the batch ends')
    .option('--failed', 'failed items only')
    .option('--cursor <index>', 'start at this item index (resumes a run that was cut off)', whole(0, 2 ** 31))
    .addOption(new Option('--json', 'accepted for symmetry: the output is always NDJSON'))
    .action(async (id: string, o) => {
      if (o.follow && o.cursor !== undefined) {
        program.error('error: --cursor resumes the index-ordered listing, not --follow', { exitCode: ExitCode.usage });
      }
      done(await results(api(), id, o));
    });

  for (const command of Object.values(ControlCommand)) {
    const what: Record<ControlCommand, string> = {
      cancel: 'cancel a batch: running items finish, the rest are canceled',
      pause: 'pause a batch: no new item starts',
      resume: 'resume a paused batch',
      'retry-failed': "run a batch's failed items again",
    };
    program
      .command(command)
      .description(what[command])
      .argument('<id>', 'the batch id')
      .addOption(json)
      .action(async (id: string, o) => done(await control(api(), command, id, o)));
  }

  program
    .command('predict')
    .description('one online prediction (POST /v1/predict)')
    .argument('<model>', 'the model')
    .requiredOption('--input <json>', 'the inputs as JSON, e.g. {"input":[...]}; @FILE reads them from a file')
    .option('--version <n>', 'a pinned model version', whole(1, 999_999_999))
    .option('--timeout <ms>', 'how long the API waits for the result', whole(1, 3_600_000))
    .addOption(json)
    .action(async (model: string, o) => done(await predict(api(), model, o)));

  for (const command of program.commands) command.addHelpText('after', ENVIRONMENT_AND_EXIT_CODES);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message (and the usage); help asked for is not an error.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`batchline: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
