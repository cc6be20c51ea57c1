//===- LcOps.cpp - Type inference and verification of `lc` ops -------------===//
//
// Each op has one shape rule: ops whose result type follows from operands and
// attributes infer it (so the importer builds them without naming a type and
// the verifier re-checks it); ops whose shape came from folded data (reshape,
// expand, range, cast) carry it in their result type and verify it.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"

#include "mlir/Dialect/Traits.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace longctx::lc;

namespace {

LogicalResult emitInferError(std::optional<Location> loc, const Twine &message) {
  if (loc)
    return emitError(*loc, message);
  return failure();
}

/// Numpy broadcast of any number of shapes.
FailureOr<SmallVector<int64_t>> broadcastShapes(ArrayRef<ArrayRef<int64_t>> shapes) {
  SmallVector<int64_t> result;
  for (ArrayRef<int64_t> shape : shapes) {
    SmallVector<int64_t> next;
    if (!OpTrait::util::getBroadcastedShape(result, shape, next))
      return failure();
    result = std::move(next);
  }
  return result;
}

std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleave(shape, os, "x");
  os << "]";
  return s;
}

LogicalResult inferBroadcast(std::optional<Location> loc, ArrayRef<Value> operands,
                             Type elementType, SmallVectorImpl<Type> &results) {
  SmallVector<ArrayRef<int64_t>> shapes;
  for (Value v : operands)
    shapes.push_back(cast<RankedTensorType>(v.getType()).getShape());
  FailureOr<SmallVector<int64_t>> shape = broadcastShapes(shapes);
  if (failed(shape)) {
    std::string all;
    for (ArrayRef<int64_t> s : shapes)
      all += (all.empty() ? "" : ", ") + shapeString(s);
    return emitInferError(loc, "operand shapes " + all + " are not broadcast-compatible");
  }
  results.push_back(RankedTensorType::get(*shape, elementType));
  return success();
}

Type elementTypeOf(Value v) { return cast<ShapedType>(v.getType()).getElementType(); }

LogicalResult verifySameElementType(Operation *op, Value a, Value b) {
  if (elementTypeOf(a) != elementTypeOf(b))
    return op->emitOpError("operands must have the same element type, got ")
           << elementTypeOf(a) << " and " << elementTypeOf(b);
  return success();
}

LogicalResult verifyAxis(Operation *op, int64_t axis, int64_t rank) {
  if (axis < 0 || axis >= rank)
    return op->emitOpError("axis ") << axis << " is out of range for rank " << rank;
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

#define LC_BINARY_OP_RULES(OP, RESULT_ELEMENT)                                  \
  LogicalResult OP::inferReturnTypes(MLIRContext *context,                     \
                                     std::optional<Location> loc,              \
                                     Adaptor adaptor,                          \
                                     SmallVectorImpl<Type> &results) {         \
    Type lhsElement = elementTypeOf(adaptor.getLhs());                         \
    (void)lhsElement;                                                          \
    return inferBroadcast(loc, {adaptor.getLhs(), adaptor.getRhs()},           \
                          RESULT_ELEMENT, results);                            \
  }                                                                            \
  LogicalResult OP::verify() {                                                 \
    return verifySameElementType(*this, getLhs(), getRhs());                   \
  }

LC_BINARY_OP_RULES(AddOp, lhsElement)
LC_BINARY_OP_RULES(SubOp, lhsElement)
LC_BINARY_OP_RULES(MulOp, lhsElement)
LC_BINARY_OP_RULES(DivOp, lhsElement)
LC_BINARY_OP_RULES(PowOp, lhsElement)
LC_BINARY_OP_RULES(MaxOp, lhsElement)
LC_BINARY_OP_RULES(MinOp, lhsElement)
LC_BINARY_OP_RULES(AndOp, lhsElement)
LC_BINARY_OP_RULES(OrOp, lhsElement)
LC_BINARY_OP_RULES(EqualOp, IntegerType::get(context, 1))
LC_BINARY_OP_RULES(LessOp, IntegerType::get(context, 1))
LC_BINARY_OP_RULES(GreaterOp, IntegerType::get(context, 1))
#undef LC_BINARY_OP_RULES

LogicalResult CastOp::verify() {
  if (getInput().getType().getShape() != getOutput().getType().getShape())
    return emitOpError("result shape must equal the input shape");
  return success();
}

LogicalResult WhereOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                        Adaptor adaptor, SmallVectorImpl<Type> &results) {
  return inferBroadcast(loc, {adaptor.getCondition(), adaptor.getX(), adaptor.getY()},
                        elementTypeOf(adaptor.getX()), results);
}

