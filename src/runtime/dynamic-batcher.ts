import type { ItemResult } from '../contracts/batch.js';
import { InferenceTimeoutError, ModelLoadError } from '../errors.js';
import type { ItemTensor } from './input-validation.js';
import type { ResolvedModel } from './model-repository.js';

/** One item's part of a batch run: its result, or the error that fails that item alone (NonFiniteOutputError). */
export type ItemOutcome = ItemResult | Error;

/**
 * Runs validated items of one model and one shape as one batch; resolves one outcome per item, in order. It rejects
 * only when the run as a whole failed.
 */
export type BatchRunner = (model: ResolvedModel, items: Record<string, ItemTensor>[]) => Promise<ItemOutcome[]>;

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
  /** A run formed by its caller (submitRun): ready at once, and runs whole. */
  whole?: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Coalesces concurrent single-item requests for the same model version (and the same item shape) into one run,
 * as Triton's dynamic batcher does. A batch leaves when it reaches the model's maxBatchSize, or when its oldest
 * item has waited maxQueueDelayMs, or when it can fill a preferred batch size; while every run slot is busy,
 * waiting batches keep growing. A run takes the largest preferred size the waiting items fill (so a deep queue
 * runs at the size the model runs best), else everything waiting up to maxBatchSize. An item whose own outcome is
 * an error fails alone. If a batch run fails, its items are retried one by one, so one bad item never fails its
 * neighbours (a model that cannot load, or a run that timed out, fails them all: rerunning each item of a hung
 * model would only hang again, once per item).
 */
export class DynamicBatcher {
  private readonly queues = new Map<string, Queue>();
  private readonly maxInFlight: number;
  private inFlight = 0;
  /** Runs formed by callers so far (their queues' keys). */
  private runs = 0;

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

  /**
   * Queues validated items that already form one run (a chunk's items of one shape, at most maxBatchSize): they
   * take the next free run slot as they are, without waiting or merging. Resolves one promise per item, as submit.
   */
  submitRun(
    model: ResolvedModel,
    items: Record<string, ItemTensor>[],
    priority: Priority = 'batch',
  ): Promise<ItemResult>[] {
    const q: Queue = { key: `run\u0000${this.runs++}`, model, priority, items: [], due: true, whole: true };
    const results = items.map(
      (tensors) => new Promise<ItemResult>((resolve, reject) => q.items.push({ tensors, resolve, reject })),
    );
    if (items.length > 0) {
      this.queues.set(q.key, q);
      this.pump();
    }
    return results;
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
    if (q.whole || this.options.coalesce === false || q.priority === 'interactive') return true;
    const { maxBatchSize, dynamicBatching } = q.model.config;
    // A delay of 0 is Triton's default: whatever waits goes as soon as a run slot is free.
    if (dynamicBatching.maxQueueDelayMs === 0) return true;
    return (
      q.due || q.items.length >= maxBatchSize || dynamicBatching.preferredBatchSizes.some((p) => p <= q.items.length)
    );
  }

  /**
   * How many of a queue's items the next run takes, as Triton's dynamic batcher decides: the largest preferred
   * batch size the waiting items can fill, else every waiting item up to maxBatchSize.
   */
  private batchSize(q: Queue): number {
    if (q.whole) return q.items.length;
    if (this.options.coalesce === false) return 1;
    const { maxBatchSize, dynamicBatching } = q.model.config;
    const fits = dynamicBatching.preferredBatchSizes.filter((p) => p <= Math.min(q.items.length, maxBatchSize));
    return fits.length > 0 ? Math.max(...fits) : Math.min(q.items.length, maxBatchSize);
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
    const batch = take(q, this.batchSize(q));
    if (q.timer) clearTimeout(q.timer);
    q.timer = undefined;
    q.due = false;
    if (q.items.length > 0) this.startDelay(q); // the rest waits its own delay, measured from now
    // Re-insert at the back so queues of other models get their turn.
    this.queues.delete(q.key);
    if (q.items.length > 0) this.queues.set(q.key, q);
    this.inFlight++;
    this.options.onBatch?.(q.model, batch.length);
    void this.run(q.model, batch);
  }

