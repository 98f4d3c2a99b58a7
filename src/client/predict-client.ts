import { HEX_ID, newHexId } from '../contracts/ids.js';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import type { ItemInputs, ItemResult } from '../contracts/batch.js';
import { DEADLINE_EXCEEDED, OnTimeout, TaskPriority } from '../contracts/online-work.js';
import { taskStatusUrl, type TaskMemo, type TaskResource, type TaskSource } from '../contracts/predict.js';
import { NotFoundError, TimeoutError } from '../errors.js';
import { predictWorkflow } from '../../workflows/predict-workflow.js';
import { BatchTenantKey } from '../../workflows/search-attributes.js';
import { apiConnection } from './connection.js';
import { describeBacklog } from './task-queue-stats.js';
import { grpcCode, GrpcStatus, mapTemporalError } from './temporal-errors.js';

export interface PredictClientOptions {
  address: string;
  namespace: string;
  /** INTERACTIVE_TASK_QUEUE: where prediction workflows and activities run. */
  taskQueue: string;
}

/** Workflow id of an online task: readable in the Temporal UI and CLI. */
export const taskWorkflowId = (taskId: string): string => `task-${taskId}`;

/** setTimeout's largest delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What one online task asks for. */
export interface TaskRequest {
  model: string;
  version?: number;
  items: ItemInputs[];
}

/** Who asks: the API key's tenant, and which endpoint (the task view and metrics tell them apart). */
export interface TaskOwner {
  tenant: string;
  source: TaskSource;
}

/** A caller waiting on the line: when its wait ends (epoch ms), and what becomes of the task if it has not started. */
export interface TaskDeadline {
  at: number;
  onTimeout: OnTimeout;
}

/** The interactive task queue's backlog, as Temporal reports it (approximate, as the server's own stats are). */
export interface InteractiveQueueStats {
  /** Workflow tasks waiting: a new online task's first step. */
  workflowBacklog: number;
  /** Activity tasks waiting: late sync tasks run as activities, and tasks recorded before local activities. */
  activityBacklog: number;
  /**
   * Age of the oldest waiting workflow task that a new sync task would wait behind: those at TaskPriority.sync or
   * before it, and those at the default priority, where a server without the priority matcher counts every task.
   */
  syncBacklogAgeMs: number;
}

/** Where a task stands: still running, its results in item order, or why it did not succeed. */
export type TaskOutcome =
  | { status: 'running' }
  | { status: 'succeeded'; results: ItemResult[] }
  | { status: 'failed' | 'canceled'; error: { type: string; message: string } };

/**
 * A sync task's start did not complete within its caller's deadline (a saturated server): the task may or may not
 * exist. 504 naming it; the Idempotency-Key, if any, keeps the task id, so a retry waits on it rather than starting
 * another (and learns 404 if it never started).
 */
export class TaskStartTimeoutError extends TimeoutError {
  constructor(readonly taskId: string) {
    super(
      `the prediction's task could not be started within its timeout; it may have started: see ${taskStatusUrl(taskId)}`,
      {
        taskId,
        statusUrl: taskStatusUrl(taskId),
      },
    );
  }
}

/**
 * The Temporal client facade for online predictions: starts a `predictWorkflow` per task on the interactive task
 * queue, waits for its result up to a deadline, and describes it for GET /v1/tasks. A task is visible only to
 * its tenant (kept in the workflow's memo): another tenant's task id is NotFoundError, as if it did not exist.
 * Temporal's errors are mapped to the app's (unreachable cluster -> UnavailableError).
 */
export class PredictClient {
  private constructor(
    private readonly connection: Connection,
    readonly client: Client,
    readonly taskQueue: string,
  ) {}

  /** Connects lazily: the API starts even while Temporal is down and answers 503 until it is back. */
  static create(options: PredictClientOptions): PredictClient {
    const connection = apiConnection(options.address);
    return new PredictClient(connection, new Client({ connection, namespace: options.namespace }), options.taskQueue);
  }