LogicalResult WhereOp::verify() { return verifySameElementType(*this, getX(), getY()); }

//===----------------------------------------------------------------------===//
// Contractions and normalisation
//===----------------------------------------------------------------------===//

LogicalResult MatMulOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto lhs = cast<RankedTensorType>(adaptor.getLhs().getType());
  auto rhs = cast<RankedTensorType>(adaptor.getRhs().getType());
  if (lhs.getRank() < 2 || rhs.getRank() < 2)
    return emitInferError(loc, "matmul operands must have rank >= 2");
  if (lhs.getElementType() != rhs.getElementType())
    return emitInferError(loc, "matmul operands must have the same element type");
  int64_t k = lhs.getShape().back(), k2 = rhs.getShape()[rhs.getRank() - 2];
  if (k != k2)
    return emitInferError(loc, "matmul contraction dims differ: " + shapeString(lhs.getShape()) +
                                   " x " + shapeString(rhs.getShape()));
  FailureOr<SmallVector<int64_t>> batch =
      broadcastShapes({lhs.getShape().drop_back(2), rhs.getShape().drop_back(2)});
  if (failed(batch))
    return emitInferError(loc, "matmul batch dims are not broadcast-compatible: " +
                                   shapeString(lhs.getShape()) + " x " +
                                   shapeString(rhs.getShape()));
  SmallVector<int64_t> shape = *batch;
  shape.push_back(lhs.getShape()[lhs.getRank() - 2]);
  shape.push_back(rhs.getShape().back());
  results.push_back(RankedTensorType::get(shape, lhs.getElementType()));
  return success();
}

LogicalResult GemmOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                       Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto a = cast<RankedTensorType>(adaptor.getA().getType());
  auto b = cast<RankedTensorType>(adaptor.getB().getType());
  if (a.getRank() != 2 || b.getRank() != 2)
    return emitInferError(loc, "gemm operands must be matrices");
  int64_t m = adaptor.getTransA() ? a.getDimSize(1) : a.getDimSize(0);
  int64_t ka = adaptor.getTransA() ? a.getDimSize(0) : a.getDimSize(1);
  int64_t kb = adaptor.getTransB() ? b.getDimSize(1) : b.getDimSize(0);
  int64_t n = adaptor.getTransB() ? b.getDimSize(0) : b.getDimSize(1);
  if (ka != kb)
    return emitInferError(loc, "gemm contraction dims differ: " + Twine(ka) + " vs " + Twine(kb));
  if (Value c = adaptor.getC()) {
    SmallVector<int64_t> out;
    auto cShape = cast<RankedTensorType>(c.getType()).getShape();
    if (!OpTrait::util::getBroadcastedShape({m, n}, cShape, out) || out != SmallVector<int64_t>{m, n})
      return emitInferError(loc, "gemm bias " + shapeString(cShape) +
                                     " does not broadcast to [" + Twine(m) + "x" + Twine(n) + "]");
  }
  results.push_back(RankedTensorType::get({m, n}, a.getElementType()));
  return success();
}

LogicalResult SoftmaxOp::verify() {
  return verifyAxis(*this, getAxis(), getInput().getType().getRank());
}

LogicalResult LogSoftmaxOp::verify() {
  return verifyAxis(*this, getAxis(), getInput().getType().getRank());
}

