//===- CudaKernelsDisabled.cpp - CUDA kernels of a build without CUDA -----===//
#include "runtime/cuda/CudaKernels.h"

namespace longctx {

namespace {
Status noCuda() { return Status::error("this longctx was built without CUDA"); }
} // namespace

Status runCudaKernel(std::string_view, const std::vector<TensorRef> &,
                     const std::vector<TensorRef> &, const AttrMap &, void *, DeviceWorkspace) {
  return noCuda();
}
std::vector<std::string> cudaKernelNames() { return {}; }
bool cudaKernelChecksData(std::string_view) { return false; }
Status cudaCheckRecord(std::string_view, const void *, const std::vector<TensorRef> &,
                       const std::vector<TensorRef> &, const AttrMap &) {
  return noCuda();
}

DeviceBuffer::~DeviceBuffer() = default;
Status DeviceBuffer::allocate(size_t) { return noCuda(); }
Status DeviceBuffer::upload(const void *, size_t) { return noCuda(); }
Status DeviceBuffer::download(void *, size_t) const { return noCuda(); }

} // namespace longctx
