//===- Schedule.h - Memory-aware ordering of a step's ops --------*- C++ -*-===//
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>

namespace longctx {

/// Reorders `func`'s body to the candidate order (definition, depth-first,
/// greedy free-first) with the lowest simulated peak of live arena bytes;
/// returns that peak. The order found is a valid topological order that
/// also keeps updates after their parameter's readers and recomputed ops
/// after their anchor (see lc-schedule).
uint64_t scheduleForLowPeak(mlir::func::FuncOp func);

} // namespace longctx
