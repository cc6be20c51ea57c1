"""Writes a small language model with a `labels` input as ONNX JSON, and
inputs for it: make_labels_model.py OUT_DIR. Embedding -> residual ReLU MLP
-> LM head; labels mark some positions -100 (ignored), unevenly per row, so
a chunked loss must normalise by the global count of counted labels."""
import json
import os
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(0)
vocab, d, f, batch, seq = 16, 6, 12, 2, 9


def init(name, shape):
    return {"name": name, "dataType": 1, "dims": [str(s) for s in shape],
            "floatData": [float(v) for v in rng.uniform(-0.5, 0.5, size=shape).ravel()]}


def tensor_input(name, elem, dims):
    return {"name": name, "type": {"tensorType": {"elemType": elem, "shape": {"dim": dims}}}}


dims = [{"dimParam": "batch"}, {"dimParam": "seq"}]
model = {
    "irVersion": "8",
    "opsetImport": [{"domain": "", "version": "17"}],
    "producerName": "make_labels_model.py",
    "graph": {
        "name": "labels_lm",
        "node": [
            {"name": "embed", "opType": "Gather", "input": ["emb", "input_ids"], "output": ["h"]},
            {"name": "mlp/up", "opType": "MatMul", "input": ["h", "w_up"], "output": ["u"]},
            {"name": "mlp/act", "opType": "Relu", "input": ["u"], "output": ["a"]},
            {"name": "mlp/down", "opType": "MatMul", "input": ["a", "w_down"], "output": ["m"]},
            {"name": "residual", "opType": "Add", "input": ["h", "m"], "output": ["r"]},
            {"name": "head", "opType": "MatMul", "input": ["r", "w_out"], "output": ["logits"]},
        ],
        "initializer": [init("emb", (vocab, d)), init("w_up", (d, f)), init("w_down", (f, d)),
                        init("w_out", (d, vocab))],
        "input": [tensor_input("input_ids", 7, dims), tensor_input("labels", 7, dims)],
        "output": [tensor_input("logits", 1, dims + [{"dimValue": str(vocab)}])],
    },
}
with open(os.path.join(out, "model.json"), "w") as fh:
    json.dump(model, fh)
ids = rng.randint(0, vocab, size=(batch, seq)).astype(np.int64)
labels = ids.copy()
labels[0, 2:5] = -100
labels[1, 7] = -100
np.save(os.path.join(out, "input_ids.npy"), ids)
np.save(os.path.join(out, "labels.npy"), labels)
