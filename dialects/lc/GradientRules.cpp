//===- GradientRules.cpp - The reverse-mode rule of every `lc` op ----------===//
//
// One `buildVjp` per op: given result cotangents, the operand cotangents.
// Broadcasting operands get their cotangent summed back to their own shape;
// integer, bool and index operands get none. Each rule is checked against
// finite differences in float64 (test/unit/GradientTest.cpp).
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "dialects/lc/VjpBuilder.h"

#include <cmath>

using namespace mlir;

namespace longctx::lc {
namespace {

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
bool isFloatTensor(Value v) {
  return isa<FloatType>(cast<RankedTensorType>(v.getType()).getElementType());
}

/// Rules whose operands are all non-differentiable.
LogicalResult noGradients(Operation *op, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(op->getNumOperands(), Value());
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise binary
//===----------------------------------------------------------------------===//

LogicalResult AddOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.sumToShape(dys[0], shapeOf(getLhs())), b.sumToShape(dys[0], shapeOf(getRhs()))});
  return success();
}

LogicalResult SubOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.sumToShape(dys[0], shapeOf(getLhs())),
           b.sumToShape(b.neg(dys[0]), shapeOf(getRhs()))});
  return success();
}

LogicalResult MulOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.sumToShape(b.mul(dys[0], getRhs()), shapeOf(getLhs())),
           b.sumToShape(b.mul(dys[0], getLhs()), shapeOf(getRhs()))});
  return success();
}

LogicalResult DivOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value dy = dys[0];
  // d(a/b)/db = -(a/b)/b = -y/b.
  grads.assign({b.sumToShape(b.div(dy, getRhs()), shapeOf(getLhs())),
           b.sumToShape(b.neg(b.div(b.mul(dy, getOutput()), getRhs())), shapeOf(getRhs()))});
  return success();
}

LogicalResult PowOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value dy = dys[0], x = getLhs(), p = getRhs();
  Value dx = b.mul(dy, b.mul(p, b.pow(x, b.sub(p, b.scalar(p, 1.0)))));
  Value dp = b.mul(dy, b.mul(getOutput(), b.log(x)));
  grads.assign({b.sumToShape(dx, shapeOf(x)), b.sumToShape(dp, shapeOf(p))});
  return success();
}

/// max/min: the cotangent goes to the selected operand; ties split it in
/// half, as PyTorch's maximum/minimum do.
static LogicalResult minMaxVjp(VjpBuilder &b, Value lhs, Value rhs, bool isMax, Value dy,
                               SmallVectorImpl<Value> &grads) {
  Value lhsWins = isMax ? b.greater(lhs, rhs) : b.less(lhs, rhs);
  Value tie = b.equal(lhs, rhs);
  Value half = b.mul(dy, b.scalar(dy, 0.5));
  Value zero = b.scalar(dy, 0.0);
  Value dl = b.where(lhsWins, dy, b.where(tie, half, zero));
  Value dr = b.where(lhsWins, zero, b.where(tie, half, dy));
  grads.assign({b.sumToShape(dl, shapeOf(lhs)), b.sumToShape(dr, shapeOf(rhs))});
  return success();
}

LogicalResult MaxOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  return minMaxVjp(b, getLhs(), getRhs(), true, dys[0], grads);
}

LogicalResult MinOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  return minMaxVjp(b, getLhs(), getRhs(), false, dys[0], grads);
}

#define LC_NO_GRADIENT(OP)                                                     \
  LogicalResult OP::buildVjp(VjpBuilder &, ArrayRef<Value>,                    \
                             SmallVectorImpl<Value> &grads) {                  \
    return noGradients(*this, grads);                                          \
  }
LC_NO_GRADIENT(EqualOp)
LC_NO_GRADIENT(LessOp)
LC_NO_GRADIENT(GreaterOp)
LC_NO_GRADIENT(AndOp)
LC_NO_GRADIENT(OrOp)
LC_NO_GRADIENT(NotOp)
LC_NO_GRADIENT(RangeOp)
#undef LC_NO_GRADIENT

//===----------------------------------------------------------------------===//
// Elementwise unary: dx = dy * f'(x), written with the result y where cheaper.
//===----------------------------------------------------------------------===//

LogicalResult NegOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.neg(dys[0])});
  return success();
}

LogicalResult AbsOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value x = getInput(), dy = dys[0], zero = b.scalar(dy, 0.0);
  grads.assign({b.where(b.greater(x, b.scalar(x, 0.0)), dy,
                   b.where(b.less(x, b.scalar(x, 0.0)), b.neg(dy), zero))});
  return success();
}

