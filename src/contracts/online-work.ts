// How online work is ordered and what becomes of it when its caller stops waiting. Dependency-free on purpose:
// workflow code imports it as a value (the determinism test bundles it).

/**
 * Temporal task priorities (`priorityKey`: 1 is dispatched first, 5 last, 3 when none is set). The server orders a
 * task queue's backlog by them when its priority matcher is on (BATCHLINE_DYNAMIC_CONFIG). Online tasks share the
 * interactive task queue: a caller waiting on the line (`sync`: sync predict, KServe infer) goes first, then async
 * tasks, then sync tasks whose caller has already had its 504 (`late`). Batch items run on their own task queue at the default,
 * which is also where a server without the priority matcher counts every task.
 */
export const TaskPriority = { sync: 1, async: 2, default: 3, late: 4 } as const;
export type TaskPriority = (typeof TaskPriority)[keyof typeof TaskPriority];

/**
 * What becomes of a sync prediction whose caller's wait ends (a 504, or the caller going away) before it is done:
 * `continue` lets it go on, and one that had not started by then runs as async work at TaskPriority.late, its result
 * read from the task; `cancel` drops it: its execution timeout is its deadline (the server ends it there), and one
 * that a worker takes late all the same is not run (it fails as DEADLINE_EXCEEDED).
 */
export const OnTimeout = { continue: 'continue', cancel: 'cancel' } as const;
export type OnTimeout = (typeof OnTimeout)[keyof typeof OnTimeout];

/** The failure type of a task dropped because it had not started by its deadline (OnTimeout.cancel). */
export const DEADLINE_EXCEEDED = 'DeadlineExceeded';
