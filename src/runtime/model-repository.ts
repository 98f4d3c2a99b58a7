import fs from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { ModelLoadError, NotFoundError, VersionNotFoundError } from '../errors.js';
import { ModelConfig, TensorDtype, type TensorSpec } from './model-config.js';
import { MODEL_NAME, MODEL_VERSION } from '../contracts/limits.js';

/** A model version picked from the repository, with the signature that governs it. */
export interface ResolvedModel {
  name: string;
  version: number;
  /** Absolute path of `<name>/<version>/model.onnx`. */
  file: string;
  config: ModelConfig;
  /** Every version on disk, ascending. */
  versions: number[];
}

/**
 * The model repository in Triton's layout: `<root>/<name>/config.json` and `<root>/<name>/<version>/model.onnx`.
 * Versions are positive integers; the latest is used unless one is pinned. A model without config.json gets
 * its signature from the ONNX file (first dimension taken as the batch dimension).
 */
export class ModelRepository {
  private readonly configs = new Map<string, { mtimeMs: number; config: ModelConfig }>();
  private readonly resolved = new Map<string, { at: number; model: Promise<ResolvedModel> }>();

  /**
   * @param root the repository directory
   * @param ttlMs how long a resolution is reused before the disk is read again (default 2000 ms): a new version
   *   or an edited config.json is picked up within this time, and the hot path does no file I/O per item.
   */
  constructor(
    readonly root: string,
    private readonly ttlMs = 2000,
  ) {}

  /** Names of the models on disk. */
  async names(): Promise<string[]> {
    const entries = await fs.readdir(this.root, { withFileTypes: true }).catch(() => []);
    const names: string[] = [];
    for (const e of entries) {
      if (e.isDirectory() && MODEL_NAME.test(e.name) && (await this.versions(e.name)).length > 0) names.push(e.name);
    }
    return names.sort();
  }

  /** Resolves a model and version (latest when omitted); throws NotFoundError naming what is missing. */
  resolve(name: string, version?: number): Promise<ResolvedModel> {
    const key = `${name}@${version ?? 'latest'}`;
    const now = Date.now();
    const hit = this.resolved.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.model;
    const model = this.resolveFromDisk(name, version);
    this.resolved.set(key, { at: now, model });
    model.catch(() => this.resolved.delete(key)); // errors are not cached
    return model;
  }

  private async resolveFromDisk(name: string, version?: number): Promise<ResolvedModel> {
    if (!MODEL_NAME.test(name)) throw new NotFoundError(`model '${name}' not found`);
    const versions = await this.versions(name);
    if (versions.length === 0) {
      const declared = await fs.stat(path.join(this.root, name, 'config.json')).then(
        () => true,
        () => false,
      );
      throw new NotFoundError(
        declared
          ? `model '${name}' has a config.json but no <version>/model.onnx yet (fetched models: see docs/models.md)`
          : `model '${name}' not found in the model repository`,
      );
    }
    const picked = version ?? versions[versions.length - 1]!;
    if (!versions.includes(picked)) {
      throw new VersionNotFoundError(`model '${name}' has no version ${picked} (versions: ${versions.join(', ')})`);
    }
    const file = path.join(this.root, name, String(picked), 'model.onnx');
    return { name, version: picked, file, config: await this.config(name, file), versions };
  }

  private async versions(name: string): Promise<number[]> {
    const dir = path.join(this.root, name);
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    const versions: number[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || !MODEL_VERSION.test(e.name)) continue;
      const exists = await fs.stat(path.join(dir, e.name, 'model.onnx')).then(
        (s) => s.isFile(),
        () => false,
      );
      if (exists) versions.push(Number(e.name));
    }
    return versions.sort((a, b) => a - b);
  }

  private async config(name: string, file: string): Promise<ModelConfig> {
    const configFile = path.join(this.root, name, 'config.json');
    const stat = await fs.stat(configFile).catch(() => undefined);
    if (!stat) return signatureFromOnnx(name, file);
    const cached = this.configs.get(name);
    if (cached && cached.mtimeMs === stat.mtimeMs) return cached.config;
    let raw: unknown;
    try {
      raw = JSON.parse(await fs.readFile(configFile, 'utf8'));
    } catch (err) {
      throw new ModelLoadError(configFile, `not valid JSON: ${(err as Error).message}`);
    }
    const parsed = ModelConfig.safeParse(raw);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new ModelLoadError(configFile, why);
    }
    if (parsed.data.name !== name) {
      throw new ModelLoadError(configFile, `name '${parsed.data.name}' does not match its directory '${name}'`);
    }
    this.configs.set(name, { mtimeMs: stat.mtimeMs, config: parsed.data });
    return parsed.data;
  }
}

/** Reads a signature from the ONNX file itself, for models shipped without config.json. */
async function signatureFromOnnx(name: string, file: string): Promise<ModelConfig> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file);
  } catch (err) {
    throw new ModelLoadError(file, (err as Error).message);
  }
  try {
    const spec = (m: ort.InferenceSession.ValueMetadata): TensorSpec => {
      if (!m.isTensor) throw new ModelLoadError(file, `'${m.name}' is not a tensor; add a config.json`);
      const dtype = TensorDtype.safeParse(m.type);
      if (!dtype.success) throw new ModelLoadError(file, `'${m.name}' has unsupported type ${m.type}`);
      const dims = m.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : -1));
      return { name: m.name, dtype: dtype.data, shape: dims };
    };
    return ModelConfig.parse({
      name,
      inputs: session.inputMetadata.map(spec),
      outputs: session.outputMetadata.map(spec),
    });
  } finally {
    await session.release();
  }
}
