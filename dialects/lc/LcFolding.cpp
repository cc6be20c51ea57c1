//===- LcFolding.cpp - Folding `lc` ops with the runtime's CPU kernels -----===//
//
// Rather than a second, compile-time implementation of every op, the folder
// converts constant operands to runtime tensors, runs the op's CPU kernel and
// converts the result back. Exporters' shape subgraphs (Shape -> Gather ->
// Concat -> Reshape, Range, Trilu masks) thus fold with exactly the semantics
// the runtime executes.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"
#include "runtime/cpu/Kernels.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;
using namespace longctx;
using namespace longctx::lc;

namespace {

std::optional<DType> toDType(Type type) {
  if (type.isF32())
    return DType::F32;
  if (type.isF64())
    return DType::F64;
  if (type.isSignlessInteger(64))
    return DType::I64;
  if (type.isSignlessInteger(32))
    return DType::I32;
  if (type.isSignlessInteger(1))
    return DType::Bool;
  return std::nullopt;
}

template <typename T> void copyOut(DenseElementsAttr attr, T *out) {
  int64_t i = 0;
  for (T v : attr.getValues<T>())
    out[i++] = v;
}

std::optional<Tensor> toTensor(Attribute attr) {
  auto dense = dyn_cast_or_null<DenseElementsAttr>(attr);
  if (!dense)
    return std::nullopt;
  auto type = cast<RankedTensorType>(dense.getType());
  std::optional<DType> dtype = toDType(type.getElementType());
  if (!dtype)
    return std::nullopt;
  Tensor t(*dtype, Shape(type.getShape().begin(), type.getShape().end()));
  switch (*dtype) {
  case DType::F32: copyOut(dense, t.as<float>()); break;
  case DType::F64: copyOut(dense, t.as<double>()); break;
  case DType::I64: copyOut(dense, t.as<int64_t>()); break;
  case DType::I32: copyOut(dense, t.as<int32_t>()); break;
  case DType::Bool: {
    int64_t i = 0;
    for (bool v : dense.getValues<bool>())
      t.as<uint8_t>()[i++] = v;
    break;
  }
  default: return std::nullopt;
  }
  return t;
}

template <typename T> DenseElementsAttr toAttr(RankedTensorType type, const Tensor &t) {
  return DenseElementsAttr::get(type, ArrayRef<T>(t.as<T>(), t.numElements()));
}

DenseElementsAttr toAttribute(RankedTensorType type, const Tensor &t) {
  switch (t.dtype()) {
  case DType::F32: return toAttr<float>(type, t);
  case DType::F64: return toAttr<double>(type, t);
  case DType::I64: return toAttr<int64_t>(type, t);
  case DType::I32: return toAttr<int32_t>(type, t);
  case DType::Bool: {
    SmallVector<bool> values(t.as<uint8_t>(), t.as<uint8_t>() + t.numElements());
    return DenseElementsAttr::get(type, values);
  }
  default: return {};
  }
}

} // namespace

Attribute longctx::lc::foldWithKernel(Operation *op, ArrayRef<Attribute> operands) {
  if (op->getNumResults() != 1)
    return {};
  auto resultType = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!resultType || !resultType.hasStaticShape() ||
      resultType.getNumElements() > kMaxFoldedElements)
    return {};
  std::optional<DType> resultDType = toDType(resultType.getElementType());
  if (!resultDType)
    return {};

  std::vector<Tensor> inputs;
  for (Attribute attr : operands) {
    std::optional<Tensor> t = toTensor(attr);
    if (!t)
      return {};
    inputs.push_back(std::move(*t));
  }
  std::vector<TensorRef> inputRefs;
  for (const Tensor &t : inputs)
    inputRefs.push_back(t.ref());
  Tensor output(*resultDType, Shape(resultType.getShape().begin(), resultType.getShape().end()));
  // A kernel error (say, a constant Gather index out of range) leaves the op
  // unfolded; the runtime reports it with the node's location.
  if (!runCpuKernel(kernelName(op), inputRefs, {output.ref()}, kernelAttributes(op)).ok())
    return {};
  return toAttribute(resultType, output);
}

//===----------------------------------------------------------------------===//
// Per-op folders: cheap algebraic identities first, then evaluation.
//===----------------------------------------------------------------------===//

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

OpFoldResult IdentityOp::fold(FoldAdaptor) { return getInput(); }

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getOutput().getType())
    return getInput();
  if (auto dense = dyn_cast_or_null<DenseElementsAttr>(adaptor.getInput()))
    return dense.reshape(getOutput().getType());
  return {};
}

OpFoldResult ExpandOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getOutput().getType())
    return getInput();
  if (auto dense = dyn_cast_or_null<DenseElementsAttr>(adaptor.getInput()))
    if (dense.isSplat())
      return DenseElementsAttr::get(getOutput().getType(), dense.getSplatValue<Attribute>());
  return foldWithKernel(*this, adaptor.getOperands());
}

OpFoldResult TransposeOp::fold(FoldAdaptor adaptor) {
  if (llvm::equal(getPerm(), llvm::seq<int64_t>(0, getPerm().size())))
    return getInput();
  // transpose(transpose(x, p1), p2) = transpose(x, p1[p2]).
  if (auto inner = getInput().getDefiningOp<TransposeOp>()) {
    SmallVector<int64_t> composed;
    for (int64_t p : getPerm())
      composed.push_back(inner.getPerm()[p]);
    setPerm(composed);
    getInputMutable().assign(inner.getInput());
    return getResult();
  }
  return foldWithKernel(*this, adaptor.getOperands());
}