LogicalResult CumSumOp::verify() {
  return verifyAxis(*this, getAxis(), getInput().getType().getRank());
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                            Adaptor adaptor, SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult LayerNormOp::verify() {
  auto input = getInput().getType();
  if (failed(verifyAxis(*this, getAxis(), input.getRank())))
    return failure();
  ArrayRef<int64_t> normalized = input.getShape().drop_front(getAxis());
  auto checkParam = [&](Value v, StringRef what) -> LogicalResult {
    if (!v)
      return success();
    SmallVector<int64_t> out;
    auto shape = cast<RankedTensorType>(v.getType()).getShape();
    if (!OpTrait::util::getBroadcastedShape(normalized, shape, out) ||
        ArrayRef<int64_t>(out) != normalized)
      return emitOpError(what) << " shape " << shapeString(shape)
                               << " does not broadcast to the normalised shape "
                               << shapeString(normalized);
    return success();
  };
  return success(succeeded(checkParam(getScale(), "scale")) &&
                 succeeded(checkParam(getBias(), "bias")));
}

static LogicalResult inferReduce(std::optional<Location> loc, Value input,
                                 ArrayRef<int64_t> axes, bool keepdims,
                                 SmallVectorImpl<Type> &results) {
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < (int64_t)axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= type.getRank())
      return emitInferError(loc, "reduction axis " + Twine(axes[i]) +
                                     " is out of range for rank " + Twine(type.getRank()));
    if (i && axes[i] <= axes[i - 1])
      return emitInferError(loc, "reduction axes must be sorted and unique");
  }
  for (int64_t d = 0; d < type.getRank(); ++d) {
    bool reduced = llvm::is_contained(axes, d);
    if (!reduced)
      shape.push_back(type.getDimSize(d));
    else if (keepdims)
      shape.push_back(1);
  }
  results.push_back(RankedTensorType::get(shape, type.getElementType()));
  return success();
}

#define LC_REDUCE_OP_RULES(OP)                                                 \
  LogicalResult OP::inferReturnTypes(MLIRContext *, std::optional<Location> loc, \
                                     Adaptor adaptor,                          \
                                     SmallVectorImpl<Type> &results) {         \
    return inferReduce(loc, adaptor.getInput(), adaptor.getAxes(),             \
                       adaptor.getKeepdims(), results);                        \
  }
LC_REDUCE_OP_RULES(ReduceSumOp)
LC_REDUCE_OP_RULES(ReduceMeanOp)
LC_REDUCE_OP_RULES(ReduceMaxOp)
#undef LC_REDUCE_OP_RULES

//===----------------------------------------------------------------------===//
// Layout and indexing
//===----------------------------------------------------------------------===//

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto type = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> perm = adaptor.getPerm();
  if ((int64_t)perm.size() != type.getRank())
    return emitInferError(loc, "perm has " + Twine(perm.size()) + " entries for rank " +
                                   Twine(type.getRank()));
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= type.getRank() || seen[p])
      return emitInferError(loc, "perm " + shapeString(perm) + " is not a permutation");
    seen[p] = true;
    shape.push_back(type.getDimSize(p));
  }
  results.push_back(RankedTensorType::get(shape, type.getElementType()));
  return success();
}

LogicalResult ReshapeOp::verify() {
  if (getInput().getType().getNumElements() != getOutput().getType().getNumElements())
    return emitOpError("cannot reshape ")
           << shapeString(getInput().getType().getShape()) << " to "
           << shapeString(getOutput().getType().getShape())
           << ": element counts differ";
  if (getInput().getType().getElementType() != getOutput().getType().getElementType())
    return emitOpError("reshape cannot change the element type");
  return success();
}

