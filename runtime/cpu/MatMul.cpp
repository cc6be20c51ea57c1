//===- MatMul.cpp - matmul and gemm kernels on CBLAS ----------------------===//
#include "runtime/cpu/Blas.h"
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"

#include <climits>
#include <omp.h>

namespace longctx {
namespace cpu {
namespace {

template <typename T>
void blasGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T *a,
              int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {
  blas(transA, transB, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c,
       int(ldc));
}

bool fitsBlas(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims)
    if (d > INT_MAX)
      return false;
  return true;
}

} // namespace

Status resolveMatMul(const char *op, const TensorRef &a, const TensorRef &b, const TensorRef &o,
                     MatMulDims &dims) {
  if (Status s = checkDType(op, "b", b.dtype, a.dtype); !s)
    return s;
  if (Status s = checkDType(op, "output", o.dtype, a.dtype); !s)
    return s;
  if (a.rank() < 1 || b.rank() < 1)
    return opError(op, "operands must have rank >= 1");
  Shape aShape = a.shape, bShape = b.shape;
  if (a.rank() == 1)
    aShape.insert(aShape.begin(), 1);
  if (b.rank() == 1)
    bShape.push_back(1);
  dims.m = aShape[aShape.size() - 2];
  dims.k = aShape.back();
  dims.n = bShape.back();
  if (bShape[bShape.size() - 2] != dims.k)
    return opError(op, "inner dimensions differ: " + shapeToString(a.shape) + " x " +
                           shapeToString(b.shape));
  dims.aBatch.assign(aShape.begin(), aShape.end() - 2);
  dims.bBatch.assign(bShape.begin(), bShape.end() - 2);
  std::optional<Shape> batch = broadcastShapes({&dims.aBatch, &dims.bBatch});
  if (!batch)
    return opError(op, "batch dims of " + shapeToString(a.shape) + " and " +
                           shapeToString(b.shape) + " do not broadcast");
  dims.batch = *batch;
  Shape expected = *batch;
  if (a.rank() > 1)
    expected.push_back(dims.m);
  if (b.rank() > 1)
    expected.push_back(dims.n);
  if (Status s = checkShape(op, "output", o.shape, expected); !s)
    return s;
  if (!fitsBlas({dims.m, dims.n, dims.k}))
    return opError(op, "matrix dimensions exceed the BLAS int range");
  return Status();
}

Status resolveGemm(const char *op, const std::vector<TensorRef> &inputs, const TensorRef &o,
                   const AttrMap &attrs, GemmDims &dims) {
  const TensorRef &a = inputs[0], &b = inputs[1];
  const TensorRef *c = inputs.size() == 3 ? &inputs[2] : nullptr;
  if (Status s = checkDType(op, "b", b.dtype, a.dtype); !s)
    return s;
  if (c)
    if (Status s = checkDType(op, "c", c->dtype, a.dtype); !s)
      return s;
  if (Status s = checkDType(op, "output", o.dtype, a.dtype); !s)
    return s;
  if (a.rank() != 2 || b.rank() != 2)
    return opError(op, "a and b must have rank 2");
  dims.transA = attrs.getInt("trans_a", 0) != 0;
  dims.transB = attrs.getInt("trans_b", 0) != 0;
  dims.alpha = attrs.getFloat("alpha", 1.0);
  dims.beta = attrs.getFloat("beta", 1.0);
  dims.m = dims.transA ? a.shape[1] : a.shape[0];
  dims.k = dims.transA ? a.shape[0] : a.shape[1];
  const int64_t kb = dims.transB ? b.shape[1] : b.shape[0];
  dims.n = dims.transB ? b.shape[0] : b.shape[1];
  if (dims.k != kb)
    return opError(op, "inner dimensions differ: op(a) is " + std::to_string(dims.m) + "x" +
                           std::to_string(dims.k) + ", op(b) is " + std::to_string(kb) + "x" +
                           std::to_string(dims.n));
  if (Status s = checkShape(op, "output", o.shape, {dims.m, dims.n}); !s)
    return s;
  if (c && !broadcastsTo(c->shape, o.shape))
    return opError(op, "c of shape " + shapeToString(c->shape) + " does not broadcast to " +
                           shapeToString(o.shape));
  if (!fitsBlas({dims.m, dims.n, dims.k}))
    return opError(op, "matrix dimensions exceed the BLAS int range");
  return Status();
}

namespace {

Status matmulKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "matmul";
  if (Status s = loadBlas(op); !s)
    return s;
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &o = outputs[0];
  MatMulDims dims;
  if (Status s = resolveMatMul(op, a, b, o, dims); !s)
    return s;
  const int64_t m = dims.m, n = dims.n, k = dims.k;
  const Shape &aBatch = dims.aBatch, &bBatch = dims.bBatch;
  const std::optional<Shape> batch = dims.batch;

