//===- Gather.cu - Embedding lookup and its adjoint on CUDA ----------------===//
//
// gather (ONNX Gather) and scatter_add (its adjoint, out = 0 then out[..,
// idx[p], ..] += grad[.., p, ..]), with the CPU twins' shape checks. The
// indices live on the device, so they are checked there: a kernel that
// meets an index out of range raises a flag, and the launch fails naming an
// index it met (the host waits for the stream to read it). gather moves any
// dtype (as integers of its size), scatter_add sums floats.
// scatter_add accumulates with atomics: sums of repeated indices may differ
// from the CPU's (ordered, in double) in the last bits.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <cstring>

namespace longctx {
namespace cuda {
namespace {

using cpu::GatherView;

/// The first index out of range a launch met, if any.
struct BadIndex {
  unsigned int seen; // 0 until one is met
  long long value;
};

/// Index p of an i64 or i32 tensor, made non-negative; -1 (and `bad` set,
/// by the first thread to get there) when out of [-axisLen, axisLen).
template <typename I>
__device__ inline int64_t rowOf(const I *indices, int64_t p, int64_t axisLen, BadIndex *bad) {
  int64_t v = int64_t(indices[p]);
  if (v < -axisLen || v >= axisLen) {
    if (atomicCAS(&bad->seen, 0u, 1u) == 0u)
      bad->value = v;
    return -1;
  }
  return v < 0 ? v + axisLen : v;
}

/// Elements move as unsigned integers of their size (gather takes any dtype).
template <typename T, typename I>
__global__ void gatherKernel(const T *data, const I *indices, T *out, GatherView view,
                             BadIndex *bad) {
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
                                 BadIndex *bad) {
  const int64_t total = view.outer * view.numIdx * view.inner;
  for (int64_t e = globalIndex(); e < total; e += globalStride()) {
    const int64_t j = e % view.inner, it = e / view.inner;
    const int64_t r = it / view.numIdx, p = it % view.numIdx;
    const int64_t v = rowOf(indices, p, view.axisLen, bad);
    if (v >= 0)
      atomicAdd(out + (r * view.axisLen + v) * view.inner + j, grad[e]);
  }
}

Status badIndexError(const char *op, const BadIndex &seen, int64_t axisLen) {
  if (!seen.seen)
    return Status();
  return opError(op, "index " + std::to_string(seen.value) + " out of range for a dim of size " +
                         std::to_string(axisLen));
}

/// Launches `launch(bad)` with the flag in `workspace`, then fails naming a
/// bad index, if any (the host waits for the stream to read the flag), or,
/// given a record, leaves the flag there for after the step.
template <typename Launch>
Status withIndexCheck(const char *op, int64_t axisLen, cudaStream_t stream,
                      const Workspace &workspace, Launch &&launch) {
  static_assert(sizeof(BadIndex) <= 16, "KernelWorkspace.cpp plans 16 bytes");
  static_assert(sizeof(BadIndex) <= kCheckRecordBytes, "a record holds the flag");
  BadIndex *bad = nullptr;
  if (Status s = carveWorkspace(op, workspace, gatherWorkspace(), &bad); !s)
    return s;
  Status s = cudaMemsetAsync(bad, 0, sizeof *bad, stream) == cudaSuccess ? launch(bad)
                                                                         : launchStatus(op);
  if (workspace.record)
    return s && cudaMemcpyAsync(workspace.record, bad, sizeof *bad, cudaMemcpyDeviceToDevice,
                                stream) != cudaSuccess
               ? launchStatus(op)
               : s;
  BadIndex seen{0, 0};
  if (s && cudaMemcpyAsync(&seen, bad, sizeof seen, cudaMemcpyDeviceToHost, stream) != cudaSuccess)
    s = launchStatus(op);
  if (cudaStreamSynchronize(stream) != cudaSuccess && s)
    s = launchStatus(op);
  return s ? badIndexError(op, seen, axisLen) : s;
}

Status gather(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
              const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "gather";
  GatherView view;
  if (Status s = cpu::resolveGatherOperands(op, false, inputs, outputs, attrs, view); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (o.numElements() == 0)
    return Status();
  return withIndexCheck(op, view.axisLen, stream, workspace, [&](BadIndex *bad) {
    dispatchIndex(indices.dtype, [&](auto i) {
      using I = decltype(i);
      auto launch = [&](auto t) {
        using U = decltype(t);
        gatherKernel<U, I><<<gridFor(o.numElements()), kThreads, 0, stream>>>(
            data.as<U>(), indices.as<I>(), o.as<U>(), view, bad);
      };
      switch (dtypeSize(data.dtype)) {
      case 1: launch(uint8_t{}); break;
      case 2: launch(uint16_t{}); break;
      case 4: launch(uint32_t{}); break;
      default: launch(uint64_t{});
      }
    });
    return launchStatus(op);
  });
}

Status scatterAdd(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                  const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "scatter_add";
  GatherView view;
  if (Status s = cpu::resolveGatherOperands(op, true, inputs, outputs, attrs, view); !s)
    return s;
  const TensorRef &grad = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (o.numElements() == 0)
    return Status();
  if (cudaMemsetAsync(o.data, 0, o.bytes(), stream) != cudaSuccess)
    return launchStatus(op);
  if (grad.numElements() == 0)
    return Status();
  return withIndexCheck(op, view.axisLen, stream, workspace, [&](BadIndex *bad) {
    return dispatchFloat(op, o.dtype, [&](auto t) {
      using T = decltype(t);
      dispatchIndex(indices.dtype, [&](auto i) {
        using I = decltype(i);
        scatterAddKernel<T, I><<<gridFor(grad.numElements()), kThreads, 0, stream>>>(
            grad.as<T>(), indices.as<I>(), o.as<T>(), view, bad);
      });
    });
  });
}

/// The deferred check of gather and scatter_add, against the step's view.
template <bool Scatter>
Status indexRecord(const char *op, const void *record, const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  GatherView view;
  if (Status s = cpu::resolveGatherOperands(op, Scatter, inputs, outputs, attrs, view); !s)
    return s;
  BadIndex seen;
  std::memcpy(&seen, record, sizeof seen);
  return badIndexError(op, seen, view.axisLen);
}

} // namespace

void addGatherKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"gather", gather, indexRecord<false>},
                             {"scatter_add", scatterAdd, indexRecord<true>}});
}

} // namespace cuda
} // namespace longctx
