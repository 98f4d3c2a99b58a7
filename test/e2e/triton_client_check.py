"""Drives batchline's /v2 with Triton's own Python HTTP client (tritonclient), unchanged.

Run by test/e2e/triton-client.test.ts with the Python tools venv (scripts/python-tools.mjs). Reads its task from
stdin as JSON: {"url": "127.0.0.1:PORT", "key": "<API key>", "digits": [[64 floats], ...], "texts": ["...", ...]}.
Prints one JSON summary on stdout for the test to assert on; on any failure, prints what failed on stderr and
exits 1.
"""

import asyncio
import json
import sys
import traceback

import numpy as np
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient

DIGITS = "digits"
TEXT = "all-minilm-l6-v2"


def digits_infer(client, headers, rows, binary):
    """One infer of `rows` on digits, inputs and outputs as binary or as JSON; returns labels and probabilities."""
    batch = np.asarray(rows, dtype=np.float32)
    inp = httpclient.InferInput("input", list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=binary),
        httpclient.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer(
        DIGITS, [inp], outputs=outputs, headers=dict(headers), request_id=f"digits-{len(rows)}-{binary}"
    )
    labels = result.as_numpy("label")
    probabilities = result.as_numpy("probabilities")
    check(labels.shape == (len(rows),), f"label shape {labels.shape}, expected ({len(rows)},)")
    check(probabilities.shape == (len(rows), 10), f"probabilities shape {probabilities.shape}")
    check(probabilities.dtype == np.float32, f"probabilities dtype {probabilities.dtype}")
    response = result.get_response()
    check(response["id"] == f"digits-{len(rows)}-{binary}", f"response id {response['id']}")
    for output in response["outputs"]:
        has_size = "binary_data_size" in (output.get("parameters") or {})
        check(has_size == binary, f"output {output['name']}: binary_data_size present {has_size}, binary {binary}")
        check(("data" in output) != binary, f"output {output['name']}: data present {'data' in output}")
    return labels.tolist(), probabilities


def text_infer(client, headers, texts, binary):
    inp = httpclient.InferInput("text", [len(texts)], "BYTES")
    inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=np.object_), binary_data=binary)
    out = httpclient.InferRequestedOutput("embedding", binary_data=binary)
    result = client.infer(TEXT, [inp], outputs=[out], headers=dict(headers))
    embedding = result.as_numpy("embedding")
    check(embedding.shape == (len(texts), 384), f"embedding shape {embedding.shape}")
    return embedding


async def aio_infer(url, headers, rows):
    """The asyncio client sends its bodies as application/octet-stream."""
    client = aioclient.InferenceServerClient(url)
    try:
        batch = np.asarray(rows, dtype=np.float32)
        inp = aioclient.InferInput("input", list(batch.shape), "FP32")
        inp.set_data_from_numpy(batch, binary_data=True)
        outputs = [aioclient.InferRequestedOutput("label", binary_data=True)]
        result = await client.infer(DIGITS, [inp], outputs=outputs, headers=dict(headers))
        ready = await client.is_model_ready(DIGITS, headers=headers)
        return result.as_numpy("label").tolist(), ready
    finally:
        await client.close()


def check(ok, message):
    if not ok:
        raise AssertionError(message)


def main():
    task = json.load(sys.stdin)
    # Every infer gets a copy: tritonclient writes Inference-Header-Content-Length into the dict it is given, and
    # a dict used again would send a stale length with the next request (Triton's own server would refuse it too).
    headers = {"Authorization": f"Bearer {task['key']}"}
    rows, texts = task["digits"], task["texts"]
    client = httpclient.InferenceServerClient(task["url"])
    summary = {"requests": {DIGITS: 0, TEXT: 0}, "rows": {DIGITS: 0, TEXT: 0}}

    def count(model, n):
        summary["requests"][model] += 1
        summary["rows"][model] += n

    summary["serverLive"] = client.is_server_live(headers=headers)
    summary["serverReady"] = client.is_server_ready(headers=headers)
    summary["modelReady"] = client.is_model_ready(DIGITS, headers=headers)
    summary["versionReady"] = client.is_model_ready(DIGITS, "1", headers=headers)
    summary["serverMetadata"] = client.get_server_metadata(headers=headers)
    summary["modelMetadata"] = client.get_model_metadata(DIGITS, headers=headers)
    summary["modelConfig"] = client.get_model_config(DIGITS, headers=headers)
    summary["versionConfig"] = client.get_model_config(DIGITS, "1", headers=headers)
    summary["index"] = client.get_model_repository_index(headers=headers)

    runs = {}
    for name, batch, binary in [
        ("json1", rows[:1], False),
        ("binary1", rows[:1], True),
        ("json3", rows[:3], False),
        ("binary3", rows[:3], True),
    ]:
        runs[name] = digits_infer(client, headers, batch, binary)
        count(DIGITS, len(batch))
    summary["digits"] = {name: labels for name, (labels, _) in runs.items()}
    summary["digitsProbabilityDiff"] = float(
        max(
            np.max(np.abs(runs["json1"][1] - runs["binary1"][1])),
            np.max(np.abs(runs["json3"][1] - runs["binary3"][1])),
        )
    )

    # No outputs named: the client sets binary_data_output, so every output comes back binary.
    inp = httpclient.InferInput("input", [2, 64], "FP32")
    inp.set_data_from_numpy(np.asarray(rows[:2], dtype=np.float32), binary_data=True)
    summary["digits"]["allOutputs"] = client.infer(DIGITS, [inp], headers=dict(headers)).as_numpy("label").tolist()
    count(DIGITS, 2)

    json_embedding = text_infer(client, headers, texts, binary=False)
    binary_embedding = text_infer(client, headers, texts, binary=True)
    count(TEXT, len(texts))
    count(TEXT, len(texts))
    summary["text"] = {
        "norms": np.linalg.norm(binary_embedding, axis=1).tolist(),
        "maxDiff": float(np.max(np.abs(json_embedding - binary_embedding))),
    }

    aio_labels, aio_ready = asyncio.run(aio_infer(task["url"], headers, rows[:3]))
    summary["aio"] = {"labels": aio_labels, "modelReady": aio_ready}
    count(DIGITS, 3)

    summary["modelStats"] = client.get_inference_statistics(DIGITS, headers=headers)
    summary["versionStats"] = client.get_inference_statistics(DIGITS, "1", headers=headers)
    summary["allStats"] = client.get_inference_statistics(headers=headers)
    client.close()
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # the test prints this; a traceback says where the protocol and the client disagree
        traceback.print_exc()
        print(f"triton_client_check failed: {err}", file=sys.stderr)
        sys.exit(1)
