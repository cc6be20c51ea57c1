//===- ConcurrentLifetimes.h - Buffer lifetimes under parallel groups -----===//
//
// Shared by the compiler's planner on the IR and the artifact's liveness, so
// both keep concurrent workers' buffers apart the same way.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace longctx {

/// Where a step runs: steps of a parallel group (group >= 0) run on their
/// worker, concurrently with the group's other workers.
struct StepLane {
  int64_t group = -1, worker = -1;
  bool operator==(const StepLane &o) const { return group == o.group && worker == o.worker; }
};

/// Lifetimes under parallel groups. A buffer that only one worker of a group
/// touches is private to that worker: it may share bytes with the worker's
/// other buffers (the worker runs in order) but never with another worker's.
/// Any other buffer a group touches is live across the whole group (a
/// worker may read it while another is anywhere in its run). Feed every
/// step that touches a buffer, then ask.
class ConcurrentLifetimes {
public:
  explicit ConcurrentLifetimes(std::vector<StepLane> stepLanes);

  /// `step` outside [0, steps) (before or after the run) counts as outside
  /// every group.
  void touch(size_t buffer, int64_t step);
  /// The worker the buffer is private to ({-1, -1}: none); a buffer that is
  /// not private gets [first, last] widened over every group it touches.
  StepLane finish(size_t buffer, int64_t &first, int64_t &last) const;
  /// Whether an output may be written in place over `input` (same worker,
  /// or both untouched by any group).
  bool mayShareInPlace(size_t input, size_t output) const;

private:
  struct Touches {
    StepLane lane;
    bool any = false, shared = false; // group steps seen; of several workers or outside too
    int64_t lo = INT64_MAX, hi = INT64_MIN; // group steps touching it
  };
  std::vector<StepLane> lanes_;
  std::vector<std::pair<int64_t, int64_t>> spans_; // per group: first and last step
  std::vector<Touches> touches_;
  std::vector<bool> outside_;
};

} // namespace longctx
