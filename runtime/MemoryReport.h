//===- MemoryReport.h - Where an artifact's bytes go ------------------------===//
#pragma once

#include "runtime/Artifact.h"

#include <map>
#include <string>

namespace longctx {

/// The memory of one run of an artifact's schedule, from its manifest alone.
struct MemoryReport {
  uint64_t weightBytes = 0;
  uint64_t stateBytes = 0; // optimizer state
  uint64_t arenaBytes = 0; // the planned arena (transients, inputs, outputs)
  /// LOAD: the most bytes live at any step: a lower bound on any arena.
  uint64_t loadBytes = 0;
  /// Everything a run needs: weights + optimizer state + arena.
  uint64_t peakBytes = 0;
  int64_t peakStep = -1; // the step where LOAD is reached
  std::string peakOp;    // its kernel and source node
  /// Bytes live at the peak step by category: "weights", "optimizer_state",
  /// "gradients", "saved_activations" (made before the loss, used after it),
  /// "transient", "inputs_outputs".
  std::map<std::string, uint64_t> byCategory;
};

MemoryReport computeMemoryReport(const Manifest &manifest);

/// "1.50 GiB", "12.00 MiB", "3.00 KiB", "12 B".
std::string formatBytes(uint64_t bytes);

/// The report as a JSON object (peak_bytes, arena_bytes, load_bytes,
/// arena_over_load, by_category, peak_step, peak_op).
std::string memoryReportJson(const MemoryReport &report);

} // namespace longctx
