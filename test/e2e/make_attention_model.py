"""Writes a one-layer, one-head attention-only language model as ONNX
(embedding -> q, k, v projections -> causal softmax attention as exporters
write it -> output projection -> logits), batch and sequence symbolic:
make_attention_model.py OUT.onnx [--dim 64] [--vocab 16]."""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--dim", type=int, default=64)
p.add_argument("--vocab", type=int, default=16)
a = p.parse_args()
d, v = a.dim, a.vocab
rng = np.random.RandomState(0)


def init(name, shape):
    return numpy_helper.from_array((rng.randn(*shape) / np.sqrt(shape[0])).astype(np.float32), name)


def const(name, value, dtype=np.int64):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype=dtype), name))


nodes = [
    helper.make_node("Gather", ["emb", "input_ids"], ["x"]),
    helper.make_node("MatMul", ["x", "wq"], ["q3"]),
    helper.make_node("MatMul", ["x", "wk"], ["k3"]),
    helper.make_node("MatMul", ["x", "wv"], ["v3"]),
    const("axes1", [1]),
    helper.make_node("Unsqueeze", ["q3", "axes1"], ["q"]),
    helper.make_node("Unsqueeze", ["k3", "axes1"], ["k"]),
    helper.make_node("Unsqueeze", ["v3", "axes1"], ["v"]),
    helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
    helper.make_node("MatMul", ["q", "kt"], ["s"]),
    const("scale", 1.0 / np.sqrt(d), np.float32),
    helper.make_node("Mul", ["s", "scale"], ["ss"]),
    # Causal mask computed from the sequence length, as in longctx-models.
    helper.make_node("Shape", ["input_ids"], ["shape"]),
    const("one_index", [1]), const("two_index", [2]),
    helper.make_node("Slice", ["shape", "one_index", "two_index"], ["seq"]),
    helper.make_node("Concat", ["seq", "seq"], ["square"], axis=0),
    helper.make_node("ConstantOfShape", ["square"], ["ones"],
                     value=numpy_helper.from_array(np.array([1.0], np.float32))),
    helper.make_node("Trilu", ["ones"], ["lower"], upper=0),
    helper.make_node("Cast", ["lower"], ["mask"], to=TensorProto.BOOL),
    const("low", np.finfo(np.float32).min, np.float32),
    helper.make_node("Where", ["mask", "ss", "low"], ["masked"]),
    helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
    helper.make_node("MatMul", ["p", "v"], ["o"]),
    helper.make_node("Squeeze", ["o", "axes1"], ["o3"]),
    helper.make_node("MatMul", ["o3", "wo"], ["logits"]),
]
graph = helper.make_graph(
    nodes, "attention_only",
    [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", v])],
    [init("emb", (v, d)), init("wq", (d, d)), init("wk", (d, d)), init("wv", (d, d)),
     init("wo", (d, v))])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), a.out)
