//===- Blas.h - The CPU kernels' one way to call BLAS (private) ------------===//
//
// BLAS is loaded at run time (BlasLoader.cpp), not linked: binaries then
// start on machines without OpenBLAS (a GPU machine running --device cuda)
// and only the kernels that multiply matrices need it. Each such kernel calls
// loadBlas() first and returns its error; gemm() below may then assume it.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Status.h"

#include <cblas.h>

#include <cstdint>

namespace longctx {
namespace cpu {

/// The entry points the kernels use (cblas.h gives their types only).
struct BlasApi {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  int (*getNumThreads)() = nullptr;   // OpenBLAS only; may be null
  void (*setNumThreads)(int) = nullptr; // OpenBLAS only; may be null
};

/// Loads BLAS once (thread-safe): $LONGCTX_BLAS if set, else the OpenBLAS
/// found at configure time, else libopenblas.so.0 from the library path.
/// The error names `op`, what was tried and how to fix it.
Status loadBlas(const char *op);

/// The loaded entry points; only after loadBlas() succeeded.
const BlasApi &blasApi();

inline void blas(bool transA, bool transB, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  blasApi().sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                  transB ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                  ldc);
}
inline void blas(bool transA, bool transB, int m, int n, int k, double alpha, const double *a,
                 int lda, const double *b, int ldb, double beta, double *c, int ldc) {
  blasApi().dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                  transB ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                  ldc);
}

/// Row-major C[m,n] = alpha * op(A) op(B) + beta * C, also for k == 0
/// (where BLAS may leave C untouched). Dimensions must fit BLAS's int.
template <typename T>
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T *a,
          int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  blas(transA, transB, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c,
       int(ldc));
}

/// Keeps BLAS single-threaded while OpenMP tasks each run their own small
/// products (restored on scope exit): one BLAS call per core beats BLAS
/// splitting every small product across threads.
class SingleThreadedBlas {
public:
  SingleThreadedBlas() {
    if (blasApi().getNumThreads && blasApi().setNumThreads) {
      saved_ = blasApi().getNumThreads();
      blasApi().setNumThreads(1);
    }
  }
  ~SingleThreadedBlas() {
    if (saved_ > 0)
      blasApi().setNumThreads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas &) = delete;
  SingleThreadedBlas &operator=(const SingleThreadedBlas &) = delete;

private:
  int saved_ = 0;
};

} // namespace cpu
} // namespace longctx
