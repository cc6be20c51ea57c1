//===- CudaDeviceDisabled.cpp - CUDA probe of a build without CUDA ---------===//
#include "runtime/cuda/CudaDevice.h"

namespace longctx {

CudaDevices probeCudaDevices() {
  CudaDevices result;
  result.whyNone = "this longctx was built without CUDA (LONGCTX_ENABLE_CUDA=OFF)";
  return result;
}

Status cudaFillForTest(float *, int64_t, float) {
  return Status::error("this longctx was built without CUDA");
}

} // namespace longctx
