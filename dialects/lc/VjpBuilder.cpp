//===- VjpBuilder.cpp - Building blocks of gradient rules ------------------===//
#include "dialects/lc/VjpBuilder.h"
#include "dialects/lc/LcOps.h"

using namespace mlir;

namespace longctx::lc {
namespace {
RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }
} // namespace

Value VjpBuilder::add(Value x, Value y) { return b.create<AddOp>(loc, x, y); }
Value VjpBuilder::sub(Value x, Value y) { return b.create<SubOp>(loc, x, y); }
Value VjpBuilder::mul(Value x, Value y) { return b.create<MulOp>(loc, x, y); }
Value VjpBuilder::div(Value x, Value y) { return b.create<DivOp>(loc, x, y); }
Value VjpBuilder::pow(Value x, Value y) { return b.create<PowOp>(loc, x, y); }
Value VjpBuilder::greater(Value x, Value y) { return b.create<GreaterOp>(loc, x, y); }
Value VjpBuilder::less(Value x, Value y) { return b.create<LessOp>(loc, x, y); }
Value VjpBuilder::equal(Value x, Value y) { return b.create<EqualOp>(loc, x, y); }
Value VjpBuilder::neg(Value x) { return b.create<NegOp>(loc, x.getType(), x); }
Value VjpBuilder::exp(Value x) { return b.create<ExpOp>(loc, x.getType(), x); }
Value VjpBuilder::log(Value x) { return b.create<LogOp>(loc, x.getType(), x); }
Value VjpBuilder::sigmoid(Value x) { return b.create<SigmoidOp>(loc, x.getType(), x); }
Value VjpBuilder::where(Value c, Value x, Value y) { return b.create<WhereOp>(loc, c, x, y); }

Value VjpBuilder::cast(Value x, Type elementType) {
  auto type = tensorType(x);
  if (type.getElementType() == elementType)
    return x;
  return b.create<CastOp>(loc, RankedTensorType::get(type.getShape(), elementType), x);
}

Value VjpBuilder::scalar(Value like, double value) {
  Type element = tensorType(like).getElementType();
  auto type = RankedTensorType::get({}, element);
  return b.create<ConstantOp>(loc, type, DenseElementsAttr::get(type, b.getFloatAttr(element, value)));
}

Value VjpBuilder::zeros(RankedTensorType type) {
  return b.create<ConstantOp>(loc, type,
                              DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType())));
}

bool isZeros(Value v) {
  auto constant = v ? v.getDefiningOp<ConstantOp>() : ConstantOp();
  auto dense = constant ? dyn_cast<DenseElementsAttr>(constant.getValue()) : DenseElementsAttr();
  return dense && dense.isSplat() && isa<FloatType>(dense.getElementType()) &&
         dense.getSplatValue<APFloat>().isZero();
}

Value VjpBuilder::reshape(Value x, ArrayRef<int64_t> shape) {
  auto type = tensorType(x);
  if (type.getShape() == shape)
    return x;
  return b.create<ReshapeOp>(loc, RankedTensorType::get(shape, type.getElementType()), x);
}

Value VjpBuilder::transpose(Value x, ArrayRef<int64_t> perm) {
  return b.create<TransposeOp>(loc, x, b.getDenseI64ArrayAttr(perm));
}

Value VjpBuilder::transposeLast2(Value x) {
  int64_t rank = tensorType(x).getRank();
  SmallVector<int64_t> perm = llvm::to_vector(llvm::seq<int64_t>(0, rank));
  std::swap(perm[rank - 1], perm[rank - 2]);
  return transpose(x, perm);
}

Value VjpBuilder::expand(Value x, ArrayRef<int64_t> shape) {
  auto type = tensorType(x);
  if (type.getShape() == shape)
    return x;
  return b.create<ExpandOp>(loc, RankedTensorType::get(shape, type.getElementType()), x);
}

Value VjpBuilder::reduceSum(Value x, ArrayRef<int64_t> axes, bool keepdims) {
  if (axes.empty())
    return x;
  return b.create<ReduceSumOp>(loc, x, b.getDenseI64ArrayAttr(axes), b.getBoolAttr(keepdims));
}

Value VjpBuilder::sumToShape(Value grad, ArrayRef<int64_t> shape) {
  ArrayRef<int64_t> have = tensorType(grad).getShape();
  if (have == shape)
    return grad;
  int64_t lead = int64_t(have.size()) - int64_t(shape.size());
  SmallVector<int64_t> axes;
  for (int64_t d = 0; d < int64_t(have.size()); ++d)
    if (d < lead || (shape[d - lead] == 1 && have[d] != 1))
      axes.push_back(d);
  return reshape(reduceSum(grad, axes, /*keepdims=*/true), shape);
}

Value VjpBuilder::broadcastBack(Value x, ArrayRef<int64_t> axes, ArrayRef<int64_t> shape) {
  SmallVector<int64_t> kept(shape);
  for (int64_t a : axes)
    kept[a] = 1;
  return expand(reshape(x, kept), shape);
}

} // namespace longctx::lc
