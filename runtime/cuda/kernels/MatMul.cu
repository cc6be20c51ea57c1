//===- MatMul.cu - matmul and gemm on cuBLAS --------------------------------===//
//
// The CPU kernels' shapes and checks (cpu/OperandChecks.h) on cuBLAS.
// cuBLAS is column-major: a row-major C = A B is the column-major
// C^T = B^T A^T, so every call passes (B, A) and (n, m).
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cuda/CudaKernels.h"
#include "runtime/cuda/Cublas.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <climits>

namespace longctx {
namespace cuda {
namespace {

using cpu::GemmDims;
using cpu::MatMulDims;

template <typename T> __global__ void scaleKernel(T *x, int64_t n, T factor) {
  for (int64_t i = globalIndex(); i < n; i += globalStride())
    x[i] = factor == T(0) ? T(0) : x[i] * factor;
}

/// Row-major C[m, n] = alpha op(A) op(B) + beta C, for `count` matrices
/// `stride*` elements apart (stride 0: shared).
template <typename T>
Status gemm(const char *op, const Cublas &blas, bool transA, bool transB, int64_t m, int64_t n,
            int64_t k, T alpha, const T *a, int64_t lda, int64_t strideA, const T *b, int64_t ldb,
            int64_t strideB, T beta, T *c, int64_t ldc, int64_t strideC, int64_t count) {
  const CublasApi &x = *blas.api;
  const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  if constexpr (std::is_same_v<T, float>)
    return cublasStatus(op, x.sgemmStridedBatched(blas.handle, opB, opA, int(n), int(m), int(k),
                                                  &alpha, b, int(ldb), strideB, a, int(lda),
                                                  strideA, &beta, c, int(ldc), strideC,
                                                  int(count)));
  else
    return cublasStatus(op, x.dgemmStridedBatched(blas.handle, opB, opA, int(n), int(m), int(k),
                                                  &alpha, b, int(ldb), strideB, a, int(lda),
                                                  strideA, &beta, c, int(ldc), strideC,
                                                  int(count)));
}

Status matmulKernel(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                    const AttrMap &, cudaStream_t stream, Workspace workspace) {
  const char *op = "matmul";
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &o = outputs[0];
  MatMulDims d;
  if (Status s = cpu::resolveMatMul(op, a, b, o, d); !s)
    return s;
  if (a.dtype != DType::F32 && a.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(a.dtype));
  if (o.numElements() == 0)
    return Status();
  if (d.k == 0)
    return cudaMemsetAsync(o.data, 0, o.bytes(), stream) == cudaSuccess
               ? Status()
               : opError(op, "cannot zero the output");
  const int64_t numBatch = numElements(d.batch);
  const bool sharedB = numElements(d.bBatch) == 1, sameBatch = d.aBatch == d.bBatch;
  const bool sharedA = numElements(d.aBatch) == 1;
  Result<Cublas> blas = cublasFor(op, stream, workspace);
  if (!blas)
    return blas.status();
  return dispatchFloat(op, a.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *pa = a.as<T>(), *pb = b.as<T>();
    T *po = o.as<T>();
    const int64_t mk = d.m * d.k, kn = d.k * d.n, mn = d.m * d.n;
    if (sharedB) { // a's batch folds into M: one GEMM (chunked past cuBLAS's int)
      const int64_t rows = numBatch * d.m, step = INT_MAX;
      for (int64_t r = 0; r < rows; r += step)
        if (Status s = gemm<T>(op, *blas, false, false, std::min(step, rows - r), d.n, d.k, T(1),
                               pa + r * d.k, d.k, 0, pb, d.n, 0, T(0), po + r * d.n, d.n, 0, 1);
            !s)
          return s;
      return Status();
    }
    if (numBatch > INT_MAX)
      return opError(op, "more batched products than cuBLAS's int");
    if (sameBatch || sharedA) // one strided batch
      return gemm<T>(op, *blas, false, false, d.m, d.n, d.k, T(1), pa, d.k, sharedA ? 0 : mk,
                     pb, d.n, kn, T(0), po, d.n, mn, numBatch);
    // Broadcast batch dims: one product per output matrix.
    std::vector<int64_t> aStr = cpu::broadcastStrides(d.aBatch, d.batch);
    std::vector<int64_t> bStr = cpu::broadcastStrides(d.bBatch, d.batch);
    const int64_t rank = int64_t(d.batch.size());
    for (int64_t i = 0; i < numBatch; ++i) {
      int64_t aOff = 0, bOff = 0, rest = i;
      for (int64_t dim = rank - 1; dim >= 0; --dim) {
        const int64_t idx = rest % d.batch[size_t(dim)];
        rest /= d.batch[size_t(dim)];
        aOff += idx * aStr[size_t(dim)];
        bOff += idx * bStr[size_t(dim)];
      }
      if (Status s = gemm<T>(op, *blas, false, false, d.m, d.n, d.k, T(1), pa + aOff * mk, d.k,
                             0, pb + bOff * kn, d.n, 0, T(0), po + i * mn, d.n, 0, 1);
          !s)
        return s;
    }
    return Status();
  });
}

Status gemmKernel(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                  const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "gemm";
  if (Status s = checkArity(op, inputs, 2, 3, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &o = outputs[0];
  GemmDims d;
  if (Status s = cpu::resolveGemm(op, inputs, o, attrs, d); !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  // c broadcast into the output first; cuBLAS then accumulates onto it.
  const bool useC = inputs.size() == 3 && d.beta != 0.0;
  if (useC) {
    if (Status s = runCudaKernel("expand", {inputs[2]}, {o}, AttrMap(), stream); !s)
      return s;
  }
  Result<Cublas> blas = cublasFor(op, stream, workspace);
  if (!blas)
    return blas.status();
  return dispatchFloat(op, a.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if (d.k == 0) { // the empty product: beta c, or zeros
      if (!useC)
        return cudaMemsetAsync(o.data, 0, o.bytes(), stream) == cudaSuccess
                   ? Status()
                   : opError(op, "cannot zero the output");
      scaleKernel<T><<<gridFor(o.numElements()), kThreads, 0, stream>>>(o.as<T>(),
                                                                         o.numElements(), T(d.beta));
      return Status();
    }
    return gemm<T>(op, *blas, d.transA, d.transB, d.m, d.n, d.k, T(d.alpha), a.as<T>(),
                   a.shape[1], 0, b.as<T>(), b.shape[1], 0, useC ? T(d.beta) : T(0), o.as<T>(),
                   d.n, 0, 1);
  });
}

} // namespace

void addMatMulKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"matmul", matmulKernel}, {"gemm", gemmKernel}});
}

} // namespace cuda
} // namespace longctx