LogicalResult ReluOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value x = getInput();
  grads.assign({b.where(b.greater(x, b.scalar(x, 0.0)), dys[0], b.scalar(dys[0], 0.0))});
  return success();
}

LogicalResult ExpOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.mul(dys[0], getOutput())});
  return success();
}

LogicalResult LogOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.div(dys[0], getInput())});
  return success();
}

LogicalResult SqrtOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.div(b.mul(dys[0], b.scalar(dys[0], 0.5)), getOutput())});
  return success();
}

LogicalResult ReciprocalOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                     SmallVectorImpl<Value> &grads) {
  Value y = getOutput();
  grads.assign({b.neg(b.mul(dys[0], b.mul(y, y)))});
  return success();
}

LogicalResult TanhOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value y = getOutput();
  grads.assign({b.mul(dys[0], b.sub(b.scalar(y, 1.0), b.mul(y, y)))});
  return success();
}

LogicalResult ErfOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value x = getInput();
  Value slope = b.mul(b.scalar(x, 2.0 / std::sqrt(M_PI)), b.exp(b.neg(b.mul(x, x))));
  grads.assign({b.mul(dys[0], slope)});
  return success();
}

LogicalResult SigmoidOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  Value y = getOutput();
  grads.assign({b.mul(dys[0], b.mul(y, b.sub(b.scalar(y, 1.0), y)))});
  return success();
}

LogicalResult SoftplusOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                   SmallVectorImpl<Value> &grads) {
  grads.assign({b.mul(dys[0], b.sigmoid(getInput()))});
  return success();
}

LogicalResult CosOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value x = getInput();
  grads.assign({b.neg(b.mul(dys[0], b.b.create<SinOp>(b.loc, x.getType(), x)))});
  return success();
}

LogicalResult SinOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value x = getInput();
  grads.assign({b.mul(dys[0], b.b.create<CosOp>(b.loc, x.getType(), x))});
  return success();
}

LogicalResult IdentityOp::buildVjp(VjpBuilder &, ArrayRef<Value> dys,
                                   SmallVectorImpl<Value> &grads) {
  grads.assign({dys[0]});
  return success();
}

LogicalResult CastOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  // Only float -> float casts carry a gradient (back in the input's type).
  if (isFloatTensor(getInput()) && isFloatTensor(getOutput()))
    grads.assign({b.cast(dys[0], getInput().getType().getElementType())});
  else
    grads.assign({Value()});
  return success();
}

LogicalResult WhereOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                SmallVectorImpl<Value> &grads) {
  Value dy = dys[0], zero = b.scalar(dy, 0.0);
  grads.assign({Value(), b.sumToShape(b.where(getCondition(), dy, zero), shapeOf(getX())),
           b.sumToShape(b.where(getCondition(), zero, dy), shapeOf(getY()))});
  return success();
}

//===----------------------------------------------------------------------===//
// Contractions and normalisation
//===----------------------------------------------------------------------===//

LogicalResult MatMulOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  Value dy = dys[0], lhs = getLhs(), rhs = getRhs();
  ArrayRef<int64_t> ls = shapeOf(lhs), rs = shapeOf(rhs), ys = shapeOf(dy);
  if (rs.size() == 2) {
    // x[..., K] @ W[K, N], W shared by every row: flatten the rows and let
    // BLAS transpose (gemm flags) instead of materialising transposes;
    // dW is one GEMM over all rows, not a batched product and a reduction.
    int64_t rows = 1;
    for (int64_t d : ls.drop_back())
      rows *= d;
    Value x2 = b.reshape(lhs, {rows, ls.back()});
    Value dy2 = b.reshape(dy, {rows, ys.back()});
    auto gemm = [&](Value a, Value m, bool ta, bool tb) -> Value {
      return b.b.create<GemmOp>(b.loc, a, m, Value(), b.b.getF64FloatAttr(1.0),
                                b.b.getF64FloatAttr(1.0), b.b.getBoolAttr(ta), b.b.getBoolAttr(tb));
    };
    Value dx = b.reshape(gemm(dy2, rhs, false, true), ls);
    Value dw = gemm(x2, dy2, true, false);
    grads.assign({dx, dw});
    return success();
  }
  Value dl = b.b.create<MatMulOp>(b.loc, dy, b.transposeLast2(rhs));
  Value dr = b.b.create<MatMulOp>(b.loc, b.transposeLast2(lhs), dy);
  grads.assign({b.sumToShape(dl, ls), b.sumToShape(dr, rs)});
  return success();
}

