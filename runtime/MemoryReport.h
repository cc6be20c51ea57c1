//===- MemoryReport.h - Where an artifact's bytes go ------------------------===//
#pragma once

#include "runtime/Artifact.h"

#include <array>
#include <map>
#include <string>
#include <vector>

namespace longctx {

/// What an arena tensor holds, for the report's breakdown.
enum class MemoryCategory {
  Gradients,        // named grad/...: parameter gradients and their partial sums
  SavedActivations, // made before the loss and used after it
  Transient,        // everything else the arena holds
  InputsOutputs,    // graph inputs and outputs
  Workspace,        // kernels' scratch, live for their step (CUDA artifacts)
};
constexpr size_t kNumArenaCategories = 5;
const char *memoryCategoryName(MemoryCategory category);

/// The memory of one run of an artifact's schedule, from its manifest alone.
struct MemoryReport {
  uint64_t weightBytes = 0;
  /// Constants and the 64-byte alignment of the data section.
  uint64_t constantBytes = 0;
  uint64_t stateBytes = 0; // optimizer state
  uint64_t arenaBytes = 0; // the planned arena (transients, inputs, outputs)
  /// LOAD: the most bytes live at any step: a lower bound on any arena.
  uint64_t loadBytes = 0;
  /// Everything a run allocates: data section (weights, constants) +
  /// optimizer state + arena. The runtime's measured peak equals it.
  uint64_t peakBytes = 0;
  int64_t peakStep = -1; // the step where LOAD is reached
  std::string peakOp;    // its kernel and source node
  /// Bytes by category at the peak step: "weights", "constants",
  /// "optimizer_state", and the arena categories of MemoryCategory
  /// ("gradients", "saved_activations", "transient", "inputs_outputs",
  /// "workspace": planned kernel scratch, which only CUDA artifacts have;
  /// CPU kernels keep their own, see docs/memory.md).
  std::map<std::string, uint64_t> byCategory;
  /// The largest arena bytes live at the peak step, by the step that made
  /// them ("op from 'node'", or "input NAME"), largest first (at most 10).
  std::vector<std::pair<std::string, uint64_t>> byOp;
  /// Live arena bytes per category before each step (index 0 .. steps;
  /// index s counts what step s - 1 leaves and step s needs), for plots.
  std::vector<std::array<uint64_t, kNumArenaCategories>> timeline;
};

MemoryReport computeMemoryReport(const Manifest &manifest);

/// Bytes of the data section the builder writes for these tensors: every
/// weight and constant, each padded to the data alignment.
uint64_t dataSectionBytes(const Manifest &manifest);

/// "1.50 GiB", "12.00 MiB", "3.00 KiB", "12 B".
std::string formatBytes(uint64_t bytes);

/// The report as a JSON object (peak_bytes, arena_bytes, load_bytes,
/// arena_over_load, by_category, by_op, peak_step, peak_op).
std::string memoryReportJson(const MemoryReport &report);

/// An SVG drawing of live bytes over the schedule, stacked by category,
/// with the LOAD bound and the arena size marked.
std::string memoryPlotSvg(const MemoryReport &report, const std::string &title);

} // namespace longctx
