//===- Layout.cu - Data movement on CUDA: copies, transpose, slice, concat -===//
//
// The CPU twins' checks (runtime/cpu/OperandChecks.h) and one strided-copy
// kernel: each output element reads the input at base + sum(i_d * stride_d),
// which covers transpose (permuted strides), slice (stepped strides) and
// expand (zero strides). Copies between equal layouts (identity, reshape)
// are stream-ordered memcpys, skipped in place.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"
#include "runtime/cpu/OperandChecks.h"

namespace longctx {
namespace cuda {
namespace {



struct StridedView {
  int rank;
  int64_t shape[kMaxRank];
  int64_t stride[kMaxRank];
  int64_t base;
};

/// Elements are moved as unsigned integers of their size. Element i of the
/// dense side sits at base + sum(i_d * stride_d) on the strided side: a
/// gather reads there (Scatter false), a scatter writes there.
template <typename U, bool Scatter>
__global__ void stridedCopyKernel(const U *in, U *out, int64_t n, StridedView v) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    int64_t rest = i, offset = v.base;
    for (int d = v.rank - 1; d >= 0; --d) {
      offset += (rest % v.shape[d]) * v.stride[d];
      rest /= v.shape[d];
    }
    if (Scatter)
      out[offset] = in[i];
    else
      out[i] = in[offset];
  }
}

/// `dense` (the side walked in order) has the view's shape.
template <bool Scatter>
Status stridedMove(const char *op, const TensorRef &x, const TensorRef &o, const Shape &dense,
                   const std::vector<int64_t> &strides, int64_t base, cudaStream_t stream) {
  if (dense.size() > size_t(kMaxRank))
    return opError(op, "rank " + std::to_string(dense.size()) + " is over the CUDA kernels' 8");
  StridedView v{int(dense.size()), {}, {}, base};
  for (int d = 0; d < v.rank; ++d) {
    v.shape[d] = dense[size_t(d)];
    v.stride[d] = strides[size_t(d)];
  }
  const int64_t n = numElements(dense);
  if (n == 0)
    return Status();
  switch (dtypeSize(x.dtype)) {
  case 1:
    stridedCopyKernel<uint8_t, Scatter>
        <<<gridFor(n), kThreads, 0, stream>>>(x.as<uint8_t>(), o.as<uint8_t>(), n, v);
    break;
  case 2:
    stridedCopyKernel<uint16_t, Scatter>
        <<<gridFor(n), kThreads, 0, stream>>>(x.as<uint16_t>(), o.as<uint16_t>(), n, v);
    break;
  case 4:
    stridedCopyKernel<uint32_t, Scatter>
        <<<gridFor(n), kThreads, 0, stream>>>(x.as<uint32_t>(), o.as<uint32_t>(), n, v);
    break;
  default:
    stridedCopyKernel<uint64_t, Scatter>
        <<<gridFor(n), kThreads, 0, stream>>>(x.as<uint64_t>(), o.as<uint64_t>(), n, v);
  }
  return launchStatus(op);
}

Status stridedCopy(const char *op, const TensorRef &x, const TensorRef &o,
                   const std::vector<int64_t> &strides, int64_t base, cudaStream_t stream) {
  return stridedMove<false>(op, x, o, o.shape, strides, base, stream);
}

Status checkMove(const char *op, const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs) {
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  return checkDType(op, "output", outputs[0].dtype, inputs[0].dtype);
}

/// identity and reshape: the same bytes.
template <bool SameShape>
Status copy(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
            const AttrMap &, cudaStream_t stream, Workspace) {
  const char *op = SameShape ? "identity" : "reshape";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (SameShape) {
    if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
      return s;
  } else if (x.numElements() != o.numElements()) {
    return opError(op, "cannot reshape " + shapeToString(x.shape) + " to " +
                           shapeToString(o.shape));
  }
  if (x.numElements() == 0 || o.data == x.data)
    return Status();
  if (cudaMemcpyAsync(o.data, x.data, x.bytes(), cudaMemcpyDeviceToDevice, stream) !=
      cudaSuccess)
    return launchStatus(op);
  return Status();
}

Status transpose(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                 const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "transpose";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  std::vector<int64_t> strides;
  if (Status s = cpu::resolveTranspose(op, inputs[0], outputs[0], attrs, strides); !s)
    return s;
  return stridedCopy(op, inputs[0], outputs[0], strides, 0, stream);
}

Status slice(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
             const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "slice";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  cpu::SliceRegion region;
  if (Status s = cpu::resolveSlice(op, attrs, inputs[0].shape, outputs[0].shape, "output",
                                   region);
      !s)
    return s;
  return stridedCopy(op, inputs[0], outputs[0], region.strides, region.base, stream);
}

Status expand(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
              const AttrMap &, cudaStream_t stream, Workspace) {
  const char *op = "expand";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  if (!cpu::broadcastsTo(inputs[0].shape, outputs[0].shape))
    return opError(op, "cannot broadcast " + shapeToString(inputs[0].shape) + " to " +
                           shapeToString(outputs[0].shape));
  return stridedCopy(op, inputs[0], outputs[0],
                     cpu::broadcastStrides(inputs[0].shape, outputs[0].shape), 0, stream);
}

} // namespace