LogicalResult ExpandOp::verify() {
  SmallVector<int64_t> out;
  auto in = getInput().getType().getShape(), res = getOutput().getType().getShape();
  if (!OpTrait::util::getBroadcastedShape(in, res, out) || ArrayRef<int64_t>(out) != res)
    return emitOpError("cannot broadcast ") << shapeString(in) << " to " << shapeString(res);
  if (getInput().getType().getElementType() != getOutput().getType().getElementType())
    return emitOpError("expand cannot change the element type");
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                        Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto type = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> starts = adaptor.getStarts(), sizes = adaptor.getSizes(),
                    steps = adaptor.getSteps();
  int64_t rank = type.getRank();
  if ((int64_t)starts.size() != rank || (int64_t)sizes.size() != rank ||
      (int64_t)steps.size() != rank)
    return emitInferError(loc, "slice needs starts, sizes and steps for all " + Twine(rank) +
                                   " dims");
  for (int64_t d = 0; d < rank; ++d) {
    int64_t dim = type.getDimSize(d);
    if (steps[d] == 0 || sizes[d] < 0)
      return emitInferError(loc, "slice dim " + Twine(d) + " has step 0 or a negative size");
    if (sizes[d] == 0)
      continue;
    int64_t last = starts[d] + (sizes[d] - 1) * steps[d];
    if (starts[d] < 0 || starts[d] >= dim || last < 0 || last >= dim)
      return emitInferError(loc, "slice dim " + Twine(d) + " reads outside [0, " + Twine(dim) +
                                     ")");
  }
  results.push_back(RankedTensorType::get(sizes, type.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &results) {
  if (adaptor.getInputs().empty())
    return emitInferError(loc, "concat needs at least one input");
  auto first = cast<RankedTensorType>(adaptor.getInputs().front().getType());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= first.getRank())
    return emitInferError(loc, "concat axis " + Twine(axis) + " is out of range");
  SmallVector<int64_t> shape(first.getShape());
  shape[axis] = 0;
  for (Value v : adaptor.getInputs()) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() != first.getRank() || t.getElementType() != first.getElementType())
      return emitInferError(loc, "concat inputs must have the same rank and element type");
    for (int64_t d = 0; d < t.getRank(); ++d)
      if (d != axis && t.getDimSize(d) != first.getDimSize(d))
        return emitInferError(loc, "concat inputs differ in dim " + Twine(d) + ": " +
                                       shapeString(first.getShape()) + " vs " +
                                       shapeString(t.getShape()));
    shape[axis] += t.getDimSize(axis);
  }
  results.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto data = cast<RankedTensorType>(adaptor.getData().getType());
  auto indices = cast<RankedTensorType>(adaptor.getIndices().getType());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= data.getRank())
    return emitInferError(loc, "gather axis " + Twine(axis) + " is out of range");
  SmallVector<int64_t> shape(data.getShape().take_front(axis));
  llvm::append_range(shape, indices.getShape());
  llvm::append_range(shape, data.getShape().drop_front(axis + 1));
  results.push_back(RankedTensorType::get(shape, data.getElementType()));
  return success();
}

LogicalResult TriluOp::verify() {
  if (getInput().getType().getRank() < 2)
    return emitOpError("input must have rank >= 2");
  return success();
}

LogicalResult RangeOp::verify() {
  if (getOutput().getType().getRank() != 1)
    return emitOpError("result must be 1-D");
  return success();
}

//===----------------------------------------------------------------------===//
// State-space models
//===----------------------------------------------------------------------===//

LogicalResult SelectiveScanOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                Adaptor adaptor,
                                                SmallVectorImpl<Type> &results) {
  auto shapeOf = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
  ArrayRef<int64_t> u = shapeOf(adaptor.getU()), delta = shapeOf(adaptor.getDelta()),
                    a = shapeOf(adaptor.getA()), b = shapeOf(adaptor.getB()),
                    c = shapeOf(adaptor.getC());
  if (u.size() != 3 || delta != u || a.size() != 2 || b.size() != 3 || c != b)
    return emitInferError(loc, "selective_scan expects u, delta [B,S,E], A [E,N], B, C [B,S,N]; got " +
                                   shapeString(u) + ", " + shapeString(delta) + ", " +
                                   shapeString(a) + ", " + shapeString(b) + ", " + shapeString(c));
  if (a[0] != u[2] || b[0] != u[0] || b[1] != u[1] || b[2] != a[1])
    return emitInferError(loc, "selective_scan dims disagree: u " + shapeString(u) + ", A " +
                                   shapeString(a) + ", B " + shapeString(b));
  results.push_back(adaptor.getU().getType());
  return success();
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::inferReturnTypes(MLIRContext *, std::optional<Location>, Adaptor adaptor,
                                          SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult RmsNormOp::verify() {
  auto in = getInput().getType(), scale = getScale().getType();
  if (in.getRank() < 1 || scale.getRank() != 1 || scale.getDimSize(0) != in.getShape().back())
    return emitOpError("scale ") << shapeString(scale.getShape())
                                 << " must be 1-D with the last dim of the input "
                                 << shapeString(in.getShape());
  if (in.getElementType() != scale.getElementType())
    return emitOpError("input and scale must have one element type");
  return success();
}

LogicalResult RmsNormGradOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                              Adaptor adaptor, SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getInput().getType());
  results.push_back(adaptor.getScale().getType());
  return success();
}

