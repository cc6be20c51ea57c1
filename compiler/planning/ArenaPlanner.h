//===- ArenaPlanner.h - Offsets for buffers with known lifetimes -----------===//
//
// Plain C++ (no MLIR): given each buffer's size and live interval on the
// schedule, assign offsets in one arena so that no two buffers live at the
// same time share bytes. Best fit over live intervals, tried in
// size-descending and lifetime-descending order; the smaller arena wins
// (Pisarchyk & Lee 2020; XLA's heap simulator does the same search).
// Buffers private to concurrent workers of a parallel group conflict
// whatever their steps.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <vector>

namespace longctx {

struct BufferLifetime {
  uint64_t bytes = 0;
  int64_t first = 0; // first step that needs the buffer (inclusive)
  int64_t last = 0;  // last step that needs it (inclusive)
  /// In-place reuse: the index of a buffer of the same size whose last step
  /// is this one's first; both then occupy one slot. -1: none.
  int64_t reuses = -1;
  /// A buffer private to one worker of a parallel group (group >= 0) shares
  /// no bytes with any buffer of the group's other workers, whatever their
  /// steps: the workers run concurrently.
  int64_t group = -1;
  int64_t worker = -1;
};

struct ArenaPlan {
  std::vector<uint64_t> offsets; // one per buffer, aligned
  uint64_t arenaBytes = 0;
  /// LOAD: the largest total size of buffers live at one step, a lower bound
  /// on any arena (before alignment).
  uint64_t loadBytes = 0;
};

/// Offsets for `buffers` (buffers that reuse another get its offset).
ArenaPlan planArena(const std::vector<BufferLifetime> &buffers, uint64_t alignment);

} // namespace longctx
