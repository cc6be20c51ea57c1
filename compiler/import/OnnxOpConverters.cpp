//===- OnnxOpConverters.cpp - One converter per supported ONNX op ----------===//
//
// Each converter maps an ONNX node with opset 13-18 semantics onto `lc` ops.
// Shape-carrying inputs (Reshape's shape, Slice's starts, axes, ...) must be
// constants by the time they are read; pinned input shapes make the exported
// shape subgraphs fold as they are built.
//
//===----------------------------------------------------------------------===//
#include "compiler/import/NodeConversion.h"

#include "mlir/Dialect/Traits.h"

#include <cctype>
#include <cmath>
#include <limits>

using namespace mlir;

namespace longctx::onnx_import {
namespace {

using llvm::SmallVector;

LogicalResult setResult(NodeContext &ctx, FailureOr<Value> v) {
  if (failed(v))
    return failure();
  ctx.setOutput(0, *v);
  return success();
}

template <typename OpTy> NodeConverter binary() {
  return [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(2, 2)))
      return failure();
    return setResult(ctx, ctx.create<OpTy>(ctx.input(0), ctx.input(1)));
  };
}

/// Max/Min/Sum take any number of inputs.
template <typename OpTy> NodeConverter variadic() {
  return [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1)))
      return failure();
    Value acc = ctx.input(0);
    for (size_t i = 1; i < ctx.numInputs(); ++i) {
      FailureOr<Value> next = ctx.create<OpTy>(acc, ctx.input(i));
      if (failed(next))
        return failure();
      acc = *next;
    }
    ctx.setOutput(0, acc);
    return success();
  };
}

template <typename OpTy> NodeConverter unary() {
  return [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1, 1)))
      return failure();
    return setResult(ctx, ctx.createTyped<OpTy>(ctx.input(0).getType(), ctx.input(0)));
  };
}

/// LessOrEqual and GreaterOrEqual as the negation of the strict opposite.
template <typename OpTy> NodeConverter negatedCompare() {
  return [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(2, 2)))
      return failure();
    FailureOr<Value> strict = ctx.create<OpTy>(ctx.input(0), ctx.input(1));
    if (failed(strict))
      return failure();
    return setResult(ctx, ctx.createTyped<lc::NotOp>(strict->getType(), *strict));
  };
}

LogicalResult convertIdentity(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 3)))
    return failure();
  ctx.setOutput(0, ctx.input(0));
  // Dropout's optional mask output: everything is kept at inference.
  if (ctx.node.opType == "Dropout" && ctx.outputUsed(1)) {
    auto type = RankedTensorType::get(ctx.inputType(0).getShape(), ctx.builder.getI1Type());
    ctx.setOutput(1, ctx.constant(DenseElementsAttr::get(type, true)));
  }
  return success();
}

std::optional<Type> onnxElementType(MLIRContext *context, int64_t onnxType) {
  Builder b(context);
  switch (onnxType) {
  case 1: return b.getF32Type();
  case 11: return b.getF64Type();
  case 10: return b.getF16Type();
  case 16: return b.getBF16Type();
  case 7: return b.getI64Type();
  case 6: return b.getI32Type();
  case 9: return b.getI1Type();
  default: return std::nullopt;
  }
}

FailureOr<Value> castTo(NodeContext &ctx, Value v, Type element) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getElementType() == element)
    return v;
  return ctx.createTyped<lc::CastOp>(RankedTensorType::get(type.getShape(), element), v);
}

LogicalResult convertCast(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 1)))
    return failure();
  int64_t to = ctx.intAttr("to", -1);
  std::optional<Type> element = onnxElementType(ctx.builder.getContext(), to);
  if (!element)
    return ctx.error("Cast to ONNX element type " + Twine(to) + " is not supported");
  return setResult(ctx, castTo(ctx, ctx.input(0), *element));
}

LogicalResult convertCastLike(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  return setResult(ctx, castTo(ctx, ctx.input(0), ctx.inputType(1).getElementType()));
}

LogicalResult convertPow(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  // ONNX allows an exponent of another type; compute in the base's type.
  FailureOr<Value> exponent = castTo(ctx, ctx.input(1), ctx.inputType(0).getElementType());
  if (failed(exponent))
    return failure();
  return setResult(ctx, ctx.create<lc::PowOp>(ctx.input(0), *exponent));
}

LogicalResult convertWhere(NodeContext &ctx) {
  if (failed(ctx.requireInputs(3, 3)))
    return failure();
  return setResult(ctx, ctx.create<lc::WhereOp>(ctx.input(0), ctx.input(1), ctx.input(2)));
}

