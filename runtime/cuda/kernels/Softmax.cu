//===- Softmax.cu - softmax and log_softmax on CUDA -----------------------===//
//
// The CPU twin's math (runtime/cpu/Reduction.cpp): max-shifted exponentials,
// their sum in double. One block per (outer, inner) line along the axis;
// the line's elements are `inner` apart.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

namespace longctx {
namespace cuda {
namespace {

using cpu::AxisView;
using cpu::viewAroundAxis;

template <bool Log, typename T>
__global__ void softmaxLines(const T *x, T *y, int64_t n, int64_t inner) {
  const int64_t line = blockIdx.x;
  const int64_t base = (line / inner) * n * inner + line % inner;
  double m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    m = fmax(m, double(x[base + i * inner]));
  const T shift = T(blockMax(m));
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    sum += double(T(exp(x[base + i * inner] - shift)));
  sum = blockSum(sum);
  if (Log) {
    const T logSum = T(log(sum));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      y[base + i * inner] = (x[base + i * inner] - shift) - logSum;
  } else {
    const T scale = T(1.0 / sum);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      y[base + i * inner] = T(exp(x[base + i * inner] - shift)) * scale;
  }
}

template <bool Log>
Status softmax(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
               const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = Log ? "log_softmax" : "softmax";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &y = outputs[0];
  if (x.dtype != DType::F32 && x.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(x.dtype));
  AxisView view;
  if (Status s = viewAroundAxis(op, x, y, attrs, view); !s)
    return s;
  const int64_t lines = view.outer * view.inner;
  if (lines == 0 || view.n == 0)
    return Status();
  if (lines > int64_t(0x7fffffff))
    return opError(op, "too many lines for one launch");
  return dispatchFloat(op, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    softmaxLines<Log, T><<<unsigned(lines), kThreads, 0, stream>>>(x.as<T>(), y.as<T>(), view.n,
                                                                   view.inner);
  });
}

} // namespace

void addSoftmaxKernels(CudaKernelTable &table) {
  table.push_back({"softmax", softmax<false>});
  table.push_back({"log_softmax", softmax<true>});
}

} // namespace cuda
} // namespace longctx
