import type { ItemResult } from '../contracts/batch.js';
import { ModelLoadError } from '../errors.js';
import type { ItemTensor } from './input-validation.js';
import type { ResolvedModel } from './model-repository.js';

/** Runs validated items of one model and one shape as one batch; resolves one result per item, in order. */
export type BatchRunner = (model: ResolvedModel, items: Record<string, ItemTensor>[]) => Promise<ItemResult[]>;

export interface DynamicBatcherOptions {
  /** Batches running at once across all models (default 1; set it to the inference pool's thread count). */
  maxInFlight?: number;
  /** Coalesce items into batches (default true); false runs every item alone, in arrival order. */
  coalesce?: boolean;
  /** Called with every batch dispatched (metrics, tests). */
  onBatch?: (model: ResolvedModel, size: number) => void;
}

/**
 * 'interactive' items (online predictions, a caller waiting on the line) run before any waiting 'batch' item, never
 * wait out a queue delay, and may take one run slot beyond maxInFlight, so they never queue behind a full set of
 * batch runs.
 */
export type Priority = 'interactive' | 'batch';

interface Waiting {
  tensors: Record<string, ItemTensor>;
  resolve: (r: ItemResult) => void;
  reject: (e: unknown) => void;
}

interface Queue {
  key: string;
  model: ResolvedModel;
  priority: Priority;
  items: Waiting[];
  /** The oldest waiting item has waited maxQueueDelayMs. */
  due: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Coalesces concurrent single-item requests for the same model version (and the same item shape) into one run,
 * as Triton's dynamic batcher does. A batch leaves when it reaches the model's maxBatchSize, or when its oldest
 * item has waited maxQueueDelayMs, or when it reaches a preferred batch size; while every run slot is busy,
 * waiting batches keep growing. If a batch run fails, its items are retried one by one, so one bad item never
 * fails its neighbours (a model that cannot load fails them all: that is not an item's fault).
 */
export class DynamicBatcher {
  private readonly queues = new Map<string, Queue>();
  private readonly maxInFlight: number;
  private inFlight = 0;

  constructor(
    private readonly runBatch: BatchRunner,
    private readonly options: DynamicBatcherOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  /** Queues one validated item; resolves with its own result once its batch has run. */
  submit(model: ResolvedModel, tensors: Record<string, ItemTensor>, priority: Priority = 'batch'): Promise<ItemResult> {
    const key = `${priority}\u0000${model.file}\u0000${shapeKey(model, tensors)}`;
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { key, model, priority, items: [], due: false };
      this.queues.set(key, queue);
    }
    const q = queue;
    return new Promise<ItemResult>((resolve, reject) => {
      q.items.push({ tensors, resolve, reject });
      if (q.items.length === 1) this.startDelay(q);
      this.pump();
    });
  }

  /** Starts the wait of a queue's oldest item (none with a delay of 0: see ready()). */
  private startDelay(q: Queue): void {
    const delay = q.model.config.dynamicBatching.maxQueueDelayMs;
    if (delay === 0 || q.priority === 'interactive') return;
    q.due = false;
    q.timer = setTimeout(() => {
      q.due = true;
      q.timer = undefined;
      this.pump();
    }, delay);
  }

  private ready(q: Queue): boolean {
    if (q.items.length === 0) return false;
    if (this.options.coalesce === false || q.priority === 'interactive') return true;
    const { maxBatchSize, dynamicBatching } = q.model.config;
    // A delay of 0 is Triton's default: whatever waits goes as soon as a run slot is free.
    if (dynamicBatching.maxQueueDelayMs === 0) return true;
    return q.due || q.items.length >= maxBatchSize || dynamicBatching.preferredBatchSizes.includes(q.items.length);
  }

  /**
   * Dispatches ready batches while run slots are free: interactive queues first (with one slot of their own
   * beyond maxInFlight), then the oldest batch queue.
   */
  private pump(): void {
    for (;;) {
      let pick: Queue | undefined;
      for (const q of this.queues.values()) {
        if (!this.ready(q)) continue;
        if (q.priority === 'interactive') {
          if (this.inFlight < this.maxInFlight + 1) pick = q;
          break;
        }
        if (!pick && this.inFlight < this.maxInFlight) pick = q;
      }
      if (!pick) return;
      this.dispatch(pick);
    }
  }

  private dispatch(q: Queue): void {
    const batch = q.items.splice(0, this.options.coalesce === false ? 1 : q.model.config.maxBatchSize);
    if (q.timer) clearTimeout(q.timer);
    q.timer = undefined;
    q.due = false;
    if (q.items.length > 0) this.startDelay(q); // the rest waits its own delay, measured from now
    // Re-insert at the back so queues of other models get their turn.
    this.queues.delete(q.key);
    if (q.items.length > 0) this.queues.set(q.key, q);
    this.inFlight++;
    this.options.onBatch?.(q.model, batch.length);
    void this.run(q.model, batch).finally(() => {
      this.inFlight--;
      this.pump();
    });
  }

  private async run(model: ResolvedModel, batch: Waiting[]): Promise<void> {
    try {
      const results = await this.runBatch(model, batch.map((w) => w.tensors));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1 || err instanceof ModelLoadError) {
        batch.forEach((w) => w.reject(err));
        return;
      }
      // Isolate the culprit: each item on its own.
      await Promise.all(
        batch.map(async (w) => {
          try {
            const [result] = await this.runBatch(model, [w.tensors]);
            w.resolve(result!);
          } catch (itemErr) {
            w.reject(itemErr);
          }
        }),
      );
    }
  }
}

/** Token lengths a text model's run may mix: items of 1-8 tokens share runs, 9-16 theirs, and so on. */
export const TEXT_LENGTH_BUCKET = 8;

/**
 * Items that may share a run. Tensor models: identical shapes. Text models are padded to the batch's longest
 * item, so lengths are bucketed by TEXT_LENGTH_BUCKET tokens: a run pads each item by fewer than 8 tokens. Buckets
 * that doubled (16, 32, 64 ...) padded a sentence of 33 tokens to 64; with all of a chunk's sentences queued at
 * once they ran at 0.75x a loop over length-sorted batches, against 0.97x for buckets of 8 (a one-off probe of
 * the runtime alone, 2,000 MiniLM sentences; BENCHMARKS.md, readings).
 */
function shapeKey(model: ResolvedModel, tensors: Record<string, ItemTensor>): string {
  if (model.config.tokenizer) {
    const n = tensors[model.config.inputs[0]!.name]!.data.length;
    return `len<=${Math.ceil(n / TEXT_LENGTH_BUCKET) * TEXT_LENGTH_BUCKET}`;
  }
  return model.config.inputs.map((s) => tensors[s.name]!.dims.join('x')).join('|');
}