LogicalResult convertMatMul(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  Value lhs = ctx.input(0), rhs = ctx.input(1);
  auto lt = ctx.inputType(0), rt = ctx.inputType(1);
  if (lt.getRank() == 0 || rt.getRank() == 0)
    return ctx.error("MatMul operands must not be scalars");
  // ONNX promotes 1-D operands to matrices and drops the added dim after.
  bool lhsVector = lt.getRank() == 1, rhsVector = rt.getRank() == 1;
  if (lhsVector) {
    FailureOr<Value> r = ctx.reshape(lhs, {1, lt.getDimSize(0)});
    if (failed(r))
      return failure();
    lhs = *r;
  }
  if (rhsVector) {
    FailureOr<Value> r = ctx.reshape(rhs, {rt.getDimSize(0), 1});
    if (failed(r))
      return failure();
    rhs = *r;
  }
  FailureOr<Value> product = ctx.create<lc::MatMulOp>(lhs, rhs);
  if (failed(product))
    return failure();
  if (!lhsVector && !rhsVector)
    return setResult(ctx, product);
  SmallVector<int64_t> shape(cast<RankedTensorType>(product->getType()).getShape());
  if (rhsVector)
    shape.pop_back();
  if (lhsVector)
    shape.erase(shape.end() - (rhsVector ? 1 : 2));
  return setResult(ctx, ctx.reshape(*product, shape));
}

LogicalResult convertGemm(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 3)))
    return failure();
  auto &b = ctx.builder;
  return setResult(ctx, ctx.create<lc::GemmOp>(
                            ctx.input(0), ctx.input(1), ctx.input(2),
                            b.getF64FloatAttr(ctx.floatAttr("alpha", 1.0)),
                            b.getF64FloatAttr(ctx.floatAttr("beta", 1.0)),
                            b.getBoolAttr(ctx.intAttr("transA", 0) != 0),
                            b.getBoolAttr(ctx.intAttr("transB", 0) != 0)));
}

template <typename OpTy> NodeConverter softmaxLike() {
  return [](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1, 1)))
      return failure();
    int64_t rank = ctx.inputType(0).getRank();
    int64_t axisAttr = ctx.intAttr("axis", ctx.opset >= 13 ? -1 : 1);
    FailureOr<int64_t> axis = ctx.normalizeAxis(axisAttr, rank);
    if (failed(axis))
      return failure();
    // Before opset 13 the input was flattened to 2-D at `axis`: identical
    // only when the axis is the last one.
    if (ctx.opset < 13 && *axis != rank - 1)
      return ctx.error("opset < 13 softmax over a non-last axis is not supported");
    return setResult(ctx, ctx.createTyped<OpTy>(ctx.input(0).getType(), ctx.input(0),
                                                ctx.builder.getI64IntegerAttr(*axis)));
  };
}

template <typename OpTy> NodeConverter reduce(int64_t axesInputFromOpset) {
  return [axesInputFromOpset](NodeContext &ctx) -> LogicalResult {
    if (failed(ctx.requireInputs(1, 2)))
      return failure();
    int64_t rank = ctx.inputType(0).getRank();
    std::vector<int64_t> axes;
    if (ctx.opset >= axesInputFromOpset) {
      if (ctx.hasInput(1)) {
        FailureOr<SmallVector<int64_t>> a = ctx.constantInts(1, "axes");
        if (failed(a))
          return failure();
        axes.assign(a->begin(), a->end());
      }
    } else if (auto a = ctx.intsAttr("axes")) {
      axes = *a;
    }
    if (axes.empty()) {
      if (ctx.intAttr("noop_with_empty_axes", 0)) {
        ctx.setOutput(0, ctx.input(0));
        return success();
      }
      for (int64_t d = 0; d < rank; ++d)
        axes.push_back(d);
    }
    SmallVector<int64_t> normalized;
    for (int64_t a : axes) {
      FailureOr<int64_t> n = ctx.normalizeAxis(a, rank);
      if (failed(n))
        return failure();
      if (!llvm::is_contained(normalized, *n))
        normalized.push_back(*n);
    }
    llvm::sort(normalized);
    return setResult(ctx, ctx.create<OpTy>(ctx.input(0),
                                           ctx.builder.getDenseI64ArrayAttr(normalized),
                                           ctx.builder.getBoolAttr(ctx.intAttr("keepdims", 1) != 0)));
  };
}

LogicalResult convertTranspose(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 1)))
    return failure();
  int64_t rank = ctx.inputType(0).getRank();
  SmallVector<int64_t> perm;
  if (auto p = ctx.intsAttr("perm")) {
    for (int64_t v : *p) {
      FailureOr<int64_t> n = ctx.normalizeAxis(v, rank);
      if (failed(n))
        return failure();
      perm.push_back(*n);
    }
  } else {
    for (int64_t d = rank - 1; d >= 0; --d)
      perm.push_back(d);
  }
  return setResult(ctx, ctx.create<lc::TransposeOp>(ctx.input(0), ctx.builder.getDenseI64ArrayAttr(perm)));
}

