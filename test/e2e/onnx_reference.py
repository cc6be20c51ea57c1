#!/usr/bin/python3
"""Independent numpy interpreter for ONNX graphs (reference for e2e tests).

Covers the op subset emitted by our language-model exports (opsets 13-17)
plus the custom op longctx::SelectiveScan. Depends only on numpy and onnx.

Module use:  run_model(model_path_or_proto, {"input_ids": arr}) -> {name: arr}
CLI:         onnx_reference.py MODEL --inputs NAME=x.npy ... --outputs DIR
"""
import argparse
import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

def _np_dtype(onnx_enum):
    """ONNX TensorProto.DataType enum -> numpy dtype (onnx 1.12 has no helper)."""
    helper = getattr(onnx.helper, "tensor_dtype_to_np_dtype", None)
    if helper is not None:
        return np.dtype(helper(onnx_enum))
    from onnx import mapping
    return np.dtype(mapping.TENSOR_TYPE_TO_NP_TYPE[onnx_enum])


def _attrs(node, base_dir=""):
    """Node attributes as plain Python values (tensors become numpy arrays)."""
    out = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = numpy_helper.to_array(a.t, base_dir)
        else:
            out[a.name] = onnx.helper.get_attribute_value(a)
    return out


def _axes(x):
    return [int(a) for a in np.asarray(x).reshape(-1)]


def _norm_axis(axis, rank):
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


# ----------------------------------------------------------------------------
# Op implementations. Signature: fn(ctx, inputs, attrs) -> tuple of outputs.
# `inputs` holds None for omitted optional inputs; ctx carries opset/outputs.
# ----------------------------------------------------------------------------

class _Ctx:
    def __init__(self, opset, n_outputs):
        self.opset = opset
        self.n_outputs = n_outputs


def _same_type(fn):
    """Binary/elementwise op whose result keeps input 0's dtype.

    numpy would silently promote e.g. float32 ** int64 to float64; ONNX does not.
    """
    def op(ctx, ins, at):
        return (np.asarray(fn(*ins)).astype(ins[0].dtype, copy=False),)
    return op


def _bool_out(fn):
    def op(ctx, ins, at):
        return (np.asarray(fn(*ins), dtype=bool),)
    return op


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        # C-style truncating division (what ONNX Runtime and our runtime do),
        # not numpy's floor division.
        q = np.floor_divide(a, b)
        fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return q + fix.astype(q.dtype)
    return np.divide(a, b)


def _sigmoid(x):
    # exp(-|x|) never overflows; both branches are exact rearrangements.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def _softplus(x):
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


_erf_vec = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x):
    return _erf_vec(x.astype(np.float64)).astype(x.dtype) if x.size else x.copy()


def _softmax_axis(ctx, x, at):
    """Return (axis list, reshaped-x, original shape) for (Log)Softmax.

    Opset >= 13: normalise along one axis (default -1).
    Opset < 13: coerce to 2D at `axis` (default 1) and normalise rows.
    """
    if ctx.opset >= 13:
        return _norm_axis(at.get("axis", -1), x.ndim), x, None
    axis = _norm_axis(at.get("axis", 1), x.ndim)
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    return 1, x.reshape(rows, -1), x.shape


def op_softmax(ctx, ins, at):
    axis, x, shape = _softmax_axis(ctx, ins[0], at)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    y = e / np.sum(e, axis=axis, keepdims=True)
    return (y.reshape(shape) if shape is not None else y,)


def op_log_softmax(ctx, ins, at):
    axis, x, shape = _softmax_axis(ctx, ins[0], at)
    s = x - np.max(x, axis=axis, keepdims=True)
    y = s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    return (y.reshape(shape) if shape is not None else y,)


def _reduce(np_fn, axes_from_input_since):
    """Reduce* op; axes come from input 1 once opset >= axes_from_input_since."""
    def op(ctx, ins, at):
        x = ins[0]
        if ctx.opset >= axes_from_input_since:
            axes = ins[1] if len(ins) > 1 else None
            axes = None if axes is None else _axes(axes)
        else:
            axes = at.get("axes")
            axes = None if axes is None else [int(a) for a in axes]
        keep = bool(at.get("keepdims", 1))
        if not axes:
            if at.get("noop_with_empty_axes", 0):
                return (x.copy(),)
            axes = list(range(x.ndim))
        axes = tuple(sorted({_norm_axis(a, x.ndim) for a in axes}))
        y = np_fn(x, axis=axes, keepdims=keep)
        return (np.asarray(y).astype(x.dtype, copy=False),)
    return op


