//===- CudaDevice.cu - Finding CUDA devices without requiring a driver -----===//
#include "runtime/cuda/CudaDevice.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdint>
#include <string>

namespace longctx {
namespace {

__global__ void fillKernel(float *out, int64_t n, float value) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (; i < n; i += stride)
    out[i] = value;
}

Status cudaStatus(cudaError_t err, const char *what) {
  if (err == cudaSuccess)
    return Status();
  return Status::error(std::string(what) + ": " + cudaGetErrorString(err));
}

} // namespace

CudaDevices probeCudaDevices() {
  CudaDevices result;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError(); // not a later launch's error
    // No driver library at all reads the same as one too old for this runtime.
    void *driver = err == cudaErrorInsufficientDriver ? dlopen("libcuda.so.1", RTLD_LAZY) : nullptr;
    if (driver)
      dlclose(driver);
    result.whyNone = driver ? "the NVIDIA driver is older than this CUDA " +
                                  std::to_string(CUDART_VERSION / 1000) +
                                  " runtime needs: update the driver"
                     : err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice
                         ? "no CUDA device or driver on this machine"
                         : std::string("CUDA is unavailable: ") + cudaGetErrorString(err);
    return result;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    result.names.push_back(std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                           std::to_string(prop.minor) + ", " +
                           std::to_string(prop.totalGlobalMem >> 30) + " GiB)");
  }
  if (result.names.empty())
    result.whyNone = "no CUDA device on this machine";
  return result;
}

Status cudaFillForTest(float *host, int64_t n, float value) {
  float *device = nullptr;
  if (Status s = cudaStatus(cudaMalloc(&device, size_t(n) * sizeof(float)), "cudaMalloc"); !s)
    return s;
  fillKernel<<<256, 256>>>(device, n, value);
  Status s = cudaStatus(cudaGetLastError(), "fill kernel launch");
  if (s)
    s = cudaStatus(cudaMemcpy(host, device, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost),
                   "cudaMemcpy");
  cudaFree(device);
  return s;
}

} // namespace longctx