LogicalResult convertReshape(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  FailureOr<SmallVector<int64_t>> requested = ctx.constantInts(1, "shape");
  if (failed(requested))
    return failure();
  auto in = ctx.inputType(0);
  bool allowZero = ctx.intAttr("allowzero", 0) != 0;
  SmallVector<int64_t> shape;
  int64_t inferred = -1, known = 1;
  for (size_t i = 0; i < requested->size(); ++i) {
    int64_t d = (*requested)[i];
    if (d == 0 && !allowZero) {
      if (int64_t(i) >= in.getRank())
        return ctx.error("shape entry " + Twine(i) + " is 0 (copy) but the input has rank " +
                         Twine(in.getRank()));
      d = in.getDimSize(i);
    }
    if (d == -1) {
      if (inferred >= 0)
        return ctx.error("shape has more than one -1");
      inferred = int64_t(i);
    } else if (d < 0) {
      return ctx.error("shape entry " + Twine(d) + " is invalid");
    } else {
      known *= d;
    }
    shape.push_back(d);
  }
  if (inferred >= 0) {
    if (known == 0 || in.getNumElements() % known != 0)
      return ctx.error("cannot reshape " + Twine(in.getNumElements()) +
                       " elements: -1 does not divide evenly");
    shape[inferred] = in.getNumElements() / known;
  }
  int64_t total = 1;
  for (int64_t d : shape)
    total *= d;
  if (total != in.getNumElements()) {
    std::string req;
    for (int64_t d : shape)
      req += (req.empty() ? "" : "x") + std::to_string(d);
    return ctx.error("cannot reshape " + Twine(in.getNumElements()) + " elements to [" + req +
                     "]: element counts differ");
  }
  return setResult(ctx, ctx.reshape(ctx.input(0), shape));
}

FailureOr<SmallVector<int64_t>> axesFor(NodeContext &ctx, StringRef what) {
  if (ctx.opset >= 13) {
    if (!ctx.hasInput(1))
      return SmallVector<int64_t>();
    return ctx.constantInts(1, what);
  }
  if (auto a = ctx.intsAttr("axes"))
    return SmallVector<int64_t>(a->begin(), a->end());
  return SmallVector<int64_t>();
}

LogicalResult convertUnsqueeze(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 2)))
    return failure();
  FailureOr<SmallVector<int64_t>> axes = axesFor(ctx, "axes");
  if (failed(axes))
    return failure();
  auto in = ctx.inputType(0);
  int64_t outRank = in.getRank() + int64_t(axes->size());
  SmallVector<bool> inserted(outRank, false);
  for (int64_t a : *axes) {
    FailureOr<int64_t> n = ctx.normalizeAxis(a, outRank);
    if (failed(n))
      return failure();
    if (inserted[*n])
      return ctx.error("axes repeat " + Twine(*n));
    inserted[*n] = true;
  }
  SmallVector<int64_t> shape;
  int64_t next = 0;
  for (int64_t d = 0; d < outRank; ++d)
    shape.push_back(inserted[d] ? 1 : in.getDimSize(next++));
  return setResult(ctx, ctx.reshape(ctx.input(0), shape));
}

LogicalResult convertSqueeze(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 2)))
    return failure();
  FailureOr<SmallVector<int64_t>> axes = axesFor(ctx, "axes");
  if (failed(axes))
    return failure();
  auto in = ctx.inputType(0);
  SmallVector<bool> drop(in.getRank(), false);
  if (axes->empty()) {
    for (int64_t d = 0; d < in.getRank(); ++d)
      drop[d] = in.getDimSize(d) == 1;
  }
  for (int64_t a : *axes) {
    FailureOr<int64_t> n = ctx.normalizeAxis(a, in.getRank());
    if (failed(n))
      return failure();
    if (in.getDimSize(*n) != 1)
      return ctx.error("cannot squeeze dim " + Twine(*n) + " of size " + Twine(in.getDimSize(*n)));
    drop[*n] = true;
  }
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < in.getRank(); ++d)
    if (!drop[d])
      shape.push_back(in.getDimSize(d));
  return setResult(ctx, ctx.reshape(ctx.input(0), shape));
}

LogicalResult convertFlatten(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 1)))
    return failure();
  auto in = ctx.inputType(0);
  int64_t axis = ctx.intAttr("axis", 1);
  if (axis < 0)
    axis += in.getRank();
  if (axis < 0 || axis > in.getRank())
    return ctx.error("axis is out of range");
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= in.getDimSize(d);
  return setResult(ctx, ctx.reshape(ctx.input(0), {outer, in.getNumElements() / std::max<int64_t>(outer, 1)}));
}

LogicalResult convertConcat(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1)))
    return failure();
  SmallVector<Value> inputs;
  for (size_t i = 0; i < ctx.numInputs(); ++i)
    if (ctx.hasInput(i))
      inputs.push_back(ctx.input(i));
  FailureOr<int64_t> axis = ctx.normalizeAxis(ctx.intAttr("axis", 0), ctx.inputType(0).getRank());
  if (failed(axis))
    return failure();
  if (inputs.size() == 1) {
    ctx.setOutput(0, inputs.front());
    return success();
  }
  return setResult(ctx, ctx.create<lc::ConcatOp>(inputs, ctx.builder.getI64IntegerAttr(*axis)));
}

/// A slice of `v` along one axis: [start, start + size) with step 1.
FailureOr<Value> sliceAxis(NodeContext &ctx, Value v, int64_t axis, int64_t start, int64_t size) {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> starts(type.getRank(), 0), sizes(type.getShape()), steps(type.getRank(), 1);
  starts[axis] = start;
  sizes[axis] = size;
  if (size == 0)
    starts[axis] = 0;
  auto &b = ctx.builder;
  return ctx.create<lc::SliceOp>(v, b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(sizes),
                                 b.getDenseI64ArrayAttr(steps));
}