  /**
   * Starts a task for already validated items; returns its id. A sync task (one with a `deadline`) is dispatched
   * before async ones (TaskPriority); each tenant is its own fairness key, which a server with fairness on uses to
   * keep one tenant's flood from starving another's tasks.
   */
  async start(request: TaskRequest, owner: TaskOwner, deadline?: TaskDeadline): Promise<string> {
    const taskId = newHexId();
    const memo: TaskMemo = {
      tenant: owner.tenant,
      source: owner.source,
      model: request.model,
      version: request.version ?? null,
      items: request.items.length,
    };
    const start = () =>
      this.client.workflow.start(predictWorkflow, {
        workflowId: taskWorkflowId(taskId),
        taskQueue: this.taskQueue,
        args: [
          {
            taskId,
            model: request.model,
            version: request.version,
            items: request.items,
            ...(deadline ? { budgetMs: Math.max(0, deadline.at - Date.now()), onTimeout: deadline.onTimeout } : {}),
          },
        ],
        memo: { ...memo },
        // The tenant, for listing a tenant's recent tasks (the key batches use: one tenant attribute).
        typedSearchAttributes: [{ key: BatchTenantKey, value: owner.tenant }],
        priority: {
          priorityKey: deadline ? TaskPriority.sync : TaskPriority.async,
          fairnessKey: owner.tenant,
        },
        // Dropped at its deadline by the server itself: it never reaches a worker after it.
        ...(deadline?.onTimeout === OnTimeout.cancel
          ? { workflowExecutionTimeout: Math.max(1, deadline.at - Date.now()) }
          : {}),
      });
    try {
      // A caller's wait bounds the start too: a saturated server must not hold it past its deadline.
      await (deadline ? this.client.withDeadline(deadline.at, start) : start());
    } catch (err) {
      if (deadline && (grpcCode(err) === GrpcStatus.DEADLINE_EXCEEDED || Date.now() >= deadline.at)) {
        throw new TaskStartTimeoutError(taskId);
      }
      mapTemporalError(err, 'task');
    }
    return taskId;
  }