def op_gather(ctx, ins, at):
    x, idx = ins
    axis = _norm_axis(at.get("axis", 0), x.ndim)
    idx = np.asarray(idx).astype(np.int64)
    # ONNX allows negative indices (count from the end); np.take does the same.
    if idx.size and (idx.min() < -x.shape[axis] or idx.max() >= x.shape[axis]):
        raise IndexError(f"Gather index out of range for dim {x.shape[axis]}")
    return (np.take(x, idx, axis=axis),)


def op_gemm(ctx, ins, at):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    if at.get("transA", 0):
        a = a.T
    if at.get("transB", 0):
        b = b.T
    y = at.get("alpha", 1.0) * np.matmul(a, b)
    if c is not None:
        y = y + at.get("beta", 1.0) * c
    return (y.astype(ins[0].dtype, copy=False),)


def op_transpose(ctx, ins, at):
    perm = at.get("perm")
    return (np.transpose(ins[0], perm if perm is None else list(perm)),)


def op_reshape(ctx, ins, at):
    x, shape = ins[0], _axes(ins[1])
    allowzero = at.get("allowzero", 0)
    out = []
    for i, d in enumerate(shape):
        # 0 means "copy input dim" unless allowzero, where it is a literal 0.
        out.append(x.shape[i] if d == 0 and not allowzero else d)
    if out.count(-1) > 1:
        raise ValueError(f"Reshape: more than one -1 in {shape}")
    return (np.reshape(x, out),)