LogicalResult convertSplit(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 2)))
    return failure();
  auto in = ctx.inputType(0);
  FailureOr<int64_t> axis = ctx.normalizeAxis(ctx.intAttr("axis", 0), in.getRank());
  if (failed(axis))
    return failure();
  int64_t dim = in.getDimSize(*axis);
  size_t parts = ctx.node.outputs.size();
  SmallVector<int64_t> sizes;
  if (ctx.opset >= 13 && ctx.hasInput(1)) {
    FailureOr<SmallVector<int64_t>> s = ctx.constantInts(1, "split");
    if (failed(s))
      return failure();
    sizes = *s;
  } else if (auto s = ctx.intsAttr("split"); s && ctx.opset < 13) {
    sizes.assign(s->begin(), s->end());
  } else {
    int64_t n = ctx.intAttr("num_outputs", int64_t(parts));
    int64_t chunk = (dim + n - 1) / n;
    for (int64_t i = 0; i < n; ++i)
      sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
  }
  if (sizes.size() != parts)
    return ctx.error("split has " + Twine(sizes.size()) + " sizes for " + Twine(parts) + " outputs");
  int64_t offset = 0;
  for (size_t i = 0; i < parts; ++i) {
    if (sizes[i] < 0 || offset + sizes[i] > dim)
      return ctx.error("split sizes exceed the dim of " + Twine(dim));
    FailureOr<Value> part = sliceAxis(ctx, ctx.input(0), *axis, offset, sizes[i]);
    if (failed(part))
      return failure();
    ctx.setOutput(i, *part);
    offset += sizes[i];
  }
  if (offset != dim)
    return ctx.error("split sizes sum to " + Twine(offset) + ", not the dim of " + Twine(dim));
  return success();
}

LogicalResult convertSlice(NodeContext &ctx) {
  if (failed(ctx.requireInputs(3, 5)))
    return failure();
  auto in = ctx.inputType(0);
  int64_t rank = in.getRank();
  FailureOr<SmallVector<int64_t>> starts = ctx.constantInts(1, "starts");
  FailureOr<SmallVector<int64_t>> ends = ctx.constantInts(2, "ends");
  if (failed(starts) || failed(ends))
    return failure();
  SmallVector<int64_t> axes, steps;
  if (ctx.hasInput(3)) {
    FailureOr<SmallVector<int64_t>> a = ctx.constantInts(3, "axes");
    if (failed(a))
      return failure();
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i)
      axes.push_back(int64_t(i));
  }
  if (ctx.hasInput(4)) {
    FailureOr<SmallVector<int64_t>> s = ctx.constantInts(4, "steps");
    if (failed(s))
      return failure();
    steps = *s;
  } else {
    steps.assign(starts->size(), 1);
  }
  if (ends->size() != starts->size() || axes.size() != starts->size() ||
      steps.size() != starts->size())
    return ctx.error("starts, ends, axes and steps must have the same length");
  SmallVector<int64_t> outStarts(rank, 0), outSizes(in.getShape()), outSteps(rank, 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    FailureOr<int64_t> axis = ctx.normalizeAxis(axes[i], rank);
    if (failed(axis))
      return failure();
    int64_t dim = in.getDimSize(*axis), step = steps[i];
    if (step == 0)
      return ctx.error("slice step must not be 0");
    // ONNX clamping: starts/ends count from the end when negative, then clamp
    // to [0, dim] for positive steps and [-1, dim-1] for negative ones.
    auto clampIndex = [&](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0)
        v = v <= std::numeric_limits<int64_t>::min() + dim ? lo : v + dim;
      return std::clamp(v, lo, hi);
    };
    int64_t start, end, size;
    if (step > 0) {
      start = clampIndex((*starts)[i], 0, dim);
      end = clampIndex((*ends)[i], 0, dim);
      size = end > start ? (end - start + step - 1) / step : 0;
    } else {
      start = clampIndex((*starts)[i], -1, dim - 1);
      end = clampIndex((*ends)[i], -1, dim - 1);
      size = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    outStarts[*axis] = size ? start : 0;
    outSizes[*axis] = size;
    outSteps[*axis] = step;
  }
  auto &b = ctx.builder;
  return setResult(ctx, ctx.create<lc::SliceOp>(ctx.input(0), b.getDenseI64ArrayAttr(outStarts),
                                                b.getDenseI64ArrayAttr(outSizes),
                                                b.getDenseI64ArrayAttr(outSteps)));
}

LogicalResult convertExpand(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  FailureOr<SmallVector<int64_t>> shape = ctx.constantInts(1, "shape");
  if (failed(shape))
    return failure();
  auto in = ctx.inputType(0);
  SmallVector<int64_t> out;
  if (!OpTrait::util::getBroadcastedShape(in.getShape(), *shape, out))
    return ctx.error("cannot expand the input to the requested shape (not broadcast-compatible)");
  if (ArrayRef<int64_t>(out) == in.getShape()) {
    ctx.setOutput(0, ctx.input(0));
    return success();
  }
  return setResult(ctx, ctx.createTyped<lc::ExpandOp>(RankedTensorType::get(out, in.getElementType()),
                                                      ctx.input(0)));
}

