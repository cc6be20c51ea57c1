//===- CudaKernelFamilies.h - The CUDA kernel table (private) ---*- C++ -*-===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/cuda/CudaKernels.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cuda_runtime.h>

#include <string_view>
#include <vector>

namespace longctx {
namespace cuda {

using Workspace = DeviceWorkspace;
/// A kernel launches on `stream`; its scratch is carved from `workspace`
/// (KernelWorkspace.h gives the layouts).
using CudaKernelFn = Status (*)(const std::vector<TensorRef> &inputs,
                                const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                                cudaStream_t stream, Workspace workspace);
/// A data-checking kernel's record, read after the step (DeviceWorkspace).
using CheckRecordFn = Status (*)(const char *op, const void *record,
                                 const std::vector<TensorRef> &inputs,
                                 const std::vector<TensorRef> &outputs, const AttrMap &attrs);
struct CudaKernelEntry {
  const char *name;
  CudaKernelFn fn;
  CheckRecordFn checkRecord = nullptr;
  /// The executor gives it a record on every run, not only when capturing:
  /// its check is cheap to defer and costly to wait for (one per parameter).
  bool recordsAlways = false;
};
using CudaKernelTable = std::vector<CudaKernelEntry>;

// One per family file.
void addNormalizationKernels(CudaKernelTable &table);
void addOptimizerKernels(CudaKernelTable &table);
void addElementwiseKernels(CudaKernelTable &table);
void addSoftmaxKernels(CudaKernelTable &table);
void addReductionKernels(CudaKernelTable &table);
void addLayoutKernels(CudaKernelTable &table);
void addMatMulKernels(CudaKernelTable &table);
void addGatherKernels(CudaKernelTable &table);
void addCrossEntropyKernels(CudaKernelTable &table);
void addSelectiveScanKernels(CudaKernelTable &table);
void addAttentionKernels(CudaKernelTable &table);
void addLogicalKernels(CudaKernelTable &table);

/// selective_scan_grad / _state_grad with the CUDA kernel's per-channel walk
/// run on the host over host tensors, in the workspace layout the compiler
/// plans: the device arithmetic checked where no GPU is (unit tests).
Status scanGradOnHost(const char *op, const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs, const AttrMap &attrs);

/// The entry of `op`, or null.
const CudaKernelEntry *findCudaKernel(std::string_view op);

} // namespace cuda
} // namespace longctx
