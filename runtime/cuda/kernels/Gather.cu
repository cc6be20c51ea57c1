//===- Gather.cu - Embedding lookup and its adjoint on CUDA ----------------===//
//
// gather (ONNX Gather) and scatter_add (its adjoint, out = 0 then out[..,
// idx[p], ..] += grad[.., p, ..]), with the CPU twins' shape checks. The
// indices live on the device, so they are checked there: a kernel that
// meets an index out of range raises a flag, and the launch fails with the
// first such index (the host waits for the stream to read it).
// scatter_add accumulates with atomics: sums of repeated indices may differ
// from the CPU's (ordered, in double) in the last bits.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

namespace longctx {
namespace cuda {
namespace {

using cpu::GatherView;

/// Index p of an i64 or i32 tensor, made non-negative; `bad` receives the
/// first index out of [-axisLen, axisLen) (it stays INT64_MIN otherwise).
template <typename I>
__device__ inline int64_t rowOf(const I *indices, int64_t p, int64_t axisLen,
                                unsigned long long *bad) {
  int64_t v = int64_t(indices[p]);
  if (v < -axisLen || v >= axisLen) {
    atomicCAS(bad, static_cast<unsigned long long>(INT64_MIN), static_cast<unsigned long long>(v));
    return -1;
  }
  return v < 0 ? v + axisLen : v;
}

template <typename T, typename I>
__global__ void gatherKernel(const T *data, const I *indices, T *out, GatherView view,
                             unsigned long long *bad) {
  const int64_t total = view.outer * view.numIdx * view.inner;
  for (int64_t e = globalIndex(); e < total; e += globalStride()) {
    const int64_t j = e % view.inner, it = e / view.inner;
    const int64_t r = it / view.numIdx, p = it % view.numIdx;
    const int64_t v = rowOf(indices, p, view.axisLen, bad);
    out[e] = v < 0 ? T(0) : data[(r * view.axisLen + v) * view.inner + j];
  }
}

template <typename T, typename I>
__global__ void scatterAddKernel(const T *grad, const I *indices, T *out, GatherView view,
                                 unsigned long long *bad) {
  const int64_t total = view.outer * view.numIdx * view.inner;
  for (int64_t e = globalIndex(); e < total; e += globalStride()) {
    const int64_t j = e % view.inner, it = e / view.inner;
    const int64_t r = it / view.numIdx, p = it % view.numIdx;
    const int64_t v = rowOf(indices, p, view.axisLen, bad);
    if (v >= 0)
      atomicAdd(out + (r * view.axisLen + v) * view.inner + j, grad[e]);
  }
}

/// Launches `launch(bad)` and fails naming the first bad index, if any.
template <typename Launch>
Status withIndexCheck(const char *op, int64_t axisLen, cudaStream_t stream, Launch &&launch) {
  unsigned long long *bad = nullptr;
  if (cudaMallocAsync(&bad, sizeof *bad, stream) != cudaSuccess)
    return launchStatus(op);
  unsigned long long none = static_cast<unsigned long long>(INT64_MIN), seen = none;
  cudaMemcpyAsync(bad, &none, sizeof none, cudaMemcpyHostToDevice, stream);
  Status s = launch(bad);
  cudaMemcpyAsync(&seen, bad, sizeof seen, cudaMemcpyDeviceToHost, stream);
  cudaFreeAsync(bad, stream);
  if (cudaStreamSynchronize(stream) != cudaSuccess && s)
    s = launchStatus(op);
  if (s && seen != none)
    return opError(op, "index " + std::to_string(static_cast<long long>(seen)) +
                           " out of range for a dim of size " + std::to_string(axisLen));
  return s;
}

/// Runs fn(T{}, I{}) for the data's float and the indices' integer type.
template <typename Fn>
Status dispatchIndexed(const char *op, DType data, DType indices, Fn &&fn) {
  return dispatchFloat(op, data, [&](auto tag) {
    if (indices == DType::I64)
      fn(tag, int64_t{});
    else
      fn(tag, int32_t{});
  });
}

Status gather(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
              const AttrMap &attrs, cudaStream_t stream) {
  const char *op = "gather";
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (Status s = checkDType(op, "output", o.dtype, data.dtype); !s)
    return s;
  GatherView view;
  if (Status s = cpu::resolveGatherShape(op, data.shape, indices, o.shape, "output", attrs, view);
      !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  return withIndexCheck(op, view.axisLen, stream, [&](unsigned long long *bad) {
    return dispatchIndexed(op, data.dtype, indices.dtype, [&](auto t, auto i) {
      using T = decltype(t);
      using I = decltype(i);
      gatherKernel<T, I><<<gridFor(o.numElements()), kThreads, 0, stream>>>(
          data.as<T>(), indices.as<I>(), o.as<T>(), view, bad);
    });
  });
}

Status scatterAdd(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                  const AttrMap &attrs, cudaStream_t stream) {
  const char *op = "scatter_add";
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &grad = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (Status s = checkDType(op, "grad", grad.dtype, o.dtype); !s)
    return s;
  GatherView view;
  if (Status s = cpu::resolveGatherShape(op, o.shape, indices, grad.shape, "grad", attrs, view);
      !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  if (cudaMemsetAsync(o.data, 0, o.bytes(), stream) != cudaSuccess)
    return launchStatus(op);
  if (grad.numElements() == 0)
    return Status();
  return withIndexCheck(op, view.axisLen, stream, [&](unsigned long long *bad) {
    return dispatchIndexed(op, o.dtype, indices.dtype, [&](auto t, auto i) {
      using T = decltype(t);
      using I = decltype(i);
      scatterAddKernel<T, I><<<gridFor(grad.numElements()), kThreads, 0, stream>>>(
          grad.as<T>(), indices.as<I>(), o.as<T>(), view, bad);
    });
  });
}

} // namespace

void addGatherKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"gather", gather}, {"scatter_add", scatterAdd}});
}

} // namespace cuda
} // namespace longctx