LogicalResult convertGather(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  FailureOr<int64_t> axis = ctx.normalizeAxis(ctx.intAttr("axis", 0), ctx.inputType(0).getRank());
  if (failed(axis))
    return failure();
  return setResult(ctx, ctx.create<lc::GatherOp>(ctx.input(0), ctx.input(1),
                                                 ctx.builder.getI64IntegerAttr(*axis)));
}

LogicalResult convertConstant(NodeContext &ctx) {
  MLIRContext *context = ctx.builder.getContext();
  Builder &b = ctx.builder;
  for (const Attribute &a : ctx.node.attributes) {
    if (a.name == "value" && a.kind == Attribute::Kind::Tensor) {
      DenseElementsAttr attr = toElementsAttr(context, *a.t);
      if (!attr)
        return ctx.error("constant value cannot be represented");
      ctx.setOutput(0, ctx.constant(attr));
      return success();
    }
    if (a.name == "value_float" || a.name == "value_int") {
      Type type = a.name == "value_float" ? Type(b.getF32Type()) : Type(b.getI64Type());
      auto shaped = RankedTensorType::get({}, type);
      ctx.setOutput(0, ctx.constant(a.name == "value_float"
                                        ? DenseElementsAttr::get(shaped, float(a.f))
                                        : DenseElementsAttr::get(shaped, a.i)));
      return success();
    }
    if (a.name == "value_floats") {
      SmallVector<float> values(a.floats.begin(), a.floats.end());
      auto shaped = RankedTensorType::get({int64_t(values.size())}, b.getF32Type());
      ctx.setOutput(0, ctx.constant(DenseElementsAttr::get(shaped, ArrayRef<float>(values))));
      return success();
    }
    if (a.name == "value_ints") {
      auto shaped = RankedTensorType::get({int64_t(a.ints.size())}, b.getI64Type());
      ctx.setOutput(0, ctx.constant(DenseElementsAttr::get(shaped, ArrayRef<int64_t>(a.ints))));
      return success();
    }
  }
  return ctx.error("Constant has no supported value attribute (value, value_float(s), value_int(s))");
}

LogicalResult convertConstantOfShape(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 1)))
    return failure();
  FailureOr<SmallVector<int64_t>> shape = ctx.constantInts(0, "shape");
  if (failed(shape))
    return failure();
  for (int64_t d : *shape)
    if (d < 0)
      return ctx.error("shape has a negative dim");
  MLIRContext *context = ctx.builder.getContext();
  const Attribute *value = ctx.attr("value");
  DenseElementsAttr fill;
  if (value && value->kind == Attribute::Kind::Tensor) {
    fill = toElementsAttr(context, *value->t);
    if (!fill || fill.getNumElements() != 1)
      return ctx.error("value must hold one element");
  } else {
    fill = DenseElementsAttr::get(RankedTensorType::get({1}, ctx.builder.getF32Type()), 0.0f);
  }
  // A splat is stored once however large the shape (an S x S mask stays cheap).
  auto type = RankedTensorType::get(*shape, fill.getElementType());
  ctx.setOutput(0, ctx.constant(DenseElementsAttr::get(type, fill.getValues<mlir::Attribute>()[0])));
  return success();
}

LogicalResult convertShape(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 1)))
    return failure();
  ArrayRef<int64_t> shape = ctx.inputType(0).getShape();
  int64_t rank = int64_t(shape.size());
  int64_t start = ctx.intAttr("start", 0), end = ctx.intAttr("end", rank);
  if (start < 0)
    start += rank;
  if (end < 0)
    end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  SmallVector<int64_t> dims(shape.begin() + start, shape.begin() + end);
  auto type = RankedTensorType::get({int64_t(dims.size())}, ctx.builder.getI64Type());
  ctx.setOutput(0, ctx.constant(DenseElementsAttr::get(type, ArrayRef<int64_t>(dims))));
  return success();
}

LogicalResult convertSize(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 1)))
    return failure();
  auto type = RankedTensorType::get({}, ctx.builder.getI64Type());
  ctx.setOutput(0, ctx.constant(DenseElementsAttr::get(type, ctx.inputType(0).getNumElements())));
  return success();
}

LogicalResult convertRange(NodeContext &ctx) {
  if (failed(ctx.requireInputs(3, 3)))
    return failure();
  FailureOr<double> start = ctx.constantScalar(0, "start");
  FailureOr<double> limit = ctx.constantScalar(1, "limit");
  FailureOr<double> delta = ctx.constantScalar(2, "delta");
  if (failed(start) || failed(limit) || failed(delta))
    return failure();
  if (*delta == 0)
    return ctx.error("delta must not be 0");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((*limit - *start) / *delta)));
  auto type = RankedTensorType::get({n}, ctx.inputType(0).getElementType());
  auto &b = ctx.builder;
  return setResult(ctx, ctx.createTyped<lc::RangeOp>(type, b.getF64FloatAttr(*start),
                                                     b.getF64FloatAttr(*delta)));
}