LogicalResult GemmOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  Value dy = b.mul(dys[0], b.scalar(dys[0], getAlpha().convertToDouble()));
  Value a = getTransA() ? b.transposeLast2(getA()) : getA();
  Value bm = getTransB() ? b.transposeLast2(getB()) : getB();
  Value da = b.b.create<MatMulOp>(b.loc, dy, b.transposeLast2(bm));
  Value db = b.b.create<MatMulOp>(b.loc, b.transposeLast2(a), dy);
  grads.assign({getTransA() ? b.transposeLast2(da) : da, getTransB() ? b.transposeLast2(db) : db});
  if (getC())
    grads.push_back(b.sumToShape(b.mul(dys[0], b.scalar(dys[0], getBeta().convertToDouble())),
                                 shapeOf(getC())));
  return success();
}

LogicalResult SoftmaxOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  Value y = getOutput(), dy = dys[0];
  Value dot = b.reduceSum(b.mul(dy, y), {getAxis()}, /*keepdims=*/true);
  grads.assign({b.mul(y, b.sub(dy, dot))});
  return success();
}

LogicalResult LogSoftmaxOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                     SmallVectorImpl<Value> &grads) {
  Value dy = dys[0];
  Value total = b.reduceSum(dy, {getAxis()}, /*keepdims=*/true);
  grads.assign({b.sub(dy, b.mul(b.exp(getOutput()), total))});
  return success();
}

LogicalResult LayerNormOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  auto grad = b.b.create<LayerNormGradOp>(b.loc, dys[0], getInput(), getScale(), getAxisAttr(),
                                          getEpsilonAttr());
  grads.assign({grad.getDx(), grad.getDscale()});
  if (Value bias = getBias())
    grads.push_back(b.sumToShape(b.reshape(grad.getDbias(), shapeOf(getScale())), shapeOf(bias)));
  return success();
}

LogicalResult CumSumOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  grads.assign({b.b.create<CumSumOp>(b.loc, dys[0].getType(), dys[0], getAxisAttr(),
                                getExclusiveAttr(), b.b.getBoolAttr(!getReverse()))});
  return success();
}

static SmallVector<int64_t> reducedAxes(ArrayRef<int64_t> axes) { return SmallVector<int64_t>(axes); }

LogicalResult ReduceSumOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  grads.assign({b.broadcastBack(dys[0], reducedAxes(getAxes()), shapeOf(getInput()))});
  return success();
}

LogicalResult ReduceMeanOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                     SmallVectorImpl<Value> &grads) {
  int64_t count = 1;
  for (int64_t a : getAxes())
    count *= shapeOf(getInput())[a];
  Value scaled = b.div(dys[0], b.scalar(dys[0], double(count)));
  grads.assign({b.broadcastBack(scaled, reducedAxes(getAxes()), shapeOf(getInput()))});
  return success();
}

LogicalResult ReduceMaxOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  // Ties share the cotangent evenly (PyTorch's amax).
  Value x = getInput();
  SmallVector<int64_t> axes = reducedAxes(getAxes());
  Value maxBack = b.broadcastBack(getOutput(), axes, shapeOf(x));
  Value isMax = b.equal(x, maxBack);
  Value ones = b.cast(isMax, cast<RankedTensorType>(x.getType()).getElementType());
  Value count = b.broadcastBack(b.reduceSum(ones, axes, true), axes, shapeOf(x));
  Value share = b.div(b.broadcastBack(dys[0], axes, shapeOf(x)), count);
  grads.assign({b.where(isMax, share, b.scalar(share, 0.0))});
  return success();
}

//===----------------------------------------------------------------------===//
// Layout and indexing
//===----------------------------------------------------------------------===//

LogicalResult TransposeOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  SmallVector<int64_t> inverse(getPerm().size());
  for (auto [i, p] : llvm::enumerate(getPerm()))
    inverse[p] = int64_t(i);
  grads.assign({b.transpose(dys[0], inverse)});
  return success();
}

LogicalResult ReshapeOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  grads.assign({b.reshape(dys[0], shapeOf(getInput()))});
  return success();
}

LogicalResult ExpandOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  grads.assign({b.sumToShape(dys[0], shapeOf(getInput()))});
  return success();
}

LogicalResult SliceOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  auto type = cast<RankedTensorType>(getInput().getType());
  grads.assign({b.b.create<SliceScatterOp>(b.loc, type, dys[0], getStartsAttr(), getStepsAttr())});
  return success();
}