def op_unsqueeze(ctx, ins, at):
    x = ins[0]
    axes = _axes(ins[1]) if ctx.opset >= 13 else list(at["axes"])
    rank = x.ndim + len(axes)
    axes = sorted(_norm_axis(a, rank) for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return (x.reshape(shape),)


def op_squeeze(ctx, ins, at):
    x = ins[0]
    if ctx.opset >= 13:
        axes = ins[1] if len(ins) > 1 else None
    else:
        axes = at.get("axes")
    if axes is None:
        return (np.squeeze(x),)
    axes = tuple(_norm_axis(a, x.ndim) for a in _axes(axes))
    return (np.squeeze(x, axis=axes),)


def op_concat(ctx, ins, at):
    ins = [i for i in ins if i is not None]
    axis = _norm_axis(at["axis"], ins[0].ndim)
    return (np.concatenate(ins, axis=axis),)


def op_split(ctx, ins, at):
    x = ins[0]
    axis = _norm_axis(at.get("axis", 0), x.ndim)
    if ctx.opset >= 13:
        split = ins[1] if len(ins) > 1 else None
    else:
        split = at.get("split")
    n = ctx.n_outputs
    if split is None or len(_axes(split)) == 0:
        if x.shape[axis] % n:
            raise ValueError(f"Split: dim {x.shape[axis]} not divisible by {n}")
        split = [x.shape[axis] // n] * n
    split = _axes(split)
    if sum(split) != x.shape[axis] or len(split) != n:
        raise ValueError(f"Split: sizes {split} do not match dim {x.shape[axis]} / {n} outputs")
    return tuple(np.split(x, np.cumsum(split)[:-1], axis=axis))


def op_slice(ctx, ins, at):
    x = ins[0]
    if ctx.opset >= 10:
        starts, ends = _axes(ins[1]), _axes(ins[2])
        axes = _axes(ins[3]) if len(ins) > 3 and ins[3] is not None else None
        steps = _axes(ins[4]) if len(ins) > 4 and ins[4] is not None else None
    else:
        starts, ends = list(at["starts"]), list(at["ends"])
        axes, steps = at.get("axes"), None
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    sl = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _norm_axis(a, x.ndim)
        dim = x.shape[a]
        if st == 0:
            raise ValueError("Slice: step 0")
        # Spec: negative values count from the end, then clamp. INT64_MAX /
        # INT64_MIN ends just clamp to the extremes.
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s = min(max(s, 0), dim)
            e = min(max(e, 0), dim)
        else:
            s = min(max(s, 0), dim - 1)
            e = min(max(e, -1), dim - 1)
        # A clamped end of -1 means "before index 0"; Python needs None for it.
        sl[a] = slice(s, None if e < 0 else e, st)
    return (x[tuple(sl)].copy(),)


def op_expand(ctx, ins, at):
    x, shape = ins[0], _axes(ins[1])
    # Bidirectional broadcast: a target dim of 1 keeps the input's dim.
    out = np.broadcast_shapes(x.shape, tuple(shape))
    return (np.broadcast_to(x, out).copy(),)


def op_cast(ctx, ins, at):
    return (ins[0].astype(_np_dtype(at["to"])),)


def op_castlike(ctx, ins, at):
    return (ins[0].astype(ins[1].dtype),)


def op_constant(ctx, ins, at):
    if "value" in at:
        return (np.asarray(at["value"]),)
    if "value_float" in at:
        return (np.array(at["value_float"], dtype=np.float32),)
    if "value_floats" in at:
        return (np.array(at["value_floats"], dtype=np.float32),)
    if "value_int" in at:
        return (np.array(at["value_int"], dtype=np.int64),)
    if "value_ints" in at:
        return (np.array(at["value_ints"], dtype=np.int64),)
    raise NotImplementedError(f"Constant with attributes {sorted(at)}")


def op_constant_of_shape(ctx, ins, at):
    value = at.get("value", np.zeros([1], dtype=np.float32))
    value = np.asarray(value).reshape(-1)
    return (np.full(_axes(ins[0]), value[0], dtype=value.dtype),)


def op_shape(ctx, ins, at):
    shape = np.array(ins[0].shape, dtype=np.int64)
    rank = len(shape)
    start, end = at.get("start", 0), at.get("end", rank)
    # Opset 15: negative start/end count from the back; both clamp to [0, rank].
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return (shape[start:end].copy(),)


def op_range(ctx, ins, at):
    start, limit, delta = (np.asarray(i).reshape(()) for i in ins)
    n = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    # Spec: output[i] = start + i * delta, in start's dtype.
    return ((start + np.arange(n, dtype=start.dtype) * delta).astype(start.dtype),)


def op_trilu(ctx, ins, at):
    x = ins[0]
    k = int(np.asarray(ins[1]).reshape(())) if len(ins) > 1 and ins[1] is not None else 0
    fn = np.triu if at.get("upper", 1) else np.tril
    return (fn(x, k),)  # numpy applies to the last two axes, as ONNX does


def op_dropout(ctx, ins, at):
    # Inference: identity; the optional mask is all True.
    return (ins[0].copy(), np.ones(ins[0].shape, dtype=bool))


def op_layer_norm(ctx, ins, at):
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    axis = _norm_axis(at.get("axis", -1), x.ndim)
    eps = at.get("epsilon", 1e-5)
    red = tuple(range(axis, x.ndim))
    mean = np.mean(x, axis=red, keepdims=True)
    d = x - mean
    var = np.mean(d * d, axis=red, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    y = d * inv * scale
    if bias is not None:
        y = y + bias
    y = y.astype(x.dtype, copy=False)
    # Only the first output is required; mean / inv-std follow the spec shapes.
    return (y, mean.astype(np.float32), inv.astype(np.float32))


def op_variadic(np_fn):
    def op(ctx, ins, at):
        ins = [i for i in ins if i is not None]
        y = ins[0]
        for i in ins[1:]:
            y = np_fn(y, i)
        return (np.asarray(y).astype(ins[0].dtype, copy=False).copy(),)
    return op


def op_selective_scan(ctx, ins, at):
    """longctx::SelectiveScan(u, delta, A, B, C) -> y, computed in float64.

    h_t = exp(delta_t * A) * h_{t-1} + (delta_t * u_t)[..., None] * B_t[:, None, :]
    y_t = sum_n h_t * C_t,   h: [B, E, N], h_0 = 0.
    """
    u, delta, A, Bm, Cm = ins[:5]
    out_dtype = u.dtype
    u, delta, A, Bm, Cm = (np.asarray(t, dtype=np.float64) for t in (u, delta, A, Bm, Cm))
    b, s, e = u.shape
    n = A.shape[1]
    if delta.shape != u.shape or A.shape != (e, n) or Bm.shape != (b, s, n) or Cm.shape != (b, s, n):
        raise ValueError(f"SelectiveScan: bad shapes u{u.shape} delta{delta.shape} "
                         f"A{A.shape} B{Bm.shape} C{Cm.shape}")
    h = np.zeros((b, e, n), dtype=np.float64)
    y = np.empty((b, s, e), dtype=np.float64)
    for t in range(s):
        dt = delta[:, t, :]                                   # [B, E]
        h = np.exp(dt[:, :, None] * A[None]) * h \
            + (dt * u[:, t, :])[:, :, None] * Bm[:, t, None, :]
        y[:, t, :] = np.einsum("ben,bn->be", h, Cm[:, t, :])
    return (y.astype(out_dtype),)


def _unary(fn):
    return _same_type(fn)


OPS = {
    "Gather": op_gather,
    "MatMul": _same_type(np.matmul),
    "Gemm": op_gemm,
    "Add": _same_type(np.add),
    "Sub": _same_type(np.subtract),
    "Mul": _same_type(np.multiply),
    "Div": _same_type(_div),
    "Pow": _same_type(np.power),
    "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal),
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Tanh": _unary(np.tanh),
    "Erf": _unary(_erf),
    "Sigmoid": _unary(_sigmoid),
    "Softplus": _unary(_softplus),
    "Relu": _unary(lambda x: np.maximum(x, 0)),
    "Cos": _unary(np.cos),
    "Sin": _unary(np.sin),
    "Softmax": op_softmax,
    "LogSoftmax": op_log_softmax,
    "ReduceMean": _reduce(np.mean, 18),
    "ReduceMax": _reduce(np.max, 18),
    "ReduceSum": _reduce(np.sum, 13),
    "Transpose": op_transpose,
    "Reshape": op_reshape,
    "Unsqueeze": op_unsqueeze,
    "Squeeze": op_squeeze,
    "Concat": op_concat,
    "Split": op_split,
    "Slice": op_slice,
    "Expand": op_expand,
    "Where": lambda ctx, ins, at: (np.where(ins[0], ins[1], ins[2]),),
    "Equal": _bool_out(np.equal),
    "Less": _bool_out(np.less),
    "Greater": _bool_out(np.greater),
    "LessOrEqual": _bool_out(np.less_equal),
    "GreaterOrEqual": _bool_out(np.greater_equal),
    "Not": _bool_out(np.logical_not),
    "And": _bool_out(np.logical_and),
    "Or": _bool_out(np.logical_or),
    "Cast": op_cast,
    "CastLike": op_castlike,
    "Constant": op_constant,
    "ConstantOfShape": op_constant_of_shape,
    "Shape": op_shape,
    "Range": op_range,
    "Trilu": op_trilu,
    "Identity": lambda ctx, ins, at: (ins[0].copy(),),
    "Dropout": op_dropout,
    "LayerNormalization": op_layer_norm,
    "Max": op_variadic(np.maximum),
    "Min": op_variadic(np.minimum),
}

def op_clip(ctx, ins, at):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else None
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else None
    if lo is not None:
        x = np.maximum(x, lo)
    if hi is not None:
        x = np.minimum(x, hi)
    return (x.astype(ins[0].dtype),)


def op_cumsum(ctx, ins, at):
    x, axis = ins[0], int(np.asarray(ins[1]).reshape(-1)[0])
    if at.get("reverse", 0):
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis, dtype=np.float64 if x.dtype.kind == "f" else x.dtype)
    if at.get("exclusive", 0):
        y = y - (x.astype(np.float64) if x.dtype.kind == "f" else x)
    if at.get("reverse", 0):
        y = np.flip(y, axis)
    return (np.ascontiguousarray(y).astype(ins[0].dtype),)


def op_mean(ctx, ins, at):
    ins = [i for i in ins if i is not None]
    return ((sum(ins[1:], ins[0]) / len(ins)).astype(ins[0].dtype),)


OPS.update({
    "Clip": op_clip,
    "Tile": lambda ctx, ins, at: (np.tile(ins[0], tuple(int(r) for r in ins[1])),),
    "CumSum": op_cumsum,
    "Einsum": lambda ctx, ins, at: (np.einsum(at["equation"].decode() if isinstance(at["equation"], bytes) else at["equation"], *ins).astype(ins[0].dtype),),
    "Mean": op_mean,
    "Sum": op_variadic(np.add),
})

CUSTOM_OPS = {
    ("longctx", "SelectiveScan"): op_selective_scan,
}


def _lookup(domain, op_type):
    if domain in ("", "ai.onnx"):
        return OPS.get(op_type)
    return CUSTOM_OPS.get((domain, op_type))


def _load(model, base_dir):
    """Accept a path or ModelProto; return (model, folder for external data)."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        # External tensors are read lazily by to_array() relative to the
        # model's own folder, as the ONNX spec says.
        m = onnx.load(path, load_external_data=False)
        return m, base_dir if base_dir is not None else os.path.dirname(os.path.abspath(path))
    if isinstance(model, onnx.ModelProto):
        return model, base_dir if base_dir is not None else os.getcwd()
    raise TypeError(f"expected a path or onnx.ModelProto, got {type(model)}")


def unsupported_ops(model):
    """Sorted list of 'domain::Op' (or 'Op') in the graph we cannot run."""
    bad = set()
    for node in model.graph.node:
        if _lookup(node.domain, node.op_type) is None:
            bad.add(f"{node.domain}::{node.op_type}" if node.domain else node.op_type)
    return sorted(bad)


def run_model(model, inputs, base_dir=None):
    """Run `model` (path or ModelProto) on {name: ndarray}; return graph outputs.

    base_dir: folder holding external data (default: the model's folder for a
    path, the current directory for a ModelProto whose data is not loaded).
    """
    model, base_dir = _load(model, base_dir)
    graph = model.graph
    bad = unsupported_ops(model)
    if bad:
        raise NotImplementedError("onnx_reference: unsupported ops: " + ", ".join(bad))

    opset = {imp.domain or "": imp.version for imp in model.opset_import}
    onnx_opset = opset.get("", opset.get("ai.onnx", 0))

    env = {}
    for init in graph.initializer:
        env[init.name] = numpy_helper.to_array(init, base_dir)

    init_names = set(env)
    for inp in graph.input:
        if inp.name in inputs:
            val = np.asarray(inputs[inp.name])
            want = inp.type.tensor_type.elem_type
            # Catch int32-vs-int64 token ids early instead of deep in the graph.
            if want and val.dtype != _np_dtype(want):
                raise TypeError(f"input '{inp.name}': got {val.dtype}, model expects {_np_dtype(want)}")
            env[inp.name] = val
        elif inp.name not in init_names:
            raise KeyError(f"missing value for graph input '{inp.name}'")
    extra = set(inputs) - {i.name for i in graph.input}
    if extra:
        raise KeyError(f"unknown inputs {sorted(extra)}; graph inputs are "
                       f"{[i.name for i in graph.input]}")

    for node in graph.node:  # ONNX requires nodes in topological order
        fn = _lookup(node.domain, node.op_type)
        try:
            ins = [env[n] if n else None for n in node.input]
        except KeyError as e:
            raise KeyError(f"node '{node.name}' ({node.op_type}): input {e} not computed") from None
        # Trailing omitted optional inputs are dropped so len(ins) is meaningful.
        while ins and ins[-1] is None:
            ins.pop()
        ctx = _Ctx(opset.get(node.domain or "", onnx_opset), len(node.output))
        try:
            outs = fn(ctx, ins, _attrs(node, base_dir))
        except Exception as e:
            raise RuntimeError(f"node '{node.name}' ({node.op_type}) failed: {e}") from e
        for name, val in zip(node.output, outs):
            if name:
                env[name] = np.asarray(val)

    return {o.name: env[o.name] for o in graph.output}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--inputs", nargs="*", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--outputs", required=True, metavar="DIR",
                   help="writes DIR/<output name>.npy")
    args = p.parse_args(argv)

    feeds = {}
    for spec in args.inputs:
        name, sep, path = spec.partition("=")
        if not sep:
            p.error(f"--inputs expects NAME=FILE.npy, got '{spec}'")
        feeds[name] = np.load(path)

    try:
        outs = run_model(args.model, feeds)
    except NotImplementedError as e:
        print(e, file=sys.stderr)
        return 2
    os.makedirs(args.outputs, exist_ok=True)
    for name, val in outs.items():
        # Output names may contain '/' or ':' in exported graphs.
        fname = name.replace("/", "_").replace(":", "_") + ".npy"
        np.save(os.path.join(args.outputs, fname), val)
        print(f"{name}: shape={list(val.shape)} dtype={val.dtype} -> {fname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