LogicalResult GatedMlpOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                           Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto x = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> g = cast<RankedTensorType>(adaptor.getWGate().getType()).getShape(),
                    u = cast<RankedTensorType>(adaptor.getWUp().getType()).getShape(),
                    d = cast<RankedTensorType>(adaptor.getWDown().getType()).getShape();
  if (x.getRank() < 1 || g.size() != 2 || u != g || d.size() != 2 ||
      g[0] != x.getShape().back() || d[0] != g[1])
    return emitInferError(loc, "gated_mlp expects x [..., D], w_gate, w_up [D, F], w_down [F, E]; got " +
                                   shapeString(x.getShape()) + ", " + shapeString(g) + ", " +
                                   shapeString(u) + ", " + shapeString(d));
  SmallVector<int64_t> shape(x.getShape().drop_back());
  shape.push_back(d[1]);
  results.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

LogicalResult GatedMlpGradOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                               Adaptor adaptor, SmallVectorImpl<Type> &results) {
  for (Value v : {adaptor.getInput(), adaptor.getWGate(), adaptor.getWUp(), adaptor.getWDown()})
    results.push_back(v.getType());
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &results) {
  auto q = cast<RankedTensorType>(adaptor.getQ().getType());
  auto k = cast<RankedTensorType>(adaptor.getK().getType());
  auto v = cast<RankedTensorType>(adaptor.getV().getType());
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4)
    return emitInferError(loc, "attention expects q [B,H,S,D], k [B,Hk,T,D], v [B,Hk,T,Dv]");
  int64_t b = q.getDimSize(0), h = q.getDimSize(1), s = q.getDimSize(2), d = q.getDimSize(3);
  int64_t hk = k.getDimSize(1), t = k.getDimSize(2);
  if (k.getDimSize(0) != b || v.getDimSize(0) != b || k.getDimSize(3) != d ||
      v.getDimSize(1) != hk || v.getDimSize(2) != t || hk == 0 || h % hk != 0)
    return emitInferError(loc, "attention shapes disagree: q " + shapeString(q.getShape()) + ", k " +
                                   shapeString(k.getShape()) + ", v " + shapeString(v.getShape()));
  if (q.getElementType() != k.getElementType() || q.getElementType() != v.getElementType())
    return emitInferError(loc, "attention operands must have one element type");
  results.push_back(RankedTensorType::get({b, h, s, v.getDimSize(3)}, q.getElementType()));
  results.push_back(RankedTensorType::get({b, h, s}, q.getElementType()));
  return success();
}

LogicalResult AttentionGradOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                                Adaptor adaptor, SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getQ().getType());
  results.push_back(adaptor.getK().getType());
  results.push_back(adaptor.getV().getType());
  return success();
}

//===----------------------------------------------------------------------===//
// Loss and backward-only ops
//===----------------------------------------------------------------------===//

static LogicalResult checkCrossEntropyShapes(std::optional<Location> loc, Value logits,
                                             Value targets, int64_t shift) {
  auto l = cast<RankedTensorType>(logits.getType());
  auto t = cast<RankedTensorType>(targets.getType());
  if (l.getRank() < 1 || l.getShape().drop_back() != t.getShape())
    return emitInferError(loc, "cross_entropy targets " + shapeString(t.getShape()) +
                                   " must have the logits' shape without the class dim " +
                                   shapeString(l.getShape()));
  if (shift != 0 && shift != 1)
    return emitInferError(loc, "cross_entropy shift must be 0 or 1");
  if (shift == 1 && t.getRank() < 1)
    return emitInferError(loc, "a shifted cross_entropy needs a sequence dim");
  return success();
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                               Adaptor adaptor, SmallVectorImpl<Type> &results) {
  if (failed(checkCrossEntropyShapes(loc, adaptor.getLogits(), adaptor.getTargets(),
                                     adaptor.getShift())))
    return failure();
  results.push_back(RankedTensorType::get({}, elementTypeOf(adaptor.getLogits())));
  return success();
}

