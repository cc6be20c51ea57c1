//===- KernelAttributes.h - MLIR attributes <-> runtime kernel attributes -===//
#pragma once

#include "runtime/AttrMap.h"

namespace mlir {
class Operation;
} // namespace mlir

namespace longctx::lc {

/// The kernel name of an `lc` op: its name without the dialect prefix.
std::string kernelName(mlir::Operation *op);

/// The op's integer, float, bool, string and i64-array attributes as the
/// runtime kernel receives them (bools become 0/1).
AttrMap kernelAttributes(mlir::Operation *op);

} // namespace longctx::lc
