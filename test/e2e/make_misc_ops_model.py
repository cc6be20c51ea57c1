"""Writes an ONNX model exercising Einsum, Clip, Tile, CumSum and Mean, with
random inputs: make_misc_ops_model.py OUT_DIR (model.onnx, x.npy, y.npy)."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
f = TensorProto.FLOAT


def const(name, values, dtype=np.float32):
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.array(values, dtype=dtype), name))


nodes = [
    helper.make_node("Einsum", ["x", "y"], ["e1"], equation="bij,bjk->bik"),
    helper.make_node("Einsum", ["e1"], ["e2"], equation="bik->kb"),
    helper.make_node("Einsum", ["x", "x"], ["e3"], equation="bij, bkj"),  # implicit output
    const("lo", -1.0), const("hi", 1.0),
    helper.make_node("Clip", ["e1", "lo", "hi"], ["clipped"]),
    const("repeats", [1, 2, 1], np.int64),
    helper.make_node("Tile", ["x", "repeats"], ["tiled"]),
    const("axis", 1, np.int64),
    helper.make_node("CumSum", ["tiled", "axis"], ["cumsum"], exclusive=1, reverse=1),
    helper.make_node("Neg", ["x"], ["negx"]),
    helper.make_node("Mean", ["x", "negx", "x"], ["mean"]),
]
graph = helper.make_graph(
    nodes, "misc_ops",
    [helper.make_tensor_value_info("x", f, [2, 3, 4]), helper.make_tensor_value_info("y", f, [2, 4, 5])],
    [helper.make_tensor_value_info(n, f, None) for n in ["clipped", "e2", "e3", "cumsum", "mean"]])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
onnx.save(model, os.path.join(out, "model.onnx"))
rng = np.random.RandomState(0)
np.save(os.path.join(out, "x.npy"), rng.randn(2, 3, 4).astype(np.float32))
np.save(os.path.join(out, "y.npy"), rng.randn(2, 4, 5).astype(np.float32))