LogicalResult CrossEntropyGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                   Adaptor adaptor,
                                                   SmallVectorImpl<Type> &results) {
  if (failed(checkCrossEntropyShapes(loc, adaptor.getLogits(), adaptor.getTargets(),
                                     adaptor.getShift())))
    return failure();
  results.push_back(adaptor.getLogits().getType());
  return success();
}

LogicalResult CrossEntropyAndGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                      Adaptor adaptor,
                                                      SmallVectorImpl<Type> &results) {
  if (failed(checkCrossEntropyShapes(loc, adaptor.getLogits(), adaptor.getTargets(), 0)))
    return failure();
  results.push_back(RankedTensorType::get({}, elementTypeOf(adaptor.getLogits())));
  results.push_back(adaptor.getLogits().getType());
  return success();
}

LogicalResult LayerNormGradOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                                Adaptor adaptor, SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getInput().getType());
  results.push_back(adaptor.getScale().getType());
  results.push_back(adaptor.getScale().getType());
  return success();
}

LogicalResult SelectiveScanStateOp::inferReturnTypes(MLIRContext *context,
                                                     std::optional<Location> loc, Adaptor adaptor,
                                                     SmallVectorImpl<Type> &results) {
  SelectiveScanOp::Adaptor scan(adaptor.getOperands().take_front(5));
  if (failed(SelectiveScanOp::inferReturnTypes(context, loc, scan, results)))
    return failure();
  auto u = cast<RankedTensorType>(adaptor.getU().getType());
  auto a = cast<RankedTensorType>(adaptor.getA().getType());
  auto state = RankedTensorType::get({u.getDimSize(0), u.getDimSize(2), a.getDimSize(1)},
                                     u.getElementType());
  if (adaptor.getH0().getType() != state)
    return emitInferError(loc, "selective_scan_state expects h0 " + shapeString(state.getShape()) +
                                   ", got " +
                                   shapeString(cast<RankedTensorType>(adaptor.getH0().getType())
                                                   .getShape()));
  results.push_back(state);
  return success();
}

LogicalResult SelectiveScanStateGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                         Adaptor adaptor,
                                                         SmallVectorImpl<Type> &results) {
  for (Value v : {adaptor.getU(), adaptor.getDelta(), adaptor.getA(), adaptor.getB(),
                  adaptor.getC()})
    results.push_back(v.getType());
  // The carried cotangent: the state's, or truncated, the adjoint window.
  auto h0 = cast<RankedTensorType>(adaptor.getH0().getType());
  auto carry = cast<RankedTensorType>(adaptor.getDfinalState().getType());
  SmallVector<int64_t> want(h0.getShape());
  if (std::optional<int64_t> window = adaptor.getTruncate())
    want.insert(want.begin() + 1, *window);
  if (carry.getShape() != ArrayRef<int64_t>(want))
    return emitInferError(loc, "selective_scan_state_grad expects dfinal_state " +
                                   shapeString(want) + ", got " + shapeString(carry.getShape()));
  results.push_back(carry);
  if (adaptor.getWithOutput())
    results.push_back(adaptor.getU().getType());
  return success();
}

LogicalResult SelectiveScanCarryOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                     Adaptor adaptor,
                                                     SmallVectorImpl<Type> &results) {
  auto dy = cast<RankedTensorType>(adaptor.getDy().getType());
  auto a = cast<RankedTensorType>(adaptor.getA().getType());
  auto c = cast<RankedTensorType>(adaptor.getC().getType());
  if (dy.getRank() != 3 || a.getRank() != 2 || c.getRank() != 3 ||
      adaptor.getDelta().getType() != dy || a.getDimSize(0) != dy.getDimSize(2) ||
      c.getShape() != ArrayRef<int64_t>{dy.getDimSize(0), dy.getDimSize(1), a.getDimSize(1)})
    return emitInferError(loc, "selective_scan_carry expects dy and delta [B,S,E], A [E,N] and "
                               "C [B,S,N]");
  auto state = RankedTensorType::get({dy.getDimSize(0), dy.getDimSize(2), a.getDimSize(1)},
                                     dy.getElementType());
  results.assign({state, state});
  return success();
}

