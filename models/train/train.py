#!/usr/bin/env python3
"""Train the two small example classifiers shipped with batchline and export them to ONNX.

Produces, for each model <name> in {digits, breast-cancer}:
  models/<name>/1/model.onnx            ONNX model: input "input" float32 [N, F]
                                        -> "label" int64 [N], "probabilities" float32 [N, C]
  models/<name>/config.json             batchline model config (shapes exclude the batch dim)
  models/<name>/testdata/heldout.jsonl  every held-out row + scikit-learn's own prediction
  models/<name>/testdata/summary.json   held-out accuracy, row counts, versions, seed

Deterministic: fixed seed, stratified 75/25 split, deterministic solvers.
Run from anywhere:  python3 models/train/train.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import sklearn
import skl2onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42
TEST_SIZE = 0.25
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
MODELS_DIR = Path(__file__).resolve().parent.parent  # .../models


def _fmt_config(cfg: dict) -> str:
    """Pretty-print config.json with leaf arrays / small objects kept on one line."""
    d = lambda v: json.dumps(v, separators=(", ", ": "))  # noqa: E731
    io = lambda xs: "[\n" + ",\n".join("    " + d(x) for x in xs) + "\n  ]"  # noqa: E731
    lines = [
        f'  "name": {d(cfg["name"])}',
        f'  "description": {d(cfg["description"])}',
        f'  "maxBatchSize": {d(cfg["maxBatchSize"])}',
        f'  "dynamicBatching": {d(cfg["dynamicBatching"])}',
        f'  "inputs": {io(cfg["inputs"])}',
        f'  "outputs": {io(cfg["outputs"])}',
        f'  "labels": {json.dumps(cfg["labels"], separators=(",", ":"))}',
        f'  "postprocess": {d(cfg["postprocess"])}',
    ]
    assert list(cfg) == ["name", "description", "maxBatchSize", "dynamicBatching",
                         "inputs", "outputs", "labels", "postprocess"]
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    assert json.loads(text) == cfg
    return text


def _num(v: np.float32) -> int | float:
    """Exact value of a float32 as a JSON number (integral values written without '.0')."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**24 else f


def build(name: str, X: np.ndarray, y: np.ndarray, labels: list[str],
          pipeline: Pipeline, dataset: str, algo: str) -> dict:
    # Everything (training, sklearn predictions, ONNX, JSONL) uses the same float32 features.
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    n_features = X.shape[1]
    n_classes = len(labels)

    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)
    pipeline.fit(X_tr, y_tr)
    clf = pipeline.steps[-1][1]
    # Class values are 0..C-1, so the ONNX "label" output is also the index into labels[].
    assert list(clf.classes_) == list(range(n_classes)), clf.classes_

    pred = pipeline.predict(X_te)
    proba = pipeline.predict_proba(X_te)
    acc = float((pred == y_te).mean())

    # --- ONNX export -------------------------------------------------------------------
    onx = convert_sklearn(
        pipeline,
        name=name,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        final_types=[("label", Int64TensorType([None])),
                     ("probabilities", FloatTensorType([None, n_classes]))],
        target_opset=TARGET_OPSET,
        options={id(clf): {"zipmap": False}},
    )
    # skl2onnx collects opset domains in a set, so their order depends on PYTHONHASHSEED;
    # sort them so the .onnx bytes are identical from run to run.
    opsets = sorted(((o.domain, o.version) for o in onx.opset_import))
    del onx.opset_import[:]
    for domain, version in opsets:
        onx.opset_import.add(domain=domain, version=version)
    onx.doc_string = f"{name}: {algo} on {dataset}, held-out accuracy {acc:.4f} (seed {SEED})"
    onnx.checker.check_model(onx)
    g = onx.graph
    assert [i.name for i in g.input] == ["input"], [i.name for i in g.input]
    assert [o.name for o in g.output] == ["label", "probabilities"], [o.name for o in g.output]
    assert g.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert g.output[1].type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    out_dir = MODELS_DIR / name
    (out_dir / "1").mkdir(parents=True, exist_ok=True)
    (out_dir / "testdata").mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "1" / "model.onnx"
    model_path.write_bytes(onx.SerializeToString())

    # --- config.json -------------------------------------------------------------------
    cfg = {
        "name": name,
        "description": (f"{dataset} classifier ({n_features} float features -> {n_classes} classes): "
                        f"scikit-learn {algo}, held-out accuracy {acc:.4f} "
                        f"({len(y_te)} rows, seed {SEED})"),
        "maxBatchSize": 128,
        "dynamicBatching": {"maxQueueDelayMs": 0},
        "inputs": [{"name": "input", "dtype": "float32", "shape": [n_features]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": []},
            {"name": "probabilities", "dtype": "float32", "shape": [n_classes]},
        ],
        "labels": labels,
        "postprocess": {"type": "classification", "scores": "probabilities", "softmax": False},
    }
    (out_dir / "config.json").write_text(_fmt_config(cfg))

    # --- held-out data -----------------------------------------------------------------
    # Features: float(np.float32 value) is the exact double of the float32, so parsing the JSON
    # number and casting to float32 reproduces X_te bit-for-bit.
    with open(out_dir / "testdata" / "heldout.jsonl", "w") as f:
        for x, p, pr, t in zip(X_te, pred, proba, y_te):
            row = {
                "inputs": {"input": [_num(v) for v in x]},
                "expected": {"label": int(p), "labelName": labels[int(p)],
                             "probabilities": [float(v) for v in pr]},
                "truth": int(t),
            }
            f.write(json.dumps(row, separators=(",", ":")) + "\n")

    summary = {
        "name": name,
        "dataset": dataset,
        "algorithm": algo,
        "seed": SEED,
        "testSize": TEST_SIZE,
        "stratified": True,
        "nTrain": int(len(y_tr)),
        "nHeldout": int(len(y_te)),
        "nFeatures": int(n_features),
        "nClasses": int(n_classes),
        "sklearnAccuracy": acc,
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
        },
        # target_opset is an upper bound; skl2onnx emits the lowest opsets the graph needs.
        "targetOpset": {("ai.onnx" if k == "" else k): v for k, v in TARGET_OPSET.items()},
        "onnxOpsetImports": {(o.domain or "ai.onnx"): o.version for o in onx.opset_import},
        "onnxIrVersion": onx.ir_version,
        "modelBytes": model_path.stat().st_size,
    }
    (out_dir / "testdata" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{name:14s} acc={acc:.4f} heldout={len(y_te)} train={len(y_tr)} "
          f"model={model_path.stat().st_size} bytes")
    return summary


def main() -> None:
    digits = load_digits()
    build(
        "digits", digits.data, digits.target, [str(c) for c in digits.target_names],
        Pipeline([("scaler", StandardScaler()),
                  ("clf", LogisticRegression(max_iter=2000, random_state=SEED))]),
        dataset="sklearn load_digits (8x8 handwritten digits)",
        algo="StandardScaler + LogisticRegression",
    )
    bc = load_breast_cancer()
    build(
        "breast-cancer", bc.data, bc.target, [str(c) for c in bc.target_names],
        Pipeline([("scaler", StandardScaler()),
                  ("clf", LogisticRegression(max_iter=5000, random_state=SEED))]),
        dataset="sklearn load_breast_cancer (Wisconsin diagnostic)",
        algo="StandardScaler + LogisticRegression",
    )


if __name__ == "__main__":
    main()
