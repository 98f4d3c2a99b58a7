import { prettyFactory } from 'pino-pretty';

/** The prefix colour of each kind of process (`worker-2` takes worker's). */
const COLORS: Record<string, number> = {
  temporal: 35,
  ui: 35,
  postgres: 90,
  worker: 36,
  interactive: 34,
  api: 32,
  dev: 33,
  cluster: 33,
};

/**
 * Children log pino JSON; pino-pretty turns each line into `time LEVEL: message {fields}` and passes any other line
 * (the Temporal server's, a crash trace) through as it is. The `[source]` prefix names the process, so pino's own
 * name, pid and hostname are left out.
 */
const prettify = prettyFactory({
  colorize: Boolean(process.stdout.isTTY),
  singleLine: true,
  translateTime: 'SYS:HH:MM:ss.l',
  ignore: 'pid,hostname,name',
});

/** Writes a child's line, pretty-printed, each output line behind a coloured `[source]` prefix. */
export function printLine(source: string, line: string): void {
  const color = COLORS[source.replace(/-\d+$/, '')] ?? 37;
  const prefix = process.stdout.isTTY ? `\x1b[${color}m[${source}]\x1b[0m` : `[${source}]`;
  for (const out of prettify(line).split('\n')) if (out.trim()) process.stdout.write(`${prefix} ${out.trimEnd()}\n`);
}