/// The adjoint of slice: zeros, with src written where slice reads.
Status sliceScatter(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "slice_scatter";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &src = inputs[0], &o = outputs[0];
  cpu::SliceRegion region;
  if (Status s = cpu::resolveSlice(op, attrs, o.shape, src.shape, "src", region); !s)
    return s;
  if (o.numElements() && cudaMemsetAsync(o.data, 0, o.bytes(), stream) != cudaSuccess)
    return launchStatus(op);
  return stridedMove<true>(op, src, o, src.shape, region.strides, region.base, stream);
}

/// `rows` rows of `width` bytes, `srcPitch` apart, to rows `dstPitch` apart:
/// for pitches past what cudaMemcpy2D takes (2 GiB).
__global__ void copyBand(char *dst, int64_t dstPitch, const char *src, int64_t srcPitch,
                         int64_t width, int64_t rows) {
  for (int64_t e = globalIndex(); e < rows * width; e += globalStride())
    dst[(e / width) * dstPitch + e % width] = src[(e / width) * srcPitch + e % width];
}

/// Each input fills its band of every output row: one 2-D copy per input.
Status concat(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
              const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "concat";
  if (Status s = checkArity(op, inputs, 1, SIZE_MAX, outputs); !s)
    return s;
  const TensorRef &o = outputs[0];
  int64_t outer = 0, inner = 0;
  if (Status s = cpu::resolveConcat(op, inputs, o, attrs, outer, inner); !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  const int64_t axis = attrs.getInt("axis", 0);
  const size_t outRow = size_t(o.shape[size_t(axis)] * inner);
  size_t column = 0;
  constexpr size_t kMaxPitch = size_t(1) << 31; // cudaMemcpy2D's (memPitch)
  for (const TensorRef &x : inputs) {
    const size_t bytes = size_t(x.shape[size_t(axis)] * inner);
    char *dst = static_cast<char *>(o.data) + column;
    column += bytes;
    if (bytes == 0)
      continue;
    cudaError_t err = cudaSuccess;
    if (outer == 1)
      err = cudaMemcpyAsync(dst, x.data, bytes, cudaMemcpyDeviceToDevice, stream);
    else if (outRow < kMaxPitch)
      err = cudaMemcpy2DAsync(dst, outRow, x.data, bytes, bytes, size_t(outer),
                              cudaMemcpyDeviceToDevice, stream);
    else
      copyBand<<<gridFor(outer * int64_t(bytes)), kThreads, 0, stream>>>(
          dst, int64_t(outRow), static_cast<const char *>(x.data), int64_t(bytes),
          int64_t(bytes), outer);
    if (err != cudaSuccess)
      return launchStatus(op);
  }
  return launchStatus(op);
}

void addLayoutKernels(CudaKernelTable &table) {
  table.push_back({"identity", copy<true>});
  table.push_back({"reshape", copy<false>});
  table.push_back({"transpose", transpose});
  table.push_back({"slice", slice});
  table.push_back({"expand", expand});
  table.push_back({"slice_scatter", sliceScatter});
  table.push_back({"concat", concat});
}

} // namespace cuda
} // namespace longctx
