//===- CudaDevice.h - Finding CUDA devices without requiring a driver ------===//
//
// The runtime links the static CUDA runtime and never libcuda directly, so
// every binary starts on machines without a GPU or driver; this probe says
// whether CUDA execution is possible and, if not, why.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Status.h"

#include <string>
#include <vector>

namespace longctx {

struct CudaDevices {
  std::vector<std::string> names; // "NVIDIA H200 (sm_90, 139 GiB)"
  std::string whyNone;            // set when names is empty
};

/// Lists the visible CUDA devices; never fails, never aborts.
CudaDevices probeCudaDevices();

/// Fills `n` floats with `value` on device 0 and copies them to `host`: the
/// smallest end-to-end check that kernels launch on this machine.
Status cudaFillForTest(float *host, int64_t n, float value);

} // namespace longctx
