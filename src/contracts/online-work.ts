// How online work is ordered and what becomes of it when its caller stops waiting. Dependency-free on purpose:
// workflow code imports it as a value (the determinism test bundles it).

/**
 * Temporal task priorities (`priorityKey`: 1 is dispatched first, 5 last, 3 when none is set). The server orders a
 * task queue's backlog by them when its priority matcher is on (BATCHLINE_DYNAMIC_CONFIG). Online tasks share the
 * interactive task queue: a caller waiting on the line (sync predict, KServe infer) goes first, then async tasks, then
 * sync tasks whose caller has already had its 504 (`late`). Batch items run on their own task queue at the default,
 * which is also where a server without the priority matcher counts every task.
 */
export const TaskPriority = { online: 1, async: 2, default: 3, late: 4 } as const;
export type TaskPriority = (typeof TaskPriority)[keyof typeof TaskPriority];

/**
 * What becomes of a sync prediction that has not started by its deadline (the moment its caller's wait ended with a
 * 504): `continue` runs it anyway, as async work at TaskPriority.late, and its result can be read from the task;
 * `cancel` drops it: a task that has not started is not run (it fails as DEADLINE_EXCEEDED), and the API cancels it
 * when it answers the 504.
 */
export const OnTimeout = { continue: 'continue', cancel: 'cancel' } as const;
export type OnTimeout = (typeof OnTimeout)[keyof typeof OnTimeout];

/** The failure type of a task dropped because it had not started by its deadline (OnTimeout.cancel). */
export const DEADLINE_EXCEEDED = 'DeadlineExceeded';
