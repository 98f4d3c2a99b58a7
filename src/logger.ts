import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger: structured JSON lines on stdout, fixed messages with data. */
export function createLogger(level: string, name: string): Logger {
  return pino({ level, name, base: { pid: process.pid } });
}

const TEMPORAL_LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Routes the Temporal SDK's own logs (worker, workflows, activities) into the process logger, and, given an
 * address, exports the SDK's metrics in Prometheus format there (the worker's /metrics includes them). Call once.
 */
export function routeTemporalLogs(log: Logger, metricsAddress?: string): void {
  const child = log.child({ component: 'temporal' });
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => {
      child[TEMPORAL_LEVELS[entry.level]]({ ...entry.meta }, entry.message);
    }),
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } } : {}),
  });
}
