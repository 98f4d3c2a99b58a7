#!/usr/bin/env python3
"""Check ONNX (onnxruntime) vs scikit-learn parity on every held-out row.

For each model: ONNX label must equal sklearn's label and max |prob diff| <= 1e-4.
Also checks the graph's input/output names and dtypes against config.json.
Run:  python3 models/train/verify.py      (exit code 1 on any mismatch)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

MODELS_DIR = Path(__file__).resolve().parent.parent
TOL = 1e-4
ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


def verify(name: str) -> bool:
    d = MODELS_DIR / name
    cfg = json.loads((d / "config.json").read_text())
    rows = [json.loads(line) for line in (d / "testdata" / "heldout.jsonl").read_text().splitlines()]
    sess = ort.InferenceSession(str(d / "1" / "model.onnx"), providers=["CPUExecutionProvider"])

    ins = [(i.name, ORT_DTYPES[i.type], i.shape[1:]) for i in sess.get_inputs()]
    outs = [(o.name, ORT_DTYPES[o.type], o.shape[1:]) for o in sess.get_outputs()]
    assert ins == [(i["name"], i["dtype"], i["shape"]) for i in cfg["inputs"]], ins
    assert outs == [(o["name"], o["dtype"], o["shape"]) for o in cfg["outputs"]], outs

    X = np.array([r["inputs"]["input"] for r in rows], dtype=np.float32)
    exp_label = np.array([r["expected"]["label"] for r in rows], dtype=np.int64)
    exp_proba = np.array([r["expected"]["probabilities"] for r in rows], dtype=np.float64)
    truth = np.array([r["truth"] for r in rows], dtype=np.int64)
    assert all(cfg["labels"][r["expected"]["label"]] == r["expected"]["labelName"] for r in rows)

    ok = True
    for bs in (len(rows), 1, 32, 128):  # whole set, and batch sizes the server may use
        labels, probas = [], []
        for s in range(0, len(rows), bs):
            lab, prob = sess.run(["label", "probabilities"], {"input": X[s:s + bs]})
            labels.append(lab)
            probas.append(prob)
        lab, prob = np.concatenate(labels), np.concatenate(probas)
        assert lab.dtype == np.int64 and prob.dtype == np.float32
        n_label_mismatch = int((lab != exp_label).sum())
        max_diff = float(np.abs(prob.astype(np.float64) - exp_proba).max())
        acc = float((lab == truth).mean())
        good = n_label_mismatch == 0 and max_diff <= TOL
        ok &= good
        print(f"{name:14s} batch={bs:<4d} rows={len(rows)} label_mismatches={n_label_mismatch} "
              f"max|prob diff|={max_diff:.3e} onnx_acc={acc:.4f} {'OK' if good else 'FAIL'}")
    return ok


def main() -> None:
    print(f"onnxruntime {ort.__version__}")
    ok = all([verify("digits"), verify("breast-cancer")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
