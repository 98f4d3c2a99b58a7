import { createInferenceActivities, type InferenceActivityDeps } from './inference.js';

export type ActivityDeps = InferenceActivityDeps;

/** Every activity the worker registers, bound to its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return { ...createInferenceActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
