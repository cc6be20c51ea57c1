//===- Executor.h - Runs an artifact's schedule -----------------------------===//
#pragma once

#include "runtime/Artifact.h"
#include "runtime/cpu/Kernels.h"

#include <map>
#include <string>
#include <vector>

namespace longctx {

/// A parallel group of a schedule: steps [begin, end), each worker's steps
/// in order (the manifest's reader checked that groups are contiguous).
struct ParallelGroup {
  size_t begin = 0, end = 0;
  std::vector<std::vector<size_t>> workers;
};
/// The parallel groups of `manifest`, in schedule order.
std::vector<ParallelGroup> parallelGroups(const Manifest &manifest);

/// What the training loop and the tools need of a backend: load an
/// artifact, set inputs, run its schedule, and read and write tensors from
/// the host (weights for checkpoints, the loss, the learning rate).
class Executor {
public:
  virtual ~Executor() = default;

  virtual const Artifact &artifact() const = 0;
  const Manifest &manifest() const { return artifact().manifest; }

  /// Copies `value` into the input `name`; its dtype and shape must match.
  virtual Status setInput(const std::string &name, const TensorRef &value) = 0;
  /// Runs the schedule once; a kernel error names the step and its source node.
  virtual Status run() = 0;
  /// Tensor `id` as the host sees it: the tensor itself on the CPU, a copy
  /// fetched from the device on a GPU. Valid until the next run() or write.
  virtual Result<TensorRef> read(int64_t id) = 0;
  /// Overwrites tensor `id` with its size in bytes from `host`.
  virtual Status write(int64_t id, const void *host) = 0;

  /// The planned arena of activations and gradients.
  uint64_t arenaBytes() const { return manifest().arenaBytes; }
  /// Every byte this executor holds for the artifact (a GPU measures it).
  virtual uint64_t allocatedBytes() const = 0;
  /// What the plan says it holds: arena (with any kernel workspaces) +
  /// weights and constants + optimizer state.
  uint64_t plannedBytes() const;

  /// When on, run() accumulates the wall time of every step (per kernel
  /// name in `profile()`), for `longctx-run --profile`.
  void setProfiling(bool on) { profiling_ = on; }
  const std::map<std::string, std::pair<double, int64_t>> &profile() const { return profile_; }

protected:
  /// The id of input `name`, after checking `value` against its dtype and
  /// shape (the message lists the inputs when there is no such one).
  Result<int64_t> inputFor(const std::string &name, const TensorRef &value) const;

  bool profiling_ = false;
  std::map<std::string, std::pair<double, int64_t>> profile_; // op -> (seconds, launches)
};

/// Owns the one arena of a loaded artifact and runs its schedule. Every
/// kernel is resolved and every tensor bound at load time, so a run does no
/// lookups and no allocations.
class CpuExecutor : public Executor {
public:
  /// Fails when the artifact needs a kernel this runtime lacks (all are
  /// listed) or the arena cannot be allocated.
  static Result<CpuExecutor> create(Artifact artifact);

  const Artifact &artifact() const override { return artifact_; }

  Status setInput(const std::string &name, const TensorRef &value) override;

  /// Runs the schedule once; a kernel error names the step and its source
  /// node. The workers of a parallel group run on concurrent threads, each
  /// worker's kernels on one thread.
  Status run() override;
  Result<TensorRef> read(int64_t id) override { return refs_[size_t(id)]; }
  Status write(int64_t id, const void *host) override;

  /// A view of tensor `id` (valid until the next run).
  TensorRef tensor(int64_t id) const { return refs_[size_t(id)]; }
  /// Every byte this executor holds: arena, weights and constants, state.
  uint64_t allocatedBytes() const override {
    return uint64_t(arena_->bytes() + artifact_.data->bytes() + state_->bytes());
  }

private:
  CpuExecutor() = default;
  Artifact artifact_;
  std::shared_ptr<Tensor> arena_;
  std::shared_ptr<Tensor> state_;
  std::vector<TensorRef> refs_;
  struct BoundStep {
    KernelFn kernel;
    std::vector<TensorRef> inputs, outputs;
  };
  std::vector<BoundStep> steps_;
  std::vector<ParallelGroup> groups_; // in schedule order
  /// Runs step i (timing it when profiling).
  Status runStep(size_t i);
  Status runGroup(const ParallelGroup &group);
};

} // namespace longctx
