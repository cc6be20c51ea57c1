//===- VjpBuilder.h - Building blocks of gradient rules ---------*- C++ -*-===//
//
// Gradient rules are written against this small builder so each reads like
// its math: `b.mul(dy, b.sigmoid(x))`. Every helper builds `lc` ops at the
// op being differentiated, with result types inferred.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace longctx::lc {

class VjpBuilder {
public:
  VjpBuilder(mlir::OpBuilder &builder, mlir::Location loc) : b(builder), loc(loc) {}

  mlir::OpBuilder &b;
  mlir::Location loc;

  // Elementwise arithmetic with numpy broadcasting.
  mlir::Value add(mlir::Value x, mlir::Value y);
  mlir::Value sub(mlir::Value x, mlir::Value y);
  mlir::Value mul(mlir::Value x, mlir::Value y);
  mlir::Value div(mlir::Value x, mlir::Value y);
  mlir::Value neg(mlir::Value x);
  mlir::Value exp(mlir::Value x);
  mlir::Value log(mlir::Value x);
  mlir::Value sigmoid(mlir::Value x);
  mlir::Value pow(mlir::Value x, mlir::Value y);
  mlir::Value greater(mlir::Value x, mlir::Value y);
  mlir::Value less(mlir::Value x, mlir::Value y);
  mlir::Value equal(mlir::Value x, mlir::Value y);
  mlir::Value where(mlir::Value cond, mlir::Value x, mlir::Value y);
  mlir::Value cast(mlir::Value x, mlir::Type elementType);

  /// A rank-0 constant of `like`'s element type.
  mlir::Value scalar(mlir::Value like, double value);
  /// Zeros of `type` (a splat: stored once).
  mlir::Value zeros(mlir::RankedTensorType type);

  mlir::Value reshape(mlir::Value x, llvm::ArrayRef<int64_t> shape);
  mlir::Value transpose(mlir::Value x, llvm::ArrayRef<int64_t> perm);
  /// Swaps the last two dims.
  mlir::Value transposeLast2(mlir::Value x);
  mlir::Value expand(mlir::Value x, llvm::ArrayRef<int64_t> shape);
  mlir::Value reduceSum(mlir::Value x, llvm::ArrayRef<int64_t> axes, bool keepdims);

  /// Sums `grad` down to `shape`: the adjoint of broadcasting a tensor of
  /// `shape` to grad's shape (leading dims dropped, size-1 dims summed).
  mlir::Value sumToShape(mlir::Value grad, llvm::ArrayRef<int64_t> shape);
  /// Broadcasts `x` (of the reduced shape, with or without kept dims) back
  /// to `shape`: the adjoint of a reduction over `axes`.
  mlir::Value broadcastBack(mlir::Value x, llvm::ArrayRef<int64_t> axes,
                            llvm::ArrayRef<int64_t> shape);
};

/// Whether `v` is a zeros splat, as autodiff hands for results that do not
/// reach the loss.
bool isZeros(mlir::Value v);

} // namespace longctx::lc
