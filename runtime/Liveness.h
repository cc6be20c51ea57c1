//===- Liveness.h - When each tensor of a schedule is live -----------------===//
//
// One definition of liveness for the arena planner (compiler) and the memory
// report (runtime, longctx-dump), so a plan and its report never disagree.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Artifact.h"
#include "runtime/ConcurrentLifetimes.h"

#include <cstdint>
#include <vector>

namespace longctx {

/// Inputs, outputs, transients and steps' workspaces live in the arena; weights, constants and
/// optimizer state have their own blocks.
bool isArenaTensor(const TensorDesc &tensor);

/// The lane of every step of `manifest`.
std::vector<StepLane> stepLanes(const Manifest &manifest);

struct ScheduleLiveness {
  /// Per tensor, the first and last step that touch it (inclusive). Inputs
  /// live from step -1 and inputs and outputs to step `steps` (the caller
  /// sets them before and reads them after a run); last < first: unused.
  std::vector<int64_t> first, last;
  /// For an output written in place over one of its step's inputs (whose
  /// last use that step is): that input's id; else -1. Such pairs share one
  /// buffer, and the output's own bytes count from first + 1.
  std::vector<int64_t> reuses;
  /// Per tensor, the worker of a parallel group it is private to, if any
  /// (see ConcurrentLifetimes; first/last are widened already).
  std::vector<StepLane> lane;
};

/// In-place reuse follows cpuKernelAllowsInPlace: output 0 of an
/// elementwise (or reshape) step takes over a transient input of the same
/// dtype and size that dies at that step (and the same worker's, in a
/// parallel group).
ScheduleLiveness computeLiveness(const Manifest &manifest);

} // namespace longctx