LogicalResult convertTrilu(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 2)))
    return failure();
  int64_t k = 0;
  if (ctx.hasInput(1)) {
    FailureOr<SmallVector<int64_t>> kv = ctx.constantInts(1, "k");
    if (failed(kv))
      return failure();
    if (kv->size() != 1)
      return ctx.error("k must hold one value");
    k = kv->front();
  }
  auto &b = ctx.builder;
  return setResult(ctx, ctx.createTyped<lc::TriluOp>(ctx.input(0).getType(), ctx.input(0),
                                                     b.getBoolAttr(ctx.intAttr("upper", 1) != 0),
                                                     b.getI64IntegerAttr(k)));
}

LogicalResult convertLayerNorm(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 3)))
    return failure();
  if (ctx.outputUsed(1) || ctx.outputUsed(2))
    return ctx.error("LayerNormalization's Mean and InvStdDev outputs are not supported");
  FailureOr<int64_t> axis = ctx.normalizeAxis(ctx.intAttr("axis", -1), ctx.inputType(0).getRank());
  if (failed(axis))
    return failure();
  auto &b = ctx.builder;
  return setResult(ctx, ctx.create<lc::LayerNormOp>(ctx.input(0), ctx.input(1), ctx.input(2),
                                                    b.getI64IntegerAttr(*axis),
                                                    b.getF64FloatAttr(ctx.floatAttr("epsilon", 1e-5))));
}

LogicalResult convertClip(NodeContext &ctx) {
  if (failed(ctx.requireInputs(1, 3)))
    return failure();
  Value v = ctx.input(0);
  // Bounds are tensors too (opset >= 11): max(x, lo) then min(., hi).
  if (ctx.hasInput(1)) {
    FailureOr<Value> lo = ctx.create<lc::MaxOp>(v, ctx.input(1));
    if (failed(lo))
      return failure();
    v = *lo;
  }
  if (ctx.hasInput(2)) {
    FailureOr<Value> hi = ctx.create<lc::MinOp>(v, ctx.input(2));
    if (failed(hi))
      return failure();
    v = *hi;
  }
  ctx.setOutput(0, v);
  return success();
}

/// Tile as reshape -> expand -> reshape: x[d0, d1] becomes [1, d0, 1, d1],
/// broadcast to [r0, d0, r1, d1], then [r0*d0, r1*d1].
LogicalResult convertTile(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  FailureOr<SmallVector<int64_t>> repeats = ctx.constantInts(1, "repeats");
  if (failed(repeats))
    return failure();
  auto in = ctx.inputType(0);
  if (int64_t(repeats->size()) != in.getRank())
    return ctx.error("repeats has " + Twine(repeats->size()) + " entries for rank " +
                     Twine(in.getRank()));
  SmallVector<int64_t> interleaved, expanded, result;
  for (int64_t d = 0; d < in.getRank(); ++d) {
    if ((*repeats)[d] < 0)
      return ctx.error("repeats must be non-negative");
    interleaved.append({1, in.getDimSize(d)});
    expanded.append({(*repeats)[d], in.getDimSize(d)});
    result.push_back((*repeats)[d] * in.getDimSize(d));
  }
  FailureOr<Value> spread = ctx.reshape(ctx.input(0), interleaved);
  if (failed(spread))
    return failure();
  FailureOr<Value> broadcast = ctx.createTyped<lc::ExpandOp>(
      RankedTensorType::get(expanded, in.getElementType()), *spread);
  if (failed(broadcast))
    return failure();
  return setResult(ctx, ctx.reshape(*broadcast, result));
}

LogicalResult convertCumSum(NodeContext &ctx) {
  if (failed(ctx.requireInputs(2, 2)))
    return failure();
  FailureOr<SmallVector<int64_t>> axis = ctx.constantInts(1, "axis");
  if (failed(axis))
    return failure();
  if (axis->size() != 1)
    return ctx.error("axis must hold one value");
  FailureOr<int64_t> normalized = ctx.normalizeAxis(axis->front(), ctx.inputType(0).getRank());
  if (failed(normalized))
    return failure();
  auto &b = ctx.builder;
  return setResult(ctx, ctx.createTyped<lc::CumSumOp>(
                            ctx.input(0).getType(), ctx.input(0), b.getI64IntegerAttr(*normalized),
                            b.getBoolAttr(ctx.intAttr("exclusive", 0) != 0),
                            b.getBoolAttr(ctx.intAttr("reverse", 0) != 0)));
}

LogicalResult convertMean(NodeContext &ctx) {
  if (failed(variadic<lc::AddOp>()(ctx)))
    return failure();
  Value sum = ctx.outputs[0];
  auto type = cast<RankedTensorType>(sum.getType());
  if (!isa<FloatType>(type.getElementType()))
    return ctx.error("Mean needs float inputs");
  auto countType = RankedTensorType::get({}, type.getElementType());
  Value count = ctx.constant(DenseElementsAttr::get(
      countType, FloatAttr::get(type.getElementType(), double(ctx.numInputs()))));
  return setResult(ctx, ctx.create<lc::DivOp>(sum, count));
}