  /**
   * Runs one batch in its slot. On success the slot is freed, and the next batch dispatched, before the items'
   * results are handed back: their callers' work (storing results) then never delays the next run.
   */
  private async run(model: ResolvedModel, batch: Waiting[]): Promise<void> {
    const release = () => {
      this.inFlight--;
      this.pump();
    };
    let results: ItemOutcome[];
    try {
      results = await this.runBatch(
        model,
        batch.map((w) => w.tensors),
      );
    } catch (err) {
      try {
        await this.isolate(model, batch, err);
      } finally {
        release();
      }
      return;
    }
    release();
    batch.forEach((w, i) => settle(w, results[i]!));
  }

  /** A batch failed: a model that cannot load or a timed-out run fails every item; else each item runs alone. */
  private async isolate(model: ResolvedModel, batch: Waiting[], err: unknown): Promise<void> {
    if (batch.length === 1 || err instanceof ModelLoadError || err instanceof InferenceTimeoutError) {
      batch.forEach((w) => w.reject(err));
      return;
    }
    await Promise.all(
      batch.map(async (w) => {
        try {
          const [result] = await this.runBatch(model, [w.tensors]);
          settle(w, result!);
        } catch (itemErr) {
          w.reject(itemErr);
        }
      }),
    );
  }
}

function settle(w: Waiting, outcome: ItemOutcome): void {
  if (outcome instanceof Error) w.reject(outcome);
  else w.resolve(outcome);
}

/**
 * Takes `size` items off a queue for one run, oldest first. A text queue that holds more than `size` items takes
 * the oldest item with the items nearest its token length: the narrowest range of lengths around it that fills the
 * run (a deep queue runs unpadded, as a loop over length-sorted items does), then the oldest within that range.
 * Unpadded runs matter more than the padded token count suggests: runs that mix lengths within a bucket carry a
 * few more tokens than length-sorted runs but run markedly slower (docs/tuning.md).
 */
function take(q: Queue, size: number): Waiting[] {
  if (!q.model.config.tokenizer || q.items.length <= size) return q.items.splice(0, size);
  const length = (w: Waiting) => tokenCount(q.model, w.tensors);
  const counts = new Map<number, number>();
  for (const w of q.items) {
    const n = length(w);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  const lengths = [...counts.keys()].sort((a, b) => a - b);
  const oldest = length(q.items[0]!);
  let range = { from: lengths[0]!, to: lengths.at(-1)! };
  for (let i = 0; i < lengths.length && lengths[i]! <= oldest; i++) {
    let n = 0;
    for (let j = i; j < lengths.length; j++) {
      n += counts.get(lengths[j]!)!;
      if (n < size || lengths[j]! < oldest) continue;
      if (lengths[j]! - lengths[i]! < range.to - range.from) range = { from: lengths[i]!, to: lengths[j]! };
      break;
    }
  }
  const batch: Waiting[] = [];
  const rest: Waiting[] = [];
  for (const w of q.items) {
    const n = length(w);
    (batch.length < size && n >= range.from && n <= range.to ? batch : rest).push(w);
  }
  q.items = rest;
  return batch;
}

/** Token lengths a text model's run may mix: items of 1-8 tokens share runs, 9-16 theirs, and so on. */
export const TEXT_LENGTH_BUCKET = 8;

/**
 * Items that may share a run. Tensor models: identical shapes. Text models are padded to the batch's longest
 * item, so lengths are bucketed by TEXT_LENGTH_BUCKET tokens: a run pads each item by fewer than 8 tokens. Buckets
 * that doubled (16, 32, 64 ...) padded a sentence of 33 tokens to 64 and ran well behind a loop over
 * length-sorted batches, where fixed buckets of 8 come close to it (docs/tuning.md).
 */
export function shapeKey(model: ResolvedModel, tensors: Record<string, ItemTensor>): string {
  if (model.config.tokenizer) {
    const n = tokenCount(model, tensors);
    return `len<=${Math.ceil(n / TEXT_LENGTH_BUCKET) * TEXT_LENGTH_BUCKET}`;
  }
  return model.config.inputs.map((s) => tensors[s.name]!.dims.join('x')).join('|');
}

/** A text item's length in tokens (its first input's; every text input has one value per token). */
export function tokenCount(model: ResolvedModel, tensors: Record<string, ItemTensor>): number {
  return tensors[model.config.inputs[0]!.name]!.data.length;
}
