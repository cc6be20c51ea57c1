//===- CudaExecutor.h - Runs an artifact's schedule on a GPU ----*- C++ -*-===//
//
// The CUDA backend: the planned arena allocated once on the device, weights
// and constants uploaded once, optimizer state zeroed there; every step a
// CUDA kernel (the CPU kernels' twins, cuBLAS for GEMMs, the artifact's
// generated PTX for fused chains) launched on one stream, the workers of a
// parallel group on their own streams between two events. No CUDA header
// here: the runner includes it whether or not CUDA was built.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Executor.h"

#include <memory>
#include <string>
#include <vector>

namespace longctx {

/// The steps of `manifest` the CUDA backend cannot run, one entry per op
/// (sorted): ops without a CUDA kernel, and fused chains without PTX for an
/// architecture at most `arch` (0: any architecture). No device needed.
std::vector<std::string> missingCudaKernels(const Manifest &manifest, int arch = 0);

struct CudaOptions {
  /// Capture the step as a CUDA graph on its second run (the first runs
  /// eagerly: it makes cuBLAS's handles and loads the kernels) and replay
  /// it from then on: one launch per step instead of one per kernel. Data
  /// checks (indices, labels) are then read after the step. Runs with
  /// profiling stay eager.
  bool graph = false;
};

class CudaExecutor : public Executor {
public:
  /// Fails without a device ("no CUDA device: use --device cpu"), when the
  /// artifact needs kernels this runtime has no CUDA code for (all listed),
  /// or when device memory runs out.
  static Result<std::unique_ptr<CudaExecutor>> create(Artifact artifact,
                                                      CudaOptions options = {});
  ~CudaExecutor() override;

  const Artifact &artifact() const override;
  Status setInput(const std::string &name, const TensorRef &value) override;
  Status run() override;
  Result<TensorRef> read(int64_t id) override;
  Status write(int64_t id, const void *host) override;
  /// Device memory in use since load (the driver's count, largest seen
  /// after a run): arena (kernel and cuBLAS workspaces included), weights,
  /// state, and what the driver and cuBLAS keep for themselves.
  uint64_t allocatedBytes() const override;
  /// The driver's count alone (0 before the first run).
  uint64_t measuredBytes() const;
  /// The part of it beyond the planned buffers as the driver counted them
  /// at load: what CUDA's libraries and kernel code took during the runs.
  uint64_t runtimeOverheadBytes() const;
  /// With CudaOptions::graph: why the step could not be captured and runs
  /// eagerly instead (empty while it is captured or not yet tried).
  const std::string &graphFallbackReason() const;
  /// "NVIDIA H200 (sm_90)".
  const std::string &deviceName() const;

private:
  CudaExecutor();
  /// Every step's launches on the schedule's and the workers' streams.
  Status enqueueSteps();
  /// The captured step (captured on first call), launched once.
  Status runGraph();
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace longctx
