//===- ParallelLanes.h - Ops that run concurrently: parallel groups -------===//
//
// A parallel group is a run of ops split among workers that the runtime
// runs concurrently; within a worker its ops run in order. Ops of one group
// and worker carry `lc.lane = [group, worker]`. The scheduler keeps a group
// contiguous, the memory planners keep concurrent workers' buffers apart,
// and the artifact's steps carry the lane to the executor.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"

#include <optional>

namespace longctx::lc {

/// On an op of a parallel group: [group, worker].
constexpr llvm::StringLiteral kLaneAttr = "lc.lane";
/// On an lc.mini_sequence without carried state: its chunks run on this
/// many workers (lc-lower-mini-sequence makes them a parallel group).
constexpr llvm::StringLiteral kParallelWorkersAttr = "lc.parallel_workers";

struct Lane {
  int64_t group = -1, worker = -1;
  bool operator==(const Lane &o) const { return group == o.group && worker == o.worker; }
};

inline std::optional<Lane> laneOf(mlir::Operation *op) {
  auto lane = op->getAttrOfType<mlir::DenseI64ArrayAttr>(kLaneAttr);
  if (!lane || lane.size() != 2)
    return std::nullopt;
  return Lane{lane[0], lane[1]};
}

inline void setLane(mlir::Operation *op, Lane lane) {
  op->setAttr(kLaneAttr, mlir::Builder(op->getContext())
                             .getDenseI64ArrayAttr({lane.group, lane.worker}));
}

} // namespace longctx::lc
