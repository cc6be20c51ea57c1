//===- StepMemory.h - The memory a training step's program order needs ---===//
//
// The IR-level mirror of what the artifact builder plans: which values live
// in the arena, when each lives in the current program order, in-place
// reuse, the weights' data and the optimizer state. lc-schedule,
// lc-plan-memory and lc-recompute{policy=auto} measure orders and rewrites
// with it, so their choices are made on the same numbers the artifact gets.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "compiler/planning/ArenaPlanner.h"
#include "dialects/lc/LcOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <vector>

namespace longctx {

/// Splat constants above this many elements are filled at run time (in the
/// arena) rather than stored in the data section.
constexpr int64_t kMaxStoredSplatElements = 4096;
bool isFilledAtRunTime(lc::ConstantOp constant);

/// Bytes the runtime holds for a value of `type` (0 for non-tensors).
uint64_t tensorBytes(mlir::Type type);

/// Whether `op`'s results are arena buffers (every op that lowers to a
/// kernel launch; not parameters, stored constants or the terminator).
bool definesArenaBuffers(mlir::Operation *op);

struct StepMemory {
  /// Arena buffers: the block arguments, then op results in program order
  /// (buffer i holds value i); for CUDA, then the kernels' workspaces.
  std::vector<mlir::Value> values;
  std::vector<BufferLifetime> buffers; // positions are op indices in the block
  ArenaPlan arena;
  uint64_t dataBytes = 0;  // weights and stored constants, 64-byte padded
  uint64_t stateBytes = 0; // optimizer state
  uint64_t peakBytes() const { return dataBytes + stateBytes + arena.arenaBytes; }
};

/// Lifetimes and the arena plan of `func`'s body in its current order.
StepMemory planStepMemory(mlir::func::FuncOp func);

} // namespace longctx
