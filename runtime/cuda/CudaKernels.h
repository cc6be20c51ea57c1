//===- CudaKernels.h - The CUDA twins of the CPU kernels --------*- C++ -*-===//
//
// Each CUDA kernel computes what the CPU kernel of the same name computes
// (the CPU backend is the reference; tests compare the two on a GPU). Tensors
// are device memory; rank-0 operands such as an optimizer's lr are read on
// the device, so a step can be captured in a CUDA graph. In a build without
// CUDA every call fails with a reason.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace longctx {

/// Device scratch for one launch, sized by cudaWorkspaceBytes
/// (runtime/cuda/KernelWorkspace.h): a step's planned workspace.
struct DeviceWorkspace {
  void *data = nullptr;
  uint64_t bytes = 0;
  /// Where a kernel that checks data on the device (an index or label out
  /// of range) leaves what it found when the step cannot wait for it (a
  /// captured CUDA graph): kCheckRecordBytes, read after the step with
  /// cudaCheckRecord. Null: the kernel waits for its check and fails itself.
  void *record = nullptr;
};

constexpr uint64_t kCheckRecordBytes = 16;

/// Whether `op`'s CUDA kernel checks data on the device (it then takes a
/// record when the step is captured).
bool cudaKernelChecksData(std::string_view op);

/// The outcome of `op`'s deferred data check, from its record copied to the
/// host: the error the kernel would have returned, or OK. `inputs` are the
/// step's device tensors (a message may read one back).
Status cudaCheckRecord(std::string_view op, const void *hostRecord,
                       const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, const AttrMap &attrs);

/// Runs `op` on `stream` (a cudaStream_t; null: the default stream) with
/// `workspace` for its scratch (kernels that need one refuse a smaller one).
Status runCudaKernel(std::string_view op, const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                     void *stream = nullptr, DeviceWorkspace workspace = {});

/// The ops with a CUDA kernel, sorted.
std::vector<std::string> cudaKernelNames();

/// Device memory for tests and tools: allocated at construction, freed at
/// destruction; a build without CUDA or a machine without a GPU gets an
/// error from allocate().
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  Status allocate(size_t bytes);
  Status upload(const void *host, size_t bytes);
  Status download(void *host, size_t bytes) const;
  void *data() const { return data_; }

private:
  void *data_ = nullptr;
};

} // namespace longctx
