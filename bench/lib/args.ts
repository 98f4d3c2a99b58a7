// Command lines of the benchmarks: node:util parseArgs, strict (an unknown option or a stray argument is an error),
// and numbers checked, so a typo stops the run with the usage instead of measuring something else for an hour.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What parseArgs returns for `config`. */
type Parsed<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;

/**
 * Parses this process's arguments with `config`. `--help`/`-h` prints `usage` and exits 0; a parse error prints the
 * error and `usage` and exits 2.
 */
export function parseBenchArgs<T extends ParseArgsConfig>(usage: string, config: T): Parsed<T> {
  let parsed: Parsed<T>;
  try {
    parsed = parseArgs({
      ...config,
      options: { ...config.options, help: { type: 'boolean', short: 'h' } },
    }) as Parsed<T>;
  } catch (err) {
    usageError(usage, (err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}

/** `value` as an integer of at least `min`; otherwise prints an error naming `--name` with `usage` and exits 2. */
export function intArg(usage: string, name: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usageError(usage, `--${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

/** The command line that reproduces this run, arguments quoted where a shell would split them. */
export function commandLine(script: string): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  return ['node --import tsx', script, ...process.argv.slice(2).map(quote)].join(' ');
}

function usageError(usage: string, message: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}
