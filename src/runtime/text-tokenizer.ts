import fs from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelLoadError } from '../errors.js';
import type { ItemTensor } from './input-validation.js';
import { TEXT_INPUTS } from './model-config.js';
import type { ResolvedModel } from './model-repository.js';

/**
 * Hugging Face tokenizers (tokenizer.json + tokenizer_config.json beside model.onnx), loaded once per model
 * version with @huggingface/tokenizers. encode() truncates to the config's maxLength, keeping the closing
 * special token, as sentence-transformers does.
 */
export class TextTokenizers {
  private readonly loaded = new Map<string, Promise<Tokenizer>>();

  async encode(model: ResolvedModel, text: string): Promise<Record<string, ItemTensor>> {
    const tokenizer = await this.get(model);
    const { maxLength } = model.config.tokenizer!;
    const enc = tokenizer.encode(text, { return_token_type_ids: true });
    let ids = enc.ids;
    let types = enc.token_type_ids ?? new Array<number>(ids.length).fill(0);
    if (ids.length > maxLength) {
      ids = [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!];
      types = [...types.slice(0, maxLength - 1), types[types.length - 1]!];
    }
    const all: Record<string, number[]> = {
      input_ids: ids,
      attention_mask: new Array<number>(ids.length).fill(1),
      token_type_ids: types,
    };
    const tensors: Record<string, ItemTensor> = {};
    for (const spec of model.config.inputs) {
      if (TEXT_INPUTS.includes(spec.name)) tensors[spec.name] = { data: all[spec.name]!, dims: [ids.length] };
    }
    return tensors;
  }

  private get(model: ResolvedModel): Promise<Tokenizer> {
    let pending = this.loaded.get(model.file);
    if (!pending) {
      pending = load(model);
      this.loaded.set(model.file, pending);
      pending.catch(() => this.loaded.delete(model.file));
    }
    return pending;
  }
}

async function load(model: ResolvedModel): Promise<Tokenizer> {
  const dir = path.dirname(model.file);
  const { file, configFile } = model.config.tokenizer!;
  const read = async (name: string) => {
    const p = path.join(dir, name);
    try {
      return JSON.parse(await fs.readFile(p, 'utf8')) as object;
    } catch (err) {
      throw new ModelLoadError(p, `cannot read tokenizer file: ${(err as Error).message}`);
    }
  };
  const [json, config] = await Promise.all([read(file), read(configFile)]);
  try {
    return new Tokenizer(json, config);
  } catch (err) {
    throw new ModelLoadError(path.join(dir, file), `not a usable tokenizer: ${(err as Error).message}`);
  }
}
