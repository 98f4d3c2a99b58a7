/**
 * Errors that stay inside one process (`*Error`). The API's error middleware maps each to an HTTP status;
 * activities turn the permanent ones into non-retryable ApplicationFailures.
 */
import { ErrorCode, type ErrorDetail } from './contracts/http-error.js';

export type { ErrorDetail };

/** Base class: `code` is the wire code of the HTTP error shape. */
export abstract class AppError extends Error {
  /** Any code but `internal`, which only the error middleware gives (to errors that are not AppErrors). */
  abstract readonly code: Exclude<ErrorCode, typeof ErrorCode.internal>;
  abstract readonly status: number;
  constructor(
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Thrown by validators (request schemas, model input checks) when input is malformed. */
export class InvalidRequestError extends AppError {
  readonly code = ErrorCode.invalidRequest;
  readonly status = 400;
}

/** Thrown by the model runtime when an item's inputs do not fit the model's signature. */
export class InvalidInputError extends InvalidRequestError {}

/** Thrown when a named thing (batch, model, version) does not exist. */
export class NotFoundError extends AppError {
  readonly code = ErrorCode.notFound;
  readonly status = 404;
}

/** Thrown by the model repository when a model exists but not the version asked for. */
export class VersionNotFoundError extends NotFoundError {}

/**
 * Thrown by the API when a path it serves is asked with a method it does not serve; `allow` lists those it does
 * (the Allow header).
 */
export class MethodNotAllowedError extends AppError {
  readonly code = ErrorCode.methodNotAllowed;
  readonly status = 405;
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super(message);
  }
}

/** Thrown when a model exists but cannot be loaded (bad file); names the file and the reason. */
export class ModelLoadError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot load model ${file}: ${reason}`);
    this.name = 'ModelLoadError';
  }
}

/** Thrown by the body reader when a request is larger than the configured limit. */
export class PayloadTooLargeError extends AppError {
  readonly code = ErrorCode.payloadTooLarge;
  readonly status = 413;
}

/** Thrown by the Temporal client facade when the cluster cannot be reached (and by the stores when they cannot). */
export class UnavailableError extends AppError {
  readonly code = ErrorCode.unavailable;
  readonly status = 503;
  /** The Retry-After header the client gets. */
  readonly retryAfterSeconds: number = 5;
}

/**
 * Thrown by the API's admission control when online predictions are overloaded: nothing was started, and
 * `retryAfterSeconds` (the Retry-After header) says when trying again is worthwhile.
 */
export class OverloadedError extends UnavailableError {
  override readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Thrown by the API when a request body comes in a media type the route does not take. */
export class UnsupportedMediaTypeError extends AppError {
  readonly code = ErrorCode.unsupportedMediaType;
  readonly status = 415;
}

/** Thrown by the auth middleware when a request carries no valid API key. */
export class UnauthorizedError extends AppError {
  readonly code = ErrorCode.unauthorized;
  readonly status = 401;
}

/** Thrown when a request conflicts with the state of what it names (a batch that has ended, a key in use). */
export class ConflictError extends AppError {
  readonly code = ErrorCode.conflict;
  readonly status = 409;
}

/** Thrown when a well-formed request cannot be carried out as asked (an idempotency key reused with another body). */
export class UnprocessableError extends AppError {
  readonly code = ErrorCode.unprocessable;
  readonly status = 422;
}

/** Thrown by the rate limiter; `retryAfterSeconds` becomes the Retry-After header. */
export class RateLimitedError extends AppError {
  readonly code = ErrorCode.rateLimited;
  readonly status = 429;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/**
 * Thrown by sync predict when the result is not ready in time; the work goes on, and `extra` (the task id and
 * its status URL) is added to the error body.
 */
export class TimeoutError extends AppError {
  readonly code = ErrorCode.timeout;
  readonly status = 504;
  constructor(
    message: string,
    readonly extra: Record<string, string>,
  ) {
    super(message);
  }
}

/**
 * Thrown while a process starts when something outside it makes starting pointless (an item store it cannot reach,
 * credentials refused, a schema newer than this code): the CLI prints its message alone, as one line, and exits.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * Thrown by the model runtime when a model's result for an item holds NaN or an infinity (inputs far from what the
 * model was trained on can overflow inside it, although each is a finite float32). The item fails rather than
 * succeed with a meaningless label; permanent, since the same inputs give the same output.
 */
export class NonFiniteOutputError extends Error {
  constructor(
    readonly model: string,
    readonly version: number,
    /** Where in the result: `probabilities[3]`, `embedding[0]`, `outputs.<name>[i]`. */
    readonly at: string,
    readonly value: number,
  ) {
    super(`model '${model}' v${version} gave a non-finite output for this item: ${value} at ${at}`);
    this.name = 'NonFiniteOutputError';
  }
}

/**
 * Thrown by the inference pool to every run on a thread where one run outlasted its run timeout (`runTimeoutMs` in
 * the model's config.json, else INFERENCE_RUN_TIMEOUT_MS): that thread is replaced. Retryable: a hung run says
 * nothing about the items' inputs. Its name is the failure type activities report.
 */
export class InferenceTimeoutError extends Error {
  override readonly name = 'InferenceTimeout';
  constructor(
    /** The model file whose run timed out. */
    readonly file: string,
    readonly timeoutMs: number,
  ) {
    super(
      `a run of model ${file} took longer than ${timeoutMs} ms; its inference thread was replaced, failing every run ` +
        'it held',
    );
  }
}
