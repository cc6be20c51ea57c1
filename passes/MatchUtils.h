//===- MatchUtils.h - Small matchers shared by the fusion passes -----------===//
#pragma once

#include "dialects/lc/LcOps.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"

#include <optional>

namespace longctx {

inline llvm::ArrayRef<int64_t> shapeOf(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType()).getShape();
}

/// The value of a float constant splat (a scalar, or any shape holding one
/// value), if `v` is one.
inline std::optional<double> splatValue(mlir::Value v) {
  mlir::DenseElementsAttr attr;
  if (!mlir::matchPattern(v, mlir::m_Constant(&attr)) || !attr.isSplat() ||
      !mlir::isa<mlir::FloatType>(attr.getElementType()))
    return std::nullopt;
  return attr.getSplatValue<llvm::APFloat>().convertToDouble();
}

/// Values that do not depend on the step's inputs (block arguments): the
/// weights, what is computed from them only (transposes, casts, -exp(A_log)),
/// biases and constants. Every chunk or shard reads them whole.
inline bool isWeightLike(mlir::Value v) {
  mlir::Operation *def = v.getDefiningOp();
  if (!def)
    return false;
  if (mlir::isa<lc::ParamOp, lc::ConstantOp>(def))
    return true;
  return def->getNumOperands() > 0 && def->getNumRegions() == 0 &&
         llvm::all_of(def->getOperands(), isWeightLike);
}

} // namespace longctx