LogicalResult SelectiveScanCarryCombineOp::inferReturnTypes(MLIRContext *,
                                                            std::optional<Location> loc,
                                                            Adaptor adaptor,
                                                            SmallVectorImpl<Type> &results) {
  auto carries = cast<RankedTensorType>(adaptor.getCarries().getType());
  auto dfinal = cast<RankedTensorType>(adaptor.getDfinal().getType());
  if (adaptor.getDecays().getType() != carries || carries.getRank() != 3 ||
      dfinal.getRank() != 3 || dfinal.getDimSize(0) == 0 ||
      carries.getDimSize(0) % dfinal.getDimSize(0) != 0 ||
      carries.getShape().drop_front() != dfinal.getShape().drop_front())
    return emitInferError(loc, "selective_scan_carry_combine expects carries and decays "
                               "[K*B,E,N] and dfinal [B,E,N]");
  results.assign({carries, dfinal});
  return success();
}

LogicalResult SelectiveScanGradOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                                    Adaptor adaptor,
                                                    SmallVectorImpl<Type> &results) {
  for (Value v : {adaptor.getU(), adaptor.getDelta(), adaptor.getA(), adaptor.getB(),
                  adaptor.getC()})
    results.push_back(v.getType());
  if (adaptor.getWithOutput())
    results.push_back(adaptor.getU().getType());
  return success();
}

LogicalResult SliceScatterOp::verify() {
  auto in = getInput().getType(), out = getOutput().getType();
  ArrayRef<int64_t> starts = getStarts(), steps = getSteps();
  if (in.getRank() != out.getRank() || int64_t(starts.size()) != in.getRank() ||
      int64_t(steps.size()) != in.getRank())
    return emitOpError("needs starts and steps for every dim of equal-rank input and result");
  if (in.getElementType() != out.getElementType())
    return emitOpError("cannot change the element type");
  for (int64_t d = 0; d < in.getRank(); ++d) {
    int64_t n = in.getDimSize(d);
    if (steps[d] == 0)
      return emitOpError("step 0 in dim ") << d;
    if (n == 0)
      continue;
    int64_t last = starts[d] + (n - 1) * steps[d];
    if (starts[d] < 0 || starts[d] >= out.getDimSize(d) || last < 0 || last >= out.getDimSize(d))
      return emitOpError("dim ") << d << " writes outside the result";
  }
  return success();
}

LogicalResult ScatterAddOp::verify() {
  auto out = getOutput().getType(), grad = getGrad().getType();
  auto indices = cast<RankedTensorType>(getIndices().getType());
  int64_t axis = getAxis();
  if (axis < 0 || axis >= out.getRank())
    return emitOpError("axis ") << axis << " is out of range";
  SmallVector<int64_t> expected(out.getShape().take_front(axis));
  llvm::append_range(expected, indices.getShape());
  llvm::append_range(expected, out.getShape().drop_front(axis + 1));
  if (grad.getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("grad shape ") << shapeString(grad.getShape())
                                      << " is not what gathering the result would give, "
                                      << shapeString(expected);
  return success();
}

static LogicalResult verifyScalars(Operation *op, ValueRange scalars) {
  for (Value v : scalars)
    if (cast<RankedTensorType>(v.getType()).getRank() != 0)
      return op->emitOpError("lr, step and scale must be rank-0 tensors");
  return success();
}

LogicalResult AdamWUpdateOp::verify() {
  return verifyScalars(*this, {getLr(), getStep(), getScale()});
}

LogicalResult SgdUpdateOp::verify() { return verifyScalars(*this, {getLr(), getScale()}); }

#define GET_OP_CLASSES
#include "dialects/lc/LcOps.cpp.inc"
