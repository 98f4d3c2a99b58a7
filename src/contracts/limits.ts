// Limits shared by the API's schemas and the workflows that enforce them again on messages, and the bounds of
// everything else a client controls: each over-limit value is a 400 naming its field, never a fault further in.
// Dependency-free on purpose: workflow code imports it as a value (the determinism test bundles it).

/** Largest concurrency a batch takes, at submission or by setConcurrency (its activities stay well under
 * Temporal's 2,000 pending per workflow). */
export const MAX_CONCURRENCY = 512;

/**
 * Most items in one shard (or in a batch that runs without shards). A shard carries its items' state across
 * continue-as-new, and Temporal refuses a payload over 2 MB: at this size the worst case (every other item failed,
 * each started a second after the one before, late in a long batch) stays under half of that
 * (test/unit/item-table.test.ts). Chunked batches want large shards: each shard is a child workflow with a fixed cost
 * on the Temporal server (BENCHMARKS.md, "Larger shards for chunked batches").
 */
export const MAX_SHARD_SIZE = 20_000;

/**
 * Batch metadata, bounded as OpenAI's is: at most 16 keys of up to 64 characters, string values of up to 512, and
 * 16 KiB as JSON (UTF-8) in all. It is copied into the batch workflow's memo, whose size Temporal limits.
 */
export const METADATA_MAX_KEYS = 16;
export const METADATA_MAX_KEY_LENGTH = 64;
export const METADATA_MAX_VALUE_LENGTH = 512;
export const METADATA_MAX_BYTES = 16_384;

/**
 * A model name, as the model repository's directories are named: it also goes into Temporal visibility queries,
 * so nothing else (quotes, control characters) may reach them.
 */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A model version, as its directory in the model repository is named. */
export const MODEL_VERSION = /^[1-9]\d{0,8}$/;

/** Longest item id; an item id holds no control characters (PostgreSQL text cannot hold NUL). */
export const MAX_ITEM_ID_LENGTH = 256;
export const ITEM_ID = /^[^\x00-\x1f\x7f]*$/;

/** Longest name of a model input an item's `inputs` may carry. */
export const MAX_INPUT_NAME_LENGTH = 256;

/** Longest webhook callback URL. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** How a webhook callback URL starts: deliveries are made over http or https only (lower case, as URLs are written). */
export const WEBHOOK_URL_SCHEME = /^https?:\/\//;

/** Longest `cursor` of `GET /v1/batches` (Temporal's page token, base64url). */
export const MAX_LIST_CURSOR_LENGTH = 4096;

/** Longest `Batchline-Options` header: BatchOptions as JSON needs a few hundred characters. */
export const MAX_OPTIONS_HEADER_LENGTH = 4096;

/** Longest API key the Authorization header may carry. */
export const MAX_API_KEY_LENGTH = 512;