  /**
   * Waits for a task to close, at most `timeoutMs` (or until `signal` aborts: the caller went away), and says
   * where it stands. The wait is Temporal's long poll on the close event, cut off by aborting the call, so a
   * result is returned the moment it exists.
   */
  async wait(taskId: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskOutcome> {
    const controller = new AbortController();
    const stop = () => controller.abort();
    const timer = setTimeout(stop, Math.min(timeoutMs, MAX_TIMER_MS));
    signal?.addEventListener('abort', stop, { once: true });
    try {
      const results = await this.client.withAbortSignal(controller.signal, () => this.handle(taskId).result());
      return { status: 'succeeded', results };
    } catch (err) {
      if (err instanceof WorkflowFailedError) return failedOutcome(err);
      if (controller.signal.aborted) return { status: 'running' };
      return mapTemporalError(err, `task '${taskId}'`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  }

  /** Asks Temporal to cancel a task (best effort: one that has finished stays finished). */
  async cancel(taskId: string): Promise<void> {
    try {
      await this.handle(taskId).cancel();
    } catch (err) {
      mapTemporalError(err, `task '${taskId}'`);
    }
  }

  /** The interactive task queue's backlog, from Temporal's task queue statistics. */
  async queueStats(): Promise<InteractiveQueueStats> {
    try {
      const [workflow, activity] = await Promise.all([
        describeBacklog(this.client, this.taskQueue, 'workflow'),
        describeBacklog(this.client, this.taskQueue, 'activity'),
      ]);
      // Per priority when the server reports it: async and late tasks, dispatched after sync ones, do not count.
      const ahead = [...workflow.byPriority].filter(
        ([key]) => key <= TaskPriority.sync || key === TaskPriority.default,
      );
      return {
        workflowBacklog: workflow.count,
        activityBacklog: activity.count,
        syncBacklogAgeMs:
          workflow.byPriority.size === 0 ? workflow.ageMs : Math.max(0, ...ahead.map(([, b]) => b.ageMs)),
      };
    } catch (err) {
      return mapTemporalError(err, `task queue '${this.taskQueue}'`);
    }
  }

  /** The task's state and result for its tenant; NotFoundError for an unknown id or another tenant's task. */
  async describe(taskId: string, tenant: string): Promise<TaskResource> {
    const notFound = () => new NotFoundError(`task '${taskId}' not found`);
    if (!HEX_ID.test(taskId)) throw notFound();
    const handle = this.handle(taskId);
    let description: Awaited<ReturnType<WorkflowHandle['describe']>>;
    try {
      description = await handle.describe();
    } catch (err) {
      return mapTemporalError(err, `task '${taskId}'`);
    }
    const memo = description.memo as Partial<TaskMemo> | undefined;
    if (description.type !== 'predictWorkflow' || memo?.tenant !== tenant) throw notFound();
    const outcome: TaskOutcome =
      description.status.name === 'RUNNING' ? { status: 'running' } : await this.wait(taskId, 10_000);
    return {
      taskId,
      status: outcome.status,
      source: memo.source ?? 'async',
      model: memo.model ?? '',
      ...(typeof memo.version === 'number' ? { version: memo.version } : {}),
      items: memo.items ?? 0,
      createdAt: description.startTime.toISOString(),
      ...(description.closeTime ? { finishedAt: description.closeTime.toISOString() } : {}),
      ...(outcome.status === 'succeeded'
        ? outcome.results.length === 1
          ? { result: outcome.results[0]! }
          : { results: outcome.results }
        : {}),
      ...(outcome.status === 'failed' || outcome.status === 'canceled' ? { error: outcome.error } : {}),
      statusUrl: taskStatusUrl(taskId),
    };
  }

  /**
   * A tenant's most recent tasks, running ones first then by close time (Temporal's order), without their results (`describe` has those). A failed task's
   * status comes from its failure (a task dropped at its deadline is canceled), the others' from Temporal's
   * execution status. Tasks started before tasks carried their tenant as a search attribute are not listed.
   */
  async list(tenant: string, limit: number): Promise<TaskResource[]> {
    const query = `WorkflowType = 'predictWorkflow' AND ${BatchTenantKey.name} = '${tenant.replace(/['\\]/g, '\\$&')}'`;
    const tasks: TaskResource[] = [];
    try {
      for await (const execution of this.client.workflow.list({ query, pageSize: limit })) {
        const taskId = execution.workflowId.slice(taskWorkflowId('').length);
        const memo = (execution.memo ?? {}) as Partial<TaskMemo>;
        const closed = execution.status.name;
        const status: TaskResource['status'] =
          closed === 'RUNNING' || closed === 'CONTINUED_AS_NEW'
            ? 'running'
            : closed === 'COMPLETED'
              ? 'succeeded'
              : closed === 'CANCELLED' || closed === 'TIMED_OUT'
                ? 'canceled'
                : (await this.wait(taskId, 5_000)).status;
        tasks.push({
          taskId,
          status,
          source: memo.source ?? 'async',
          model: memo.model ?? '',
          ...(typeof memo.version === 'number' ? { version: memo.version } : {}),
          items: memo.items ?? 0,
          createdAt: execution.startTime.toISOString(),
          ...(execution.closeTime ? { finishedAt: execution.closeTime.toISOString() } : {}),
          statusUrl: taskStatusUrl(taskId),
        });
        if (tasks.length >= limit) break;
      }
    } catch (err) {
      return mapTemporalError(err, 'tasks');
    }
    return tasks;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  private handle(taskId: string) {
    return this.client.workflow.getHandle<typeof predictWorkflow>(taskWorkflowId(taskId));
  }
}

/**
 * Why a closed task did not succeed: the innermost ApplicationFailure (the activity's InvalidInput,
 * UnknownModel, ... after its retries), or how Temporal ended it (canceled, terminated, timed out).
 */
function failedOutcome(err: WorkflowFailedError): TaskOutcome {
  let cause: Error | undefined = err.cause;
  let application: ApplicationFailure | undefined;
  for (let e: Error | undefined = cause; e; e = (e as { cause?: Error }).cause) {
    if (e instanceof ApplicationFailure) application = e;
  }
  if (cause instanceof CancelledFailure)
    return { status: 'canceled', error: { type: 'Canceled', message: 'the task was canceled' } };
  // A sync task whose caller asked to cancel it at its deadline (OnTimeout.cancel): its execution timeout, or the
  // workflow's own check when it started late all the same.
  if (cause instanceof TimeoutFailure || application?.type === DEADLINE_EXCEEDED)
    return { status: 'canceled', error: { type: DEADLINE_EXCEEDED, message: 'the task was dropped at its deadline' } };
  if (application)
    return { status: 'failed', error: { type: application.type ?? 'Error', message: application.message } };
  if (cause instanceof TerminatedFailure)
    return { status: 'failed', error: { type: 'Terminated', message: cause.message } };
  cause ??= err;
  return { status: 'failed', error: { type: cause.name, message: cause.message } };
}
