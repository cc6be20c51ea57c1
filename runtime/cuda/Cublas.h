//===- Cublas.h - cuBLAS, loaded at run time --------------------*- C++ -*-===//
//
// The runtime links no cuBLAS: it opens libcublas on first use (CUDA 13's
// first), so binaries start where only the driver is, and an artifact whose
// GEMMs never run on a GPU never needs it. One handle per stream: a handle
// bound to a stream runs on that stream only, so concurrent streams (a
// parallel group's workers) never share one; its workspace is the GEMM
// step's, planned in the arena like every other kernel's scratch.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Status.h"
#include "runtime/cuda/CudaKernels.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace longctx {
namespace cuda {

/// The entry points longctx calls.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) setStream = nullptr;
  decltype(&cublasSetWorkspace_v2) setWorkspace = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  decltype(&cublasSgemmStridedBatched) sgemmStridedBatched = nullptr;
  decltype(&cublasDgemmStridedBatched) dgemmStridedBatched = nullptr;
};

/// The loaded library and the handle of `stream`.
struct Cublas {
  const CublasApi *api;
  cublasHandle_t handle;
};

/// cuBLAS for launches on `stream` (its handle is made on first use) with
/// the step's planned `workspace` (at least gemmWorkspace(), so cuBLAS
/// allocates none of its own); an error names `op` and says what could not
/// be loaded or created.
Result<Cublas> cublasFor(const char *op, cudaStream_t stream, const DeviceWorkspace &workspace);

/// Destroys `stream`'s handle, if one was made (before the stream goes:
/// a later stream may get its address).
void releaseCublas(cudaStream_t stream);

/// A cuBLAS status as a Status naming `op`.
Status cublasStatus(const char *op, cublasStatus_t status);

} // namespace cuda
} // namespace longctx