//===----------------------------------------------------------------------===//
// Einsum: one or two operands, lowered to reductions, transposes, reshapes
// and one batched matmul.
//===----------------------------------------------------------------------===//

/// An operand with one subscript letter per dim.
struct Labelled {
  Value value;
  std::string labels;
};

FailureOr<Labelled> sumOut(NodeContext &ctx, Labelled x, const std::string &keep) {
  SmallVector<int64_t> axes;
  std::string kept;
  for (size_t d = 0; d < x.labels.size(); ++d) {
    if (keep.find(x.labels[d]) == std::string::npos)
      axes.push_back(int64_t(d));
    else
      kept += x.labels[d];
  }
  if (axes.empty())
    return x;
  FailureOr<Value> reduced = ctx.create<lc::ReduceSumOp>(
      x.value, ctx.builder.getDenseI64ArrayAttr(axes), ctx.builder.getBoolAttr(false));
  if (failed(reduced))
    return failure();
  return Labelled{*reduced, kept};
}

FailureOr<Value> permuteTo(NodeContext &ctx, const Labelled &x, const std::string &order) {
  SmallVector<int64_t> perm;
  for (char c : order)
    perm.push_back(int64_t(x.labels.find(c)));
  return ctx.create<lc::TransposeOp>(x.value, ctx.builder.getDenseI64ArrayAttr(perm));
}

LogicalResult convertEinsum(NodeContext &ctx) {
  const Attribute *eqAttr = ctx.attr("equation");
  if (!eqAttr || eqAttr->kind != Attribute::Kind::String)
    return ctx.error("Einsum needs an equation");
  std::string eq;
  for (char c : eqAttr->s)
    if (c != ' ')
      eq += c;
  if (eq.find('.') != std::string::npos)
    return ctx.error("Einsum equation '" + eq + "': ellipsis is not supported");
  size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t pos = 0;;) {
    size_t comma = lhs.find(',', pos);
    terms.push_back(lhs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  if (terms.size() != ctx.numInputs() || terms.size() > 2)
    return ctx.error("Einsum equation '" + eq + "' must have one or two operands matching the inputs");
  std::string out;
  std::map<char, int64_t> sizes;
  std::map<char, int> count;
  for (size_t i = 0; i < terms.size(); ++i) {
    auto type = ctx.inputType(i);
    if (int64_t(terms[i].size()) != type.getRank())
      return ctx.error("Einsum term '" + terms[i] + "' does not match the rank of input " + Twine(i));
    for (size_t d = 0; d < terms[i].size(); ++d) {
      char c = terms[i][d];
      if (!std::isalpha(static_cast<unsigned char>(c)))
        return ctx.error("Einsum equation '" + eq + "' has an invalid subscript");
      if (terms[i].find(c) != d)
        return ctx.error("Einsum term '" + terms[i] + "' repeats a subscript (diagonals are not supported)");
      auto [it, inserted] = sizes.insert({c, type.getDimSize(d)});
      if (!inserted && it->second != type.getDimSize(d))
        return ctx.error("Einsum subscript '" + Twine(c) + "' has sizes " + Twine(it->second) +
                         " and " + Twine(type.getDimSize(d)));
      ++count[c];
    }
  }
  if (arrow != std::string::npos) {
    out = eq.substr(arrow + 2);
  } else {
    for (const auto &[c, n] : count) // implicit mode: letters seen once, sorted
      if (n == 1)
        out += c;
  }
  for (char c : out)
    if (!sizes.count(c))
      return ctx.error("Einsum output subscript '" + Twine(c) + "' appears in no input");

  if (terms.size() == 1) {
    FailureOr<Labelled> reduced = sumOut(ctx, {ctx.input(0), terms[0]}, out);
    if (failed(reduced))
      return failure();
    return setResult(ctx, permuteTo(ctx, *reduced, out));
  }
  // Letters only one operand has and the output lacks are summed first.
  FailureOr<Labelled> a = sumOut(ctx, {ctx.input(0), terms[0]}, terms[1] + out);
  FailureOr<Labelled> b = sumOut(ctx, {ctx.input(1), terms[1]}, terms[0] + out);
  if (failed(a) || failed(b))
    return failure();
  std::string batch, contract, freeA, freeB;
  for (char c : a->labels) {
    bool inB = b->labels.find(c) != std::string::npos, inOut = out.find(c) != std::string::npos;
    (inB ? (inOut ? batch : contract) : freeA) += c;
  }
  for (char c : b->labels)
    if (a->labels.find(c) == std::string::npos)
      freeB += c;
  auto product = [&](const std::string &letters) {
    int64_t p = 1;
    for (char c : letters)
      p *= sizes[c];
    return p;
  };
  int64_t nb = product(batch), m = product(freeA), k = product(contract), n = product(freeB);
  FailureOr<Value> at = permuteTo(ctx, *a, batch + freeA + contract);
  FailureOr<Value> bt = permuteTo(ctx, *b, batch + contract + freeB);
  if (failed(at) || failed(bt))
    return failure();
  FailureOr<Value> am = ctx.reshape(*at, {nb, m, k});
  FailureOr<Value> bm = ctx.reshape(*bt, {nb, k, n});
  if (failed(am) || failed(bm))
    return failure();
  FailureOr<Value> prod = ctx.create<lc::MatMulOp>(*am, *bm);
  if (failed(prod))
    return failure();
  std::string labels = batch + freeA + freeB;
  SmallVector<int64_t> shape;
  for (char c : labels)
    shape.push_back(sizes[c]);
  FailureOr<Value> unflat = ctx.reshape(*prod, shape);
  if (failed(unflat))
    return failure();
  return setResult(ctx, permuteTo(ctx, {*unflat, labels}, out));
}

LogicalResult convertSelectiveScan(NodeContext &ctx) {
  if (failed(ctx.requireInputs(5, 5)))
    return failure();
  return setResult(ctx, ctx.create<lc::SelectiveScanOp>(ctx.input(0), ctx.input(1), ctx.input(2),
                                                        ctx.input(3), ctx.input(4)));
}

} // namespace

