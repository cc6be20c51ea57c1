//===- ParallelGroups.h - Keep parallel groups runnable ----------*- C++ -*-===//
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace longctx {

/// Makes each parallel group of `func` (ops with lc.lane) one contiguous run,
/// worker after worker, after:
///  - giving an op without a lane the lane of the ops around it when those
///    are all of one worker (passes after the unrolling, such as the
///    canonicalizer, make ops without attributes);
///  - moving the other ops inside a group's span before it (what the group
///    does not depend on) or after it.
/// A group whose workers exchange values, or that an op both feeds and
/// reads, cannot run concurrently: its lanes are dropped with a warning and
/// it runs in order.
void gatherParallelGroups(mlir::func::FuncOp func);

} // namespace longctx
