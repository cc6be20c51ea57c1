//===- Registry.cu - The CUDA kernel table and device buffers -------------===//
#include "runtime/cuda/CudaKernels.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"

#include <algorithm>

namespace longctx {
namespace {

const cuda::CudaKernelTable &table() {
  static const cuda::CudaKernelTable t = [] {
    cuda::CudaKernelTable t;
    cuda::addNormalizationKernels(t);
    cuda::addOptimizerKernels(t);
    cuda::addElementwiseKernels(t);
    cuda::addSoftmaxKernels(t);
    cuda::addReductionKernels(t);
    cuda::addLayoutKernels(t);
    cuda::addMatMulKernels(t);
    cuda::addGatherKernels(t);
    cuda::addCrossEntropyKernels(t);
    cuda::addSelectiveScanKernels(t);
    cuda::addAttentionKernels(t);
    cuda::addLogicalKernels(t);
    return t;
  }();
  return t;
}

Status cudaError(cudaError_t err, const std::string &what) {
  if (err == cudaSuccess)
    return Status();
  return Status::error(what + ": " + cudaGetErrorString(err));
}

} // namespace

const cuda::CudaKernelEntry *cuda::findCudaKernel(std::string_view op) {
  for (const cuda::CudaKernelEntry &e : table())
    if (op == e.name)
      return &e;
  return nullptr;
}

Status runCudaKernel(std::string_view op, const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs, const AttrMap &attrs, void *stream,
                     DeviceWorkspace workspace) {
  if (const cuda::CudaKernelEntry *e = cuda::findCudaKernel(op))
    return e->fn(inputs, outputs, attrs, static_cast<cudaStream_t>(stream), workspace);
  return Status::error("no CUDA kernel for '" + std::string(op) + "'");
}

bool cudaKernelChecksData(std::string_view op) {
  const cuda::CudaKernelEntry *e = cuda::findCudaKernel(op);
  return e && e->checkRecord;
}

Status cudaCheckRecord(std::string_view op, const void *hostRecord,
                       const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const cuda::CudaKernelEntry *e = cuda::findCudaKernel(op);
  if (!e || !e->checkRecord)
    return Status::error("'" + std::string(op) + "' keeps no check record");
  return e->checkRecord(e->name, hostRecord, inputs, outputs, attrs);
}

std::vector<std::string> cudaKernelNames() {
  std::vector<std::string> names;
  for (const cuda::CudaKernelEntry &e : table())
    names.emplace_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_)
    cudaFree(data_);
}

Status DeviceBuffer::allocate(size_t bytes) {
  if (data_)
    cudaFree(data_);
  data_ = nullptr;
  return cudaError(cudaMalloc(&data_, std::max<size_t>(bytes, 1)),
                   "cudaMalloc of " + std::to_string(bytes) + " bytes");
}

Status DeviceBuffer::upload(const void *host, size_t bytes) {
  return cudaError(cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice), "upload");
}

Status DeviceBuffer::download(void *host, size_t bytes) const {
  return cudaError(cudaMemcpy(host, data_, bytes, cudaMemcpyDeviceToHost), "download");
}

} // namespace longctx