LogicalResult ConcatOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  int64_t axis = getAxis(), offset = 0;
  ArrayRef<int64_t> full = shapeOf(getOutput());
  grads.clear();
  for (Value in : getInputs()) {
    SmallVector<int64_t> starts(full.size(), 0), sizes(shapeOf(in)), steps(full.size(), 1);
    starts[axis] = offset;
    offset += sizes[axis];
    grads.push_back(b.b.create<SliceOp>(b.loc, dys[0], b.b.getDenseI64ArrayAttr(starts),
                                        b.b.getDenseI64ArrayAttr(sizes),
                                        b.b.getDenseI64ArrayAttr(steps)));
  }
  return success();
}

LogicalResult GatherOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  if (!isFloatTensor(getData()))
    return noGradients(*this, grads);
  grads.assign({b.b.create<ScatterAddOp>(b.loc, getData().getType(), dys[0], getIndices(),
                                    getAxisAttr()),
           Value()});
  return success();
}

LogicalResult TriluOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys, SmallVectorImpl<Value> &grads) {
  grads.assign({b.b.create<TriluOp>(b.loc, dys[0].getType(), dys[0], getUpperAttr(), getKAttr())});
  return success();
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  auto grad = b.b.create<RmsNormGradOp>(b.loc, dys[0], getInput(), getScale(), getEpsilonAttr());
  grads.assign({grad.getDx(), grad.getDscale()});
  return success();
}

LogicalResult GatedMlpOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                   SmallVectorImpl<Value> &grads) {
  auto grad = b.b.create<GatedMlpGradOp>(b.loc, dys[0], getInput(), getWGate(), getWUp(),
                                         getWDown());
  // Discardable tuning attributes (chunk_rows) carry over to the backward.
  for (NamedAttribute attr : (*this)->getDiscardableAttrs())
    grad->setAttr(attr.getName(), attr.getValue());
  grads.assign({grad.getDx(), grad.getDwGate(), grad.getDwUp(), grad.getDwDown()});
  return success();
}

LogicalResult AttentionOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  // The log-sum-exp result only feeds the backward: its cotangent is unused.
  auto grad = b.b.create<AttentionGradOp>(b.loc, dys[0], getQ(), getK(), getV(), getOutput(),
                                          getLse(), getScaleAttr(), getCausalAttr());
  grads.assign({grad.getDq(), grad.getDk(), grad.getDv()});
  return success();
}

//===----------------------------------------------------------------------===//
// State-space models and loss
//===----------------------------------------------------------------------===//

LogicalResult SelectiveScanOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                        SmallVectorImpl<Value> &grads) {
  auto grad = b.b.create<SelectiveScanGradOp>(b.loc, dys[0], getU(), getDelta(), getA(), getB(),
                                              getC(), UnitAttr());
  grads.assign({grad.getDu(), grad.getDdelta(), grad.getDa(), grad.getDb(), grad.getDc()});
  return success();
}

LogicalResult SelectiveScanStateOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                             SmallVectorImpl<Value> &grads) {
  Value dFinal = dys[1];
  if (std::optional<int64_t> window = getTruncate()) {
    // Truncated, the final state's cotangent is an adjoint window; only the
    // carrying loop (lc.mini_sequence) provides one.
    auto state = cast<RankedTensorType>(getFinalState().getType());
    SmallVector<int64_t> shape(state.getShape());
    shape.insert(shape.begin() + 1, *window);
    auto windowType = RankedTensorType::get(shape, state.getElementType());
    if (dFinal.getType() != windowType) {
      if (!isZeros(dFinal))
        return emitOpError("a truncated scan's final state can only be carried by its loop");
      dFinal = b.zeros(windowType);
    }
  }
  auto grad = b.b.create<SelectiveScanStateGradOp>(b.loc, dys[0], dFinal, getU(), getDelta(),
                                                   getA(), getB(), getC(), getH0(),
                                                   getTruncateAttr(), UnitAttr());
  grads.assign({grad.getDu(), grad.getDdelta(), grad.getDa(), grad.getDb(), grad.getDc(),
                grad.getDh0()});
  return success();
}

LogicalResult CrossEntropyOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                       SmallVectorImpl<Value> &grads) {
  grads.assign({b.b.create<CrossEntropyGradOp>(b.loc, getLogits(), getTargets(), dys[0],
                                          getShiftAttr(), getIgnoreIndexAttr(),
                                          getReductionAttr()),
           Value()});
  return success();
}

} // namespace longctx::lc
