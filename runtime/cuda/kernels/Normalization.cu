//===- Normalization.cu - rms_norm and rms_norm_grad on CUDA --------------===//
//
// The CPU twins' math (runtime/cpu/Normalization.cpp): sums in double, one
// block per row; dscale, a sum over rows, goes through a double buffer with
// atomic adds, then to the scale's dtype.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"
#include "runtime/cpu/OperandChecks.h"

#include <algorithm>

namespace longctx {
namespace cuda {
namespace {


template <typename T>
__device__ double rowInvRms(const T *x, int64_t n, double epsilon) {
  double sq = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    sq += double(x[i]) * double(x[i]);
  return 1.0 / sqrt(blockSum(sq) / double(n) + epsilon);
}

/// Rows of `n` values, a block per row (and per gridDim.x rows after).
template <typename T>
__global__ void rmsNormRows(const T *x, const T *scale, T *y, int64_t rows, int64_t n,
                            double epsilon) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T *xr = x + row * n;
    T *yr = y + row * n;
    const T inv = T(rowInvRms(xr, n, epsilon));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      yr[i] = xr[i] * inv * scale[i];
  }
}

template <typename T>
__global__ void rmsNormGradRows(const T *dy, const T *x, const T *scale, T *dx,
                                double *dscale, int64_t rows, int64_t n, double epsilon) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T *xr = x + row * n, *dyr = dy + row * n;
    T *dxr = dx + row * n;
    const double inv = rowInvRms(xr, n, epsilon);
    double dot = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double xhat = double(xr[i]) * inv;
      dot += double(dyr[i]) * double(scale[i]) * xhat;
      atomicAdd(dscale + i, double(dyr[i]) * xhat);
    }
    const double meanDot = blockSum(dot) / double(n);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double xhat = double(xr[i]) * inv;
      dxr[i] = T(inv * (double(dyr[i]) * double(scale[i]) - xhat * meanDot));
    }
  }
}

/// Blocks for a block-per-row kernel (capped; the rows loop covers the rest).
unsigned rowGrid(int64_t rows) { return unsigned(std::min<int64_t>(rows, 65535 * 8)); }

template <typename T> __global__ void castFromDouble(const double *in, T *out, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride())
    out[i] = T(in[i]);
}

/// The CPU twin's checks, for the dtypes these kernels cover.
Status checkRmsNorm(const char *op, const TensorRef &x, const TensorRef &scale,
                    const TensorRef &out, int64_t &rows, int64_t &n) {
  if (x.dtype != DType::F32 && x.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(x.dtype));
  return cpu::checkRmsNorm(op, x, scale, out, rows, n);
}

Status rmsNorm(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
               const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "rms_norm";
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  int64_t rows = 0, n = 0;
  if (Status s = checkRmsNorm(op, inputs[0], inputs[1], outputs[0], rows, n); !s)
    return s;
  if (rows == 0)
    return Status();
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    rmsNormRows<T><<<rowGrid(rows), kThreads, 0, stream>>>(inputs[0].as<T>(), inputs[1].as<T>(),
                                                           outputs[0].as<T>(), rows, n, epsilon);
  });
}

Status rmsNormGrad(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                   const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "rms_norm_grad";
  if (Status s = checkArity(op, inputs, 3, 3, outputs, 2); !s)
    return s;
  const TensorRef &dy = inputs[0], &x = inputs[1], &scale = inputs[2];
  int64_t rows = 0, n = 0;
  if (Status s = checkRmsNorm(op, x, scale, outputs[0], rows, n); !s)
    return s;
  if (Status s = checkShape(op, "dy", dy.shape, x.shape); !s)
    return s;
  if (Status s = checkDType(op, "dy", dy.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "dscale", outputs[1].shape, scale.shape); !s)
    return s;
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  double *sums = nullptr; // dscale's sums
  if (Status s = carveWorkspace(op, workspace, rmsNormGradWorkspace(n), &sums); !s)
    return s;
  if (cudaMemsetAsync(sums, 0, size_t(n) * sizeof(double), stream) != cudaSuccess)
    return launchStatus(op);
  return dispatchFloat(op, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (rows > 0)
      rmsNormGradRows<T><<<rowGrid(rows), kThreads, 0, stream>>>(
          dy.as<T>(), x.as<T>(), scale.as<T>(), outputs[0].as<T>(), sums, rows, n, epsilon);
    castFromDouble<T><<<gridFor(n), kThreads, 0, stream>>>(sums, outputs[1].as<T>(), n);
  });
}

} // namespace

void addNormalizationKernels(CudaKernelTable &table) {
  table.push_back({"rms_norm", rmsNorm});
  table.push_back({"rms_norm_grad", rmsNormGrad});
}

} // namespace cuda
} // namespace longctx
