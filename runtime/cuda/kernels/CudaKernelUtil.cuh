//===- CudaKernelUtil.cuh - Shared launch and reduction helpers -----------===//
//
// One helper set for every kernel family: launch sizes, 64-bit grid-stride
// indexing, block-wide sums in double, and rank-0 operands read on the
// device. Kernels take int64_t sizes and offsets throughout.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/DType.h"
#include "runtime/Status.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cuda/KernelWorkspace.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

namespace longctx {
namespace cuda {

// The CPU kernels' argument checks, so both backends say the same.
using cpu::checkArity;
using cpu::checkDType;
using cpu::checkShape;
using cpu::opError;

constexpr int kThreads = 256;

/// Blocks for a grid-stride loop over n elements (capped; the loop covers
/// the rest).
inline unsigned gridFor(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(blocks < 1 ? 1 : blocks > 65535 * 8 ? 65535 * 8 : blocks);
}

__device__ inline int64_t globalIndex() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t globalStride() { return int64_t(gridDim.x) * blockDim.x; }

/// The sum of `value` over the block (every thread gets it); blockDim.x a
/// multiple of 32, at most 1024.
__device__ inline double blockSum(double value) {
  __shared__ double partial[32];
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads(); // partial may still be read by a previous call
  if (lane == 0)
    partial[warp] = value;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  value = threadIdx.x < warps ? partial[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2)
      value += __shfl_down_sync(0xffffffffu, value, offset);
  if (threadIdx.x == 0)
    partial[0] = value;
  __syncthreads();
  return partial[0];
}

/// The max of `value` over the block (every thread gets it); the same
/// constraints as blockSum.
__device__ inline double blockMax(double value) {
  __shared__ double partial[32];
  for (int offset = 16; offset > 0; offset /= 2)
    value = fmax(value, __shfl_down_sync(0xffffffffu, value, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0)
    partial[warp] = value;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  value = threadIdx.x < warps ? partial[threadIdx.x] : -INFINITY;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2)
      value = fmax(value, __shfl_down_sync(0xffffffffu, value, offset));
  if (threadIdx.x == 0)
    partial[0] = value;
  __syncthreads();
  return partial[0];
}

/// A rank-0 operand (f32, f64, i64 or i32) read on the device.
__device__ inline double readScalar(const void *p, int dtype) {
  switch (DType(dtype)) {
  case DType::F32: return double(*static_cast<const float *>(p));
  case DType::F64: return *static_cast<const double *>(p);
  case DType::I64: return double(*static_cast<const int64_t *>(p));
  case DType::I32: return double(*static_cast<const int32_t *>(p));
  default: return 0.0 / 0.0; // rejected on the host before launch
  }
}

/// The launch's error, if any, as a Status naming the op.
inline Status launchStatus(const char *op) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess)
    return Status();
  return Status::error(std::string(op) + ": CUDA launch failed: " + cudaGetErrorString(err));
}

/// Runs fn(float{}) or fn(double{}) (which launches the kernels for that
/// type) and returns its Status when it gives one, else the launch's status;
/// other dtypes have no CUDA kernel.
template <typename Fn> Status dispatchFloat(const char *op, DType dtype, Fn &&fn) {
  auto call = [&](auto tag) -> Status {
    if constexpr (std::is_same_v<decltype(fn(tag)), Status>) {
      return fn(tag);
    } else {
      fn(tag);
      return Status();
    }
  };
  Status s;
  switch (dtype) {
  case DType::F32:
    s = call(float{});
    break;
  case DType::F64:
    s = call(double{});
    break;
  default:
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(dtype));
  }
  if (!s)
    return s;
  return launchStatus(op);
}

/// The largest rank the strided and broadcasting kernels take.
constexpr int kMaxRank = 8;

/// An output shape and up to three operands' numpy-broadcast strides,
/// passed to kernels by value.
struct Broadcast {
  int rank;
  int64_t shape[kMaxRank];
  int64_t stride[3][kMaxRank];
};

/// Checks that `ins` broadcast to `out` (the CPU's rule and message) and
/// gives their strides.
inline Status makeBroadcast(const char *op, const TensorRef &out,
                            std::vector<const TensorRef *> ins, Broadcast &b) {
  std::vector<const Shape *> shapes;
  for (const TensorRef *in : ins)
    shapes.push_back(&in->shape);
  if (Status s = cpu::checkBroadcast(op, shapes, out.shape); !s)
    return s;
  if (out.rank() > kMaxRank)
    return opError(op, "rank " + std::to_string(out.rank()) + " is over the CUDA kernels' " +
                           std::to_string(kMaxRank));
  b.rank = int(out.rank());
  for (int d = 0; d < b.rank; ++d)
    b.shape[d] = out.shape[size_t(d)];
  for (size_t k = 0; k < ins.size(); ++k) {
    const std::vector<int64_t> strides = cpu::broadcastStrides(ins[k]->shape, out.shape);
    for (int d = 0; d < b.rank; ++d)
      b.stride[k][d] = strides[size_t(d)];
  }
  return Status();
}

/// The first K operands' offsets for output index i, in one pass.
template <int K>
__device__ inline void offsetsOf(const Broadcast &b, int64_t i, int64_t (&off)[K]) {
  for (int k = 0; k < K; ++k)
    off[k] = 0;
  for (int d = b.rank - 1; d >= 0; --d) {
    const int64_t index = i % b.shape[d];
    i /= b.shape[d];
    for (int k = 0; k < K; ++k)
      off[k] += index * b.stride[k][d];
  }
}

/// Runs fn(I{}) for an index tensor's integer type (i64 or i32, checked
/// by the caller).
template <typename Fn> void dispatchIndex(DType indices, Fn &&fn) {
  if (indices == DType::I64)
    fn(int64_t{});
  else
    fn(int32_t{});
}

/// Points `parts...` at the parts of `layout` in `workspace`, in order;
/// fails when the workspace is smaller than the layout (an artifact planned
/// for other shapes, or none given).
template <typename... T>
Status carveWorkspace(const char *op, const Workspace &workspace, const WorkspaceLayout &layout,
                      T **...parts) {
  if (sizeof...(parts) != layout.parts())
    return opError(op, "internal: workspace layout has " + std::to_string(layout.parts()) +
                           " parts, the kernel takes " + std::to_string(sizeof...(parts)));
  if (layout.bytes() > 0 && (!workspace.data || workspace.bytes < layout.bytes()))
    return opError(op, "needs a workspace of " + std::to_string(layout.bytes()) +
                           " bytes, the step has " + std::to_string(workspace.bytes) +
                           " (recompile the artifact with --device cuda)");
  size_t i = 0;
  ((*parts = reinterpret_cast<T *>(static_cast<char *>(workspace.data) + layout.offset(i++))),
   ...);
  return Status();
}

} // namespace cuda
} // namespace longctx
