//===- KernelWorkspace.cpp - The device scratch of each CUDA kernel -------===//
#include "runtime/cuda/KernelWorkspace.h"

#include <cmath>

namespace longctx {
namespace cuda {

size_t WorkspaceLayout::add(uint64_t bytes) {
  const uint64_t at =
      (bytes_ + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
  offsets_.push_back(at);
  sizes_.push_back(bytes);
  bytes_ = at + bytes;
  return offsets_.size() - 1;
}

namespace {

/// The device records of the gather and cross-entropy kernels (their
/// structs live in the .cu files; sizes fixed here and checked there).
constexpr uint64_t kBadIndexBytes = 16;
constexpr uint64_t kLossScratchBytes = 24;

WorkspaceLayout single(uint64_t bytes) {
  WorkspaceLayout layout;
  layout.add(bytes);
  return layout;
}

} // namespace

WorkspaceLayout gatherWorkspace() { return single(kBadIndexBytes); }
WorkspaceLayout crossEntropyWorkspace() { return single(kLossScratchBytes); }
WorkspaceLayout rmsNormGradWorkspace(int64_t n) { return single(uint64_t(n) * sizeof(double)); }
WorkspaceLayout gemmWorkspace() { return single(kCublasWorkspaceBytes); }

WorkspaceLayout attentionGradWorkspace(const cpu::AttentionDims &d) {
  return single(uint64_t(d.b * d.h * d.s) * sizeof(double));
}

int64_t scanGradChunkLength(int64_t seq, int64_t truncate) {
  const int64_t chunkLen = std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(seq)))));
  // Blocks of T steps never straddle two chunks (as on the CPU).
  if (truncate > 0 && chunkLen < seq)
    return std::max(truncate, chunkLen / truncate * truncate);
  return chunkLen;
}

WorkspaceLayout scanWorkspace(const cpu::ScanDims &d, DType dtype) {
  return single(uint64_t(d.batch * d.e * d.n) * dtypeSize(dtype));
}

int64_t scanGradChannelSlots(int64_t seq, int64_t truncate) {
  const int64_t chunkLen = scanGradChunkLength(seq, truncate);
  const int64_t chunks = (seq + chunkLen - 1) / chunkLen;
  return chunks + chunkLen + 1 + 2 * truncate + 6;
}

WorkspaceLayout scanGradWorkspace(const cpu::ScanDims &d, int64_t truncate) {
  const uint64_t nA = uint64_t(d.e * d.n), nBC = uint64_t(d.batch * d.seq * d.n);
  const uint64_t perChannel = uint64_t(scanGradChannelSlots(d.seq, truncate) * d.n);
  WorkspaceLayout layout;
  layout.add(nA * sizeof(double));  // dA
  layout.add(nBC * sizeof(double)); // dB
  layout.add(nBC * sizeof(double)); // dC
  layout.add(uint64_t(d.batch * d.e) * perChannel * sizeof(double));
  return layout;
}

namespace {

/// The operands with a placeholder where data is absent: the shape checks
/// below refuse tensors without data, and read none.
std::vector<TensorRef> shapesOnly(std::vector<TensorRef> refs) {
  static char placeholder;
  for (TensorRef &t : refs)
    if (!t.data)
      t.data = &placeholder;
  return refs;
}

} // namespace

uint64_t cudaWorkspaceBytes(std::string_view op, const std::vector<TensorRef> &givenInputs,
                            const std::vector<TensorRef> &givenOutputs, const AttrMap &attrs) {
  const std::string name(op);
  const std::vector<TensorRef> inputs = shapesOnly(givenInputs), outputs = shapesOnly(givenOutputs);
  if (op == "gather" || op == "scatter_add")
    return gatherWorkspace().bytes();
  if (op == "cross_entropy" || op == "cross_entropy_grad" || op == "cross_entropy_and_grad")
    return crossEntropyWorkspace().bytes();
  if (op == "matmul" || op == "gemm")
    return gemmWorkspace().bytes();
  if (op == "rms_norm_grad")
    return inputs.size() == 3 && inputs[1].rank() > 0
               ? rmsNormGradWorkspace(inputs[1].shape.back()).bytes()
               : 0;
  if (op == "attention_grad") {
    cpu::AttentionDims d;
    return cpu::resolveAttentionOperands(name.c_str(), true, inputs, outputs, attrs, d)
               ? attentionGradWorkspace(d).bytes()
               : 0;
  }
  if (op == "selective_scan" || op == "selective_scan_state") {
    cpu::ScanDims d;
    return inputs.size() >= 5 && !outputs.empty() &&
                   cpu::resolveScan(name.c_str(), inputs, 0, {{"output", &outputs[0]}}, d)
               ? scanWorkspace(d, inputs[0].dtype).bytes()
               : 0;
  }
  if (op == "selective_scan_grad" || op == "selective_scan_state_grad") {
    cpu::ScanGradShape g;
    return cpu::resolveScanGrad(name.c_str(), op == "selective_scan_state_grad", inputs, outputs,
                                attrs, g)
               ? scanGradWorkspace(g.dims, g.truncate).bytes()
               : 0;
  }
  return 0;
}

void addCudaWorkspaces(Manifest &m) {
  for (size_t i = 0; i < m.schedule.size(); ++i) {
    StepDesc &step = m.schedule[i];
    auto refs = [&](const std::vector<int64_t> &ids) {
      std::vector<TensorRef> r;
      for (int64_t id : ids)
        r.push_back({m.tensors[size_t(id)].dtype, m.tensors[size_t(id)].shape, nullptr});
      return r;
    };
    const uint64_t bytes =
        cudaWorkspaceBytes(step.op, refs(step.inputs), refs(step.outputs), step.attrs);
    if (bytes == 0)
      continue;
    TensorDesc workspace;
    workspace.name = (step.location.empty() ? step.op : step.location) + "/workspace." +
                     std::to_string(i);
    workspace.dtype = DType::U8;
    workspace.shape = {int64_t(bytes)};
    workspace.kind = TensorKind::Workspace;
    step.workspace = int64_t(m.tensors.size());
    m.tensors.push_back(std::move(workspace));
  }
}

} // namespace cuda
} // namespace longctx
