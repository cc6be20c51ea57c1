//===- Cublas.h - cuBLAS, loaded at run time --------------------*- C++ -*-===//
//
// The runtime links no cuBLAS: it opens libcublas on first use (CUDA 13's,
// then any), so binaries start where only the driver is, and an artifact
// whose GEMMs never run on a GPU never needs it. One handle per process,
// with its workspace in device memory the handle owns.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Status.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace longctx {
namespace cuda {

/// The entry points longctx calls.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) setStream = nullptr;
  decltype(&cublasSetWorkspace_v2) setWorkspace = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  decltype(&cublasSgemmStridedBatched) sgemmStridedBatched = nullptr;
  decltype(&cublasDgemmStridedBatched) dgemmStridedBatched = nullptr;
  cublasHandle_t handle = nullptr;
};

/// The loaded library and its handle bound to `stream`; an error names `op`
/// and says what could not be loaded or created.
Result<const CublasApi *> cublasFor(const char *op, cudaStream_t stream);

/// A cuBLAS status as a Status naming `op`.
Status cublasStatus(const char *op, cublasStatus_t status);

/// Bytes of the handle's workspace (device memory, allocated once).
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

} // namespace cuda
} // namespace longctx