const std::map<std::string, NodeConverter> &nodeConverters() {
  static const std::map<std::string, NodeConverter> table = [] {
    std::map<std::string, NodeConverter> t;
    auto onnx = [&](const char *op, NodeConverter c) { t[converterKey("", op)] = std::move(c); };
    onnx("Add", binary<lc::AddOp>());
    onnx("Sub", binary<lc::SubOp>());
    onnx("Mul", binary<lc::MulOp>());
    onnx("Div", binary<lc::DivOp>());
    onnx("Pow", convertPow);
    onnx("Max", variadic<lc::MaxOp>());
    onnx("Min", variadic<lc::MinOp>());
    onnx("Sum", variadic<lc::AddOp>());
    onnx("Mean", convertMean);
    onnx("Clip", convertClip);
    onnx("Tile", convertTile);
    onnx("CumSum", convertCumSum);
    onnx("Einsum", convertEinsum);
    onnx("Equal", binary<lc::EqualOp>());
    onnx("Less", binary<lc::LessOp>());
    onnx("Greater", binary<lc::GreaterOp>());
    onnx("LessOrEqual", negatedCompare<lc::GreaterOp>());
    onnx("GreaterOrEqual", negatedCompare<lc::LessOp>());
    onnx("And", binary<lc::AndOp>());
    onnx("Or", binary<lc::OrOp>());
    onnx("Not", unary<lc::NotOp>());
    onnx("Neg", unary<lc::NegOp>());
    onnx("Abs", unary<lc::AbsOp>());
    onnx("Relu", unary<lc::ReluOp>());
    onnx("Exp", unary<lc::ExpOp>());
    onnx("Log", unary<lc::LogOp>());
    onnx("Sqrt", unary<lc::SqrtOp>());
    onnx("Reciprocal", unary<lc::ReciprocalOp>());
    onnx("Tanh", unary<lc::TanhOp>());
    onnx("Erf", unary<lc::ErfOp>());
    onnx("Sigmoid", unary<lc::SigmoidOp>());
    onnx("Softplus", unary<lc::SoftplusOp>());
    onnx("Cos", unary<lc::CosOp>());
    onnx("Sin", unary<lc::SinOp>());
    onnx("Identity", convertIdentity);
    onnx("Dropout", convertIdentity);
    onnx("Cast", convertCast);
    onnx("CastLike", convertCastLike);
    onnx("Where", convertWhere);
    onnx("MatMul", convertMatMul);
    onnx("Gemm", convertGemm);
    onnx("Softmax", softmaxLike<lc::SoftmaxOp>());
    onnx("LogSoftmax", softmaxLike<lc::LogSoftmaxOp>());
    onnx("ReduceSum", reduce<lc::ReduceSumOp>(13));
    onnx("ReduceMean", reduce<lc::ReduceMeanOp>(18));
    onnx("ReduceMax", reduce<lc::ReduceMaxOp>(18));
    onnx("Transpose", convertTranspose);
    onnx("Reshape", convertReshape);
    onnx("Unsqueeze", convertUnsqueeze);
    onnx("Squeeze", convertSqueeze);
    onnx("Flatten", convertFlatten);
    onnx("Concat", convertConcat);
    onnx("Split", convertSplit);
    onnx("Slice", convertSlice);
    onnx("Expand", convertExpand);
    onnx("Gather", convertGather);
    onnx("Constant", convertConstant);
    onnx("ConstantOfShape", convertConstantOfShape);
    onnx("Shape", convertShape);
    onnx("Size", convertSize);
    onnx("Range", convertRange);
    onnx("Trilu", convertTrilu);
    onnx("LayerNormalization", convertLayerNorm);
    t[converterKey("longctx", "SelectiveScan")] = convertSelectiveScan;
    return t;
  }();
  return table;
}

} // namespace longctx::onnx_import
