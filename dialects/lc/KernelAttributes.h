//===- KernelAttributes.h - MLIR attributes <-> runtime kernel attributes -===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/DType.h"

#include <optional>

namespace mlir {
class Operation;
class Type;
} // namespace mlir

namespace longctx::lc {

/// The kernel name of an `lc` op: its name without the dialect prefix.
std::string kernelName(mlir::Operation *op);

/// The op's integer, float, bool, string and i64-array attributes as the
/// runtime kernel receives them (bools become 0/1).
AttrMap kernelAttributes(mlir::Operation *op);

/// The runtime dtype of a tensor element type, if the runtime holds it.
std::optional<DType> runtimeDType(mlir::Type element);

/// The device the module is compiled for (its `lc.device` attribute, set by
/// longctx-compile --device): "cuda" plans every kernel's scratch too.
constexpr const char *kDeviceAttr = "lc.device";
bool compiledForCuda(mlir::Operation *op);

/// The workspace bytes the CUDA kernel of `op` needs for its operand and
/// result types (runtime/cuda/KernelWorkspace.h); 0 for none.
uint64_t cudaWorkspaceBytesOf(mlir::Operation *op);

} // namespace longctx::lc
