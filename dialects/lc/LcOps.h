//===- LcOps.h - Operations of the `lc` dialect -----------------*- C++ -*-===//
#pragma once

#include "dialects/lc/LcDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace longctx::lc {
class VjpBuilder;
} // namespace longctx::lc

#include "dialects/lc/LcInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/lc/LcOps.h.inc"

namespace longctx::lc {

/// Ops whose every operand is constant are folded only when the result has
/// at most this many elements, so a folded causal mask or RoPE table stays
/// small and S x S tensors at long sequence lengths are computed at run time.
constexpr int64_t kMaxFoldedElements = 1 << 20;

/// Evaluates `op` on constant operands with the runtime's CPU kernel; null
/// when an operand is not constant, the result is too large, or the kernel
/// does not support the element types.
mlir::Attribute foldWithKernel(mlir::Operation *op,
                               llvm::ArrayRef<mlir::Attribute> operands);

} // namespace longctx::lc

namespace longctx::lc {

/// Clones `op` with its operands remapped through `mapping`, and its result
/// types inferred again from the new operands (a mini-sequence chunk with
/// fewer rows). Null, with the clone erased, when a result type cannot be
/// inferred (ops without type inference whose types changed).
mlir::Operation *cloneWithInferredTypes(mlir::OpBuilder &builder, mlir::Operation &op,
                                        mlir::IRMapping &mapping);

} // namespace longctx::lc
