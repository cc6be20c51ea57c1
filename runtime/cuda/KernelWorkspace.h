//===- KernelWorkspace.h - The device scratch of each CUDA kernel ---------===//
//
// Every byte a CUDA step uses beyond its operands is planned: the compiler
// gives each step that needs scratch a workspace tensor in the arena, live
// for that step only, sized by the functions here; the kernel carves the
// same layout out of what it is given and refuses a workspace that is too
// small (an artifact is untrusted). So the arena is the device's whole
// working memory, and a step can be captured in a CUDA graph (no
// allocations inside a step).
//
// Plain C++ (no CUDA headers): the compiler sizes workspaces on machines
// without CUDA; the kernels include it for the layouts.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Artifact.h"
#include "runtime/AttrMap.h"
#include "runtime/Tensor.h"
#include "runtime/cpu/OperandChecks.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace longctx {
namespace cuda {

/// Each part of a workspace starts at a multiple of this (cuBLAS asks for
/// 256-byte aligned workspaces).
constexpr uint64_t kWorkspaceAlignment = 256;

/// cuBLAS's workspace for one GEMM step: what NVIDIA recommends for Hopper
/// (32 MiB; older GPUs use at most 4 MiB). With a workspace set, cuBLAS
/// allocates none of its own.
constexpr uint64_t kCublasWorkspaceBytes = uint64_t(32) << 20;

/// Parts of one step's workspace, in order.
class WorkspaceLayout {
public:
  /// Appends a part of `bytes`; returns its index.
  size_t add(uint64_t bytes);
  uint64_t offset(size_t part) const { return offsets_[part]; }
  uint64_t partBytes(size_t part) const { return sizes_[part]; }
  size_t parts() const { return offsets_.size(); }
  /// The workspace's size (0 when every part is empty).
  uint64_t bytes() const { return bytes_; }

private:
  std::vector<uint64_t> offsets_, sizes_;
  uint64_t bytes_ = 0;
};

// The layouts, one per kernel family that needs scratch.

/// gather, scatter_add: the first index out of range met on the device.
WorkspaceLayout gatherWorkspace();
/// cross_entropy and its gradients: the summed loss, the counted rows, the
/// lowest position of a bad label.
WorkspaceLayout crossEntropyWorkspace();
/// rms_norm_grad: dscale's sums in double, one per element of the last dim.
WorkspaceLayout rmsNormGradWorkspace(int64_t n);
/// attention_grad: do . o per query row, in double.
WorkspaceLayout attentionGradWorkspace(const cpu::AttentionDims &d);
/// selective_scan / _state: each channel's running state (the tensors' type).
WorkspaceLayout scanWorkspace(const cpu::ScanDims &d, DType dtype);
/// Checkpoint chunk of the scan gradient: ~sqrt(S) steps, so each channel
/// keeps sqrt(S) checkpoints and recomputes one chunk's states at a time;
/// truncated to T > 0 (adjoint windows), a multiple of T or the sequence.
int64_t scanGradChunkLength(int64_t seq, int64_t truncate = 0);
/// Rows of N doubles each channel of the scan gradient keeps: checkpoints,
/// one chunk of states, truncated two windows of T states, six working rows.
int64_t scanGradChannelSlots(int64_t seq, int64_t truncate = 0);
/// selective_scan_grad / _state_grad: double accumulators for dA, dB, dC,
/// then the channels' slots (interleaved across channels).
WorkspaceLayout scanGradWorkspace(const cpu::ScanDims &d, int64_t truncate = 0);
/// matmul, gemm: cuBLAS's workspace.
WorkspaceLayout gemmWorkspace();

/// The workspace bytes the CUDA kernel of `op` needs for these operands
/// (dtypes and shapes; data unused); 0 for kernels without scratch, and for
/// operands the kernel will refuse anyway.
uint64_t cudaWorkspaceBytes(std::string_view op, const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs, const AttrMap &attrs);

/// Gives every step of `manifest` whose CUDA kernel needs scratch a
/// Workspace tensor of that size (named "<location>/workspace.<step>"); the
/// caller then plans the arena (the compiler) or places them (tests).
void addCudaWorkspaces(Manifest &manifest);

} // namespace cuda
} // namespace longctx
