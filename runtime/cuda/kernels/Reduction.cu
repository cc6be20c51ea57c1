//===- Reduction.cu - reduce_sum, reduce_mean, reduce_max on CUDA ---------===//
//
// The CPU twins' math (runtime/cpu/Reduction.cpp): sums in double, max
// propagating NaN, any sorted set of axes, either keepdims layout. One block
// per output element walks that element's reduced coordinates.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

namespace longctx {
namespace cuda {
namespace {



/// Kept and reduced dims of the input, with their input strides.
struct ReduceDims {
  int kept, reduced;
  int64_t keptShape[kMaxRank], keptStride[kMaxRank];
  int64_t reducedShape[kMaxRank], reducedStride[kMaxRank];
  int64_t count; // elements per output
};

__device__ int64_t offsetOf(int64_t index, int rank, const int64_t *shape,
                            const int64_t *stride) {
  int64_t offset = 0;
  for (int d = rank - 1; d >= 0; --d) {
    offset += (index % shape[d]) * stride[d];
    index /= shape[d];
  }
  return offset;
}

template <int Kind, typename T> // 0 sum, 1 mean, 2 max
__global__ void reduceOutputs(const T *x, T *y, ReduceDims r) {
  const int64_t q = blockIdx.x;
  const int64_t base = offsetOf(q, r.kept, r.keptShape, r.keptStride);
  if (Kind == 2) {
    __shared__ int sawNan;
    if (threadIdx.x == 0)
      sawNan = 0;
    __syncthreads();
    double m = -INFINITY;
    for (int64_t j = threadIdx.x; j < r.count; j += blockDim.x) {
      const T v = x[base + offsetOf(j, r.reduced, r.reducedShape, r.reducedStride)];
      if (v != v)
        sawNan = 1;
      m = fmax(m, double(v));
    }
    // blockSum's pattern with max: every thread holds its partial.
    __shared__ double partial[32];
    for (int offset = 16; offset > 0; offset /= 2)
      m = fmax(m, __shfl_down_sync(0xffffffffu, m, offset));
    if (threadIdx.x % 32 == 0)
      partial[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
      double all = -INFINITY;
      for (int w = 0; w < int(blockDim.x + 31) / 32; ++w)
        all = fmax(all, partial[w]);
      y[q] = sawNan ? T(0.0 / 0.0) : T(all);
    }
    return;
  }
  double sum = 0;
  for (int64_t j = threadIdx.x; j < r.count; j += blockDim.x)
    sum += double(x[base + offsetOf(j, r.reduced, r.reducedShape, r.reducedStride)]);
  sum = blockSum(sum);
  if (threadIdx.x == 0)
    y[q] = T(Kind == 1 ? sum / double(r.count) : sum);
}

template <int Kind>
Status reduce(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
              const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = Kind == 0 ? "reduce_sum" : Kind == 1 ? "reduce_mean" : "reduce_max";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (x.dtype != DType::F32 && x.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(x.dtype));
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  const int64_t rank = x.rank();
  if (rank > kMaxRank)
    return opError(op, "rank " + std::to_string(rank) + " is over the CUDA kernels' 8");
  std::vector<int64_t> axes = attrs.getInts("axes");
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  std::vector<bool> reduced(size_t(rank), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= rank || (i && axes[i] <= axes[i - 1]))
      return opError(op, "axes must be sorted, distinct and in [0, " + std::to_string(rank) +
                             ")");
    reduced[size_t(axes[i])] = true;
  }
  ReduceDims r{0, 0, {}, {}, {}, {}, 1};
  Shape kept, squeezed;
  const std::vector<int64_t> strides = cpu::contiguousStrides(x.shape);
  for (int64_t d = 0; d < rank; ++d) {
    kept.push_back(reduced[size_t(d)] ? 1 : x.shape[size_t(d)]);
    if (reduced[size_t(d)]) {
      r.reducedShape[r.reduced] = x.shape[size_t(d)];
      r.reducedStride[r.reduced++] = strides[size_t(d)];
      r.count *= x.shape[size_t(d)];
    } else {
      squeezed.push_back(x.shape[size_t(d)]);
      r.keptShape[r.kept] = x.shape[size_t(d)];
      r.keptStride[r.kept++] = strides[size_t(d)];
    }
  }
  if (o.shape != kept && o.shape != squeezed)
    return opError(op, "output has shape " + shapeToString(o.shape) + ", expected " +
                           shapeToString(kept) + " or " + shapeToString(squeezed));
  const int64_t numOut = o.numElements();
  if (numOut == 0)
    return Status();
  if (numOut > int64_t(0x7fffffff))
    return opError(op, "too many outputs for one launch");
  return dispatchFloat(op, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    reduceOutputs<Kind, T><<<unsigned(numOut), kThreads, 0, stream>>>(x.as<T>(), o.as<T>(), r);
  });
}

} // namespace

void addReductionKernels(CudaKernelTable &table) {
  table.push_back({"reduce_sum", reduce<0>});
  table.push_back({"reduce_mean", reduce<1>});
  table.push_back({"reduce_max", reduce<2>});
}

} // namespace cuda
} // namespace longctx