  return dispatchFloat(op, a.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *pa = a.as<T>(), *pb = b.as<T>();
    T *po = o.as<T>();
    if (o.numElements() == 0)
      return Status();
    if (k == 0) { // BLAS may leave C untouched for an empty product
      std::memset(po, 0, o.bytes());
      return Status();
    }
    const int64_t numBatch = numElements(*batch);
    if (numElements(bBatch) == 1) {
      // One shared b: a's batch folds into M, a single large GEMM (chunked
      // only if the folded M exceeds BLAS's int).
      const int64_t rows = numBatch * m;
      const int64_t step = INT_MAX;
      for (int64_t r = 0; r < rows; r += step) {
        int64_t mr = std::min(step, rows - r);
        blasGemm(false, false, mr, n, k, T(1), pa + r * k, k, pb, n, T(0),
                 po + r * n, n);
      }
      return Status();
    }
    // Batch broadcast: per output matrix, find each operand's matrix.
    std::vector<int64_t> aStr = broadcastStrides(aBatch, *batch);
    std::vector<int64_t> bStr = broadcastStrides(bBatch, *batch);
    const int64_t rank = int64_t(batch->size());
    auto multiply = [&](int64_t i) {
      int64_t aOff = 0, bOff = 0, rest = i;
      for (int64_t d = rank - 1; d >= 0; --d) {
        int64_t idx = rest % (*batch)[d];
        rest /= (*batch)[d];
        aOff += idx * aStr[d];
        bOff += idx * bStr[d];
      }
      blasGemm(false, false, m, n, k, T(1), pa + aOff * m * k, k,
               pb + bOff * k * n, n, T(0), po + i * m * n, n);
    };
    // Many small products (attention heads): one single-threaded GEMM per
    // core beats BLAS splitting each small product across threads.
    const bool small = m * n * k < (int64_t(1) << 21);
    if (numBatch >= 2 && small && omp_get_max_threads() > 1) {
      SingleThreadedBlas oneThreadEach;
#pragma omp parallel for schedule(dynamic)
      for (int64_t i = 0; i < numBatch; ++i)
        multiply(i);
    } else {
      for (int64_t i = 0; i < numBatch; ++i)
        multiply(i);
    }
    return Status();
  });
}

Status gemmKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const char *op = "gemm";
  if (Status s = loadBlas(op); !s)
    return s;
  if (Status s = checkArity(op, inputs, 2, 3, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &o = outputs[0];
  const TensorRef *c = inputs.size() == 3 ? &inputs[2] : nullptr;
  GemmDims dims;
  if (Status s = resolveGemm(op, inputs, o, attrs, dims); !s)
    return s;
  const int64_t m = dims.m, n = dims.n, k = dims.k;
  const bool transA = dims.transA, transB = dims.transB;
  const double alpha = dims.alpha, beta = dims.beta;
  (void)m;

  return dispatchFloat(op, a.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    T *po = o.as<T>();
    if (o.numElements() == 0)
      return Status();
    // Broadcast c into the output, then let BLAS accumulate onto it; with
    // beta == 0, c is not read (no NaN from 0 * NaN, as BLAS defines it).
    const bool useC = c && beta != 0.0;
    if (useC)
      stridedCopy(sizeof(T), o.shape, broadcastStrides(c->shape, o.shape),
                  c->data, po);
    if (k == 0) {
      // Empty product: the result is beta*c or 0.
      const int64_t total = o.numElements();
      for (int64_t i = 0; i < total; ++i)
        po[i] = useC ? T(beta) * po[i] : T(0);
      return Status();
    }
    blasGemm(transA, transB, m, n, k, T(alpha), a.as<T>(), a.shape[1],
             b.as<T>(), b.shape[1], useC ? T(beta) : T(0), po, n);
    return Status();
  });
}

} // namespace

void addMatMulKernels(KernelTable &table) {
  table.insert(table.end(), {{"matmul", matmulKernel}, {"gemm", gemmKernel}});
}

} // namespace cpu
} // namespace longctx
