//===- SelectiveScan.cpp - Mamba selective scan forward kernel ------------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"

namespace longctx {
namespace cpu {
namespace {

/// Channels one task scans together: they share each step's B and C rows,
/// which then stay in L1, while their states (kChannelBlock x N) do too.
constexpr int64_t kChannelBlock = 16;

template <typename T>
void selectiveScan(const T *u, const T *delta, const T *a, const T *bm,
                   const T *c, T *y, int64_t batch, int64_t seq, int64_t e,
                   int64_t n) {
  const int64_t blocks = (e + kChannelBlock - 1) / kChannelBlock;
  const int64_t tasks = batch * blocks;
  // Work is batch*seq*E*N exp's; channels (b, e) are independent.
  const bool parallel = batch * seq * e * n >= kParallelGrain && tasks > 1;
#pragma omp parallel if (parallel)
  {
    std::vector<T> state(size_t(kChannelBlock * n));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / blocks;
      const int64_t e0 = (t % blocks) * kChannelBlock;
      const int64_t e1 = std::min(e, e0 + kChannelBlock);
      std::fill(state.begin(), state.end(), T(0));
      for (int64_t s = 0; s < seq; ++s) {
        const int64_t step = b * seq + s;
        const T *bRow = bm + step * n, *cRow = c + step * n;
        const T *uRow = u + step * e, *dRow = delta + step * e;
        T *yRow = y + step * e;
        for (int64_t ch = e0; ch < e1; ++ch) {
          const T d = dRow[ch], du = d * uRow[ch];
          const T *aRow = a + ch * n;
          T *h = state.data() + (ch - e0) * n;
          T acc = 0;
          for (int64_t i = 0; i < n; ++i) {
            h[i] = std::exp(d * aRow[i]) * h[i] + du * bRow[i];
            acc += h[i] * cRow[i];
          }
          yRow[ch] = acc;
        }
      }
    }
  }
}

Status selectiveScanKernel(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs,
                           const AttrMap &) {
  const char *op = "selective_scan";
  if (Status s = checkArity(op, inputs, 5, 5, outputs); !s)
    return s;
  const TensorRef &u = inputs[0], &delta = inputs[1], &a = inputs[2],
                  &bm = inputs[3], &c = inputs[4], &y = outputs[0];
  if (u.rank() != 3)
    return opError(op,
                   "u must have rank 3 [B,S,E], got " + shapeToString(u.shape));
  if (a.rank() != 2)
    return opError(op,
                   "A must have rank 2 [E,N], got " + shapeToString(a.shape));
  const int64_t batch = u.shape[0], seq = u.shape[1], e = u.shape[2];
  const int64_t n = a.shape[1];
  const char *names[] = {"delta", "A", "B", "C"};
  const Shape shapes[] = {
      {batch, seq, e}, {e, n}, {batch, seq, n}, {batch, seq, n}};
  for (int i = 0; i < 4; ++i) {
    if (Status s = checkDType(op, names[i], inputs[i + 1].dtype, u.dtype); !s)
      return s;
    if (Status s = checkShape(op, names[i], inputs[i + 1].shape, shapes[i]); !s)
      return s;
  }
  if (Status s = checkDType(op, "output", y.dtype, u.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", y.shape, u.shape); !s)
    return s;
  return dispatchFloat(op, u.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if (y.numElements() == 0)
      return Status();
    selectiveScan(u.as<T>(), delta.as<T>(), a.as<T>(), bm.as<T>(), c.as<T>(),
                  y.as<T>(), batch, seq, e, n);
    return Status();
  });
}

} // namespace

void addSelectiveScanKernels(KernelTable &table) {
  table.push_back({"selective_scan", selectiveScanKernel});
}

} // namespace cpu
} // namespace longctx
