// A scripted fake model for workflow tests and history recording (unit tests may fake the model, never Temporal).
import type { ItemInputs, ItemResult } from '../../src/contracts/batch.js';
import { InvalidInputError } from '../../src/errors.js';
import type { RunHandler } from '../../src/runtime/inference.js';

/**
 * InferenceRuntime.inferMany for a runtime whose items run one by one (a fake, or items that must wait on their
 * own): every item is its own run, handed to `onRun` as soon as it is done.
 */
export async function inferEachAlone(
  infer: (model: string, version: number | undefined, inputs: ItemInputs) => Promise<ItemResult>,
  model: string,
  version: number | undefined,
  inputs: ItemInputs[],
  onRun: RunHandler,
): Promise<void> {
  await Promise.all(
    inputs.map(async (item, position) => {
      const outcome = await infer(model, version, item).catch((err: unknown) =>
        err instanceof Error ? err : new Error(String(err)),
      );
      await onRun([position], [outcome]);
    }),
  );
}

/** What a fake item does, picked by its first input value. */
export const Behaviour = { ok: 0, flaky: 1, broken: 2, invalid: 3, block: 4 } as const;

/** A scripted model: input[0] is the behaviour, input[1] the item's key. */
export class FakeModel {
  attempts = new Map<number, number[]>(); // key -> timestamps of each attempt
  healed = false;
  active = 0;
  maxActive = 0;
  private releases: (() => void)[] = [];

  async infer(_model: string, _version: number | undefined, inputs: Record<string, unknown>): Promise<ItemResult> {
    const [behaviour, key] = inputs.input as number[];
    const seen = this.attempts.get(key!) ?? [];
    seen.push(Date.now());
    this.attempts.set(key!, seen);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (behaviour === Behaviour.flaky && seen.length < 3) throw new Error(`transient fault, attempt ${seen.length}`);
      if (behaviour === Behaviour.broken && !this.healed) throw new Error('broken until healed');
      if (behaviour === Behaviour.invalid) throw new InvalidInputError('scripted bad input');
      if (behaviour === Behaviour.block) await new Promise<void>((r) => this.releases.push(r));
      return { model: 'digits', version: 1, label: `key-${key}`, outputs: {} };
    } finally {
      this.active--;
    }
  }

  inferMany(model: string, version: number | undefined, inputs: ItemInputs[], onRun: RunHandler): Promise<void> {
    return inferEachAlone((m, v, i) => this.infer(m, v, i), model, version, inputs, onRun);
  }

  /** How many items are blocked right now. */
  get blocked(): number {
    return this.releases.length;
  }

  release(): void {
    this.releases.splice(0).forEach((r) => r());
  }
}

/** A digits-shaped item (64 values) that the API accepts, carrying a behaviour and a key. */
export const item = (behaviour: number, key: number) => ({
  inputs: { input: [behaviour, key, ...new Array(62).fill(0)] },
});