/// x op c -> x when c is a splat of `neutral` and x already has the result
/// type (the backward pass multiplies by the seed cotangent 1, adds zeros).
static Value foldNeutral(Value lhs, Value rhs, Attribute lhsAttr, Attribute rhsAttr, double neutral,
                         Type resultType) {
  auto isNeutral = [&](Attribute a) {
    auto dense = dyn_cast_or_null<DenseElementsAttr>(a);
    if (!dense || !dense.isSplat())
      return false;
    if (isa<FloatType>(dense.getElementType()))
      return dense.getSplatValue<APFloat>().convertToDouble() == neutral;
    if (dense.getElementType().isSignlessInteger() && !dense.getElementType().isInteger(1))
      return double(dense.getSplatValue<APInt>().getSExtValue()) == neutral;
    return false;
  };
  if (isNeutral(rhsAttr) && lhs.getType() == resultType)
    return lhs;
  if (isNeutral(lhsAttr) && rhs.getType() == resultType)
    return rhs;
  return {};
}

OpFoldResult AddOp::fold(FoldAdaptor adaptor) {
  if (Value v = foldNeutral(getLhs(), getRhs(), adaptor.getLhs(), adaptor.getRhs(), 0.0, getType()))
    return v;
  return foldWithKernel(*this, adaptor.getOperands());
}

OpFoldResult MulOp::fold(FoldAdaptor adaptor) {
  if (Value v = foldNeutral(getLhs(), getRhs(), adaptor.getLhs(), adaptor.getRhs(), 1.0, getType()))
    return v;
  return foldWithKernel(*this, adaptor.getOperands());
}

OpFoldResult CastOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getOutput().getType())
    return getInput();
  return foldWithKernel(*this, adaptor.getOperands());
}

#define LC_FOLD_BY_EVALUATION(OP)                                              \
  OpFoldResult OP::fold(FoldAdaptor adaptor) {                                 \
    return foldWithKernel(*this, adaptor.getOperands());                       \
  }
LC_FOLD_BY_EVALUATION(SubOp)
LC_FOLD_BY_EVALUATION(DivOp)
LC_FOLD_BY_EVALUATION(PowOp)
LC_FOLD_BY_EVALUATION(MaxOp)
LC_FOLD_BY_EVALUATION(MinOp)
LC_FOLD_BY_EVALUATION(EqualOp)
LC_FOLD_BY_EVALUATION(LessOp)
LC_FOLD_BY_EVALUATION(GreaterOp)
LC_FOLD_BY_EVALUATION(AndOp)
LC_FOLD_BY_EVALUATION(OrOp)
LC_FOLD_BY_EVALUATION(NegOp)
LC_FOLD_BY_EVALUATION(AbsOp)
LC_FOLD_BY_EVALUATION(ReluOp)
LC_FOLD_BY_EVALUATION(ExpOp)
LC_FOLD_BY_EVALUATION(LogOp)
LC_FOLD_BY_EVALUATION(SqrtOp)
LC_FOLD_BY_EVALUATION(ReciprocalOp)
LC_FOLD_BY_EVALUATION(TanhOp)
LC_FOLD_BY_EVALUATION(ErfOp)
LC_FOLD_BY_EVALUATION(SigmoidOp)
LC_FOLD_BY_EVALUATION(SoftplusOp)
LC_FOLD_BY_EVALUATION(CosOp)
LC_FOLD_BY_EVALUATION(SinOp)
LC_FOLD_BY_EVALUATION(NotOp)
LC_FOLD_BY_EVALUATION(WhereOp)
LC_FOLD_BY_EVALUATION(MatMulOp)
LC_FOLD_BY_EVALUATION(GemmOp)
LC_FOLD_BY_EVALUATION(SoftmaxOp)
LC_FOLD_BY_EVALUATION(LogSoftmaxOp)
LC_FOLD_BY_EVALUATION(LayerNormOp)
LC_FOLD_BY_EVALUATION(CumSumOp)
LC_FOLD_BY_EVALUATION(ReduceSumOp)
LC_FOLD_BY_EVALUATION(ReduceMeanOp)
LC_FOLD_BY_EVALUATION(ReduceMaxOp)
LC_FOLD_BY_EVALUATION(SliceOp)
LC_FOLD_BY_EVALUATION(ConcatOp)
LC_FOLD_BY_EVALUATION(GatherOp)
LC_FOLD_BY_EVALUATION(TriluOp)
LC_FOLD_BY_EVALUATION(RangeOp)
LC_FOLD_BY_EVALUATION(SelectiveScanOp)
LC_FOLD_BY_EVALUATION(CrossEntropyOp)
LC_FOLD_BY_EVALUATION(RmsNormOp)
LC_FOLD_BY_EVALUATION(GatedMlpOp)
#undef LC_FOLD_BY_EVALUATION

// Multi-result ops are not folded (no constant attention appears in practice).
LogicalResult AttentionOp::fold(FoldAdaptor, SmallVectorImpl<OpFoldResult> &) { return failure(); }
LogicalResult SelectiveScanStateOp::fold(FoldAdaptor, SmallVectorImpl<OpFoldResult> &) {
  return failure();
}
