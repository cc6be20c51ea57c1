//===- Attention.cu - Fused attention and its gradient on CUDA ------------===//
//
// The FlashAttention-2 algorithm (Dao, 2023) with the CPU twin's shapes and
// checks: no S x T matrix, an online softmax in the forward (running max m
// and sum l rescale the output accumulated so far; lse = m + log l kept for
// the backward), and a backward that recomputes P = exp(scale q.k - lse).
// Work is split one warp per row: a query row for the forward and dq, a key
// row (over every query head sharing its kv head) for dk and dv, so each
// output row is written by one warp in a fixed order (deterministic, no
// atomics). The lanes split the head dims (at most kMaxHeadDim; P values
// per lane, the fewest that hold them, fixed at compile time); rows are
// read through the cache rather than staged in shared-memory tiles, which is
// the next step for speed.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <algorithm>
#include <type_traits>

namespace longctx {
namespace cuda {
namespace {

using cpu::AttentionDims;

constexpr int kWarp = 32;
constexpr int64_t kMaxHeadDim = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;

__device__ inline double warpSum(double v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// Keys [0, end) query i may attend.
__device__ inline int64_t keyEnd(const AttentionDims &d, int64_t i) {
  if (!d.causal)
    return d.t;
  const int64_t end = i + d.offset + 1;
  return end < 0 ? 0 : end > d.t ? d.t : end;
}

/// This lane's part of a row of `n` values.
template <int P, typename T> __device__ inline void loadRow(const T *row, int64_t n, double *out) {
  const int lane = threadIdx.x % kWarp;
  for (int r = 0; r < P; ++r) {
    const int64_t x = lane + int64_t(r) * kWarp;
    out[r] = x < n ? double(row[x]) : 0.0;
  }
}

template <int P, typename T>
__device__ inline double dotRow(const double *mine, const T *row, int64_t n) {
  const int lane = threadIdx.x % kWarp;
  double sum = 0;
  for (int r = 0; r < P; ++r) {
    const int64_t x = lane + int64_t(r) * kWarp;
    if (x < n)
      sum += mine[r] * double(row[x]);
  }
  return warpSum(sum);
}

template <int P, typename T>
__device__ inline void storeRow(T *row, int64_t n, const double *v, double k) {
  const int lane = threadIdx.x % kWarp;
  for (int r = 0; r < P; ++r) {
    const int64_t x = lane + int64_t(r) * kWarp;
    if (x < n)
      row[x] = T(v[r] * k);
  }
}

/// One warp per query row (b, h, i).
template <typename T, int P>
__global__ void forwardKernel(const T *q, const T *k, const T *v, T *o, T *lse, AttentionDims d) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= d.b * d.h * d.s)
    return;
  const int64_t i = row % d.s, bh = row / d.s, b = bh / d.h, kvh = (bh % d.h) / d.group;
  const T *kBase = k + (b * d.hk + kvh) * d.t * d.d, *vBase = v + (b * d.hk + kvh) * d.t * d.dv;
  double qr[P], acc[P];
  loadRow<P>(q + row * d.d, d.d, qr);
  for (int r = 0; r < P; ++r)
    acc[r] = 0;
  double m = -INFINITY, l = 0;
  const int lane = threadIdx.x % kWarp;
  const int64_t end = keyEnd(d, i);
  for (int64_t j = 0; j < end; ++j) {
    const double score = d.scale * dotRow<P>(qr, kBase + j * d.d, d.d);
    const double mNew = fmax(m, score), corr = exp(m - mNew), p = exp(score - mNew);
    l = l * corr + p;
    const T *vRow = vBase + j * d.dv;
    for (int r = 0; r < P; ++r) {
      const int64_t x = lane + int64_t(r) * kWarp;
      acc[r] = acc[r] * corr + (x < d.dv ? p * double(vRow[x]) : 0.0);
    }
    m = mNew;
  }
  storeRow<P>(o + row * d.dv, d.dv, acc, l > 0 ? 1.0 / l : 0.0); // no key: o = 0
  if (lane == 0)
    lse[row] = T(end > 0 ? m + log(l) : -INFINITY);
}

/// D_i = do_i . o_i per query row.
template <typename T, int P>
__global__ void rowDotKernel(const T *dout, const T *o, double *dRow, AttentionDims d) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= d.b * d.h * d.s)
    return;
  double mine[P];
  loadRow<P>(dout + row * d.dv, d.dv, mine);
  const double sum = dotRow<P>(mine, o + row * d.dv, d.dv);
  if (threadIdx.x % kWarp == 0)
    dRow[row] = sum;
}

/// dq_i = scale sum_j P_ij (do_i . v_j - D_i) k_j, one warp per query row.
template <typename T, int P>
__global__ void dqKernel(const T *dout, const T *q, const T *k, const T *v, const T *lse,
                         const double *dRow, T *dq, AttentionDims d) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= d.b * d.h * d.s)
    return;
  const int64_t i = row % d.s, bh = row / d.s, b = bh / d.h, kvh = (bh % d.h) / d.group;
  const T *kBase = k + (b * d.hk + kvh) * d.t * d.d, *vBase = v + (b * d.hk + kvh) * d.t * d.dv;
  double qr[P], dor[P], acc[P];
  loadRow<P>(q + row * d.d, d.d, qr);
  loadRow<P>(dout + row * d.dv, d.dv, dor);
  for (int r = 0; r < P; ++r)
    acc[r] = 0;
  const double rowLse = double(lse[row]), di = dRow[row];
  const int lane = threadIdx.x % kWarp;
  const int64_t end = keyEnd(d, i);
  for (int64_t j = 0; j < end; ++j) {
    const T *kRow = kBase + j * d.d;
    const double p = exp(d.scale * dotRow<P>(qr, kRow, d.d) - rowLse);
    const double ds = p * (dotRow<P>(dor, vBase + j * d.dv, d.dv) - di);
    for (int r = 0; r < P; ++r) {
      const int64_t x = lane + int64_t(r) * kWarp;
      if (x < d.d)
        acc[r] += ds * double(kRow[x]);
    }
  }
  storeRow<P>(dq + row * d.d, d.d, acc, d.scale);
}

/// dv_j = sum_i P_ij do_i and dk_j = scale sum_i dS_ij q_i over every query
/// row of every query head sharing key j's kv head; one warp per key row.
template <typename T, int P>
__global__ void dkdvKernel(const T *dout, const T *q, const T *k, const T *v, const T *lse,
                           const double *dRow, T *dk, T *dv, AttentionDims d) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= d.b * d.hk * d.t)
    return;
  const int64_t j = row % d.t, bkv = row / d.t, b = bkv / d.hk, kvh = bkv % d.hk;
  double kr[P], vr[P], dkAcc[P], dvAcc[P];
  loadRow<P>(k + row * d.d, d.d, kr);
  loadRow<P>(v + row * d.dv, d.dv, vr);
  for (int r = 0; r < P; ++r)
    dkAcc[r] = dvAcc[r] = 0;
  const int lane = threadIdx.x % kWarp;
  // Causal: query i sees j iff j <= i + offset.
  int64_t firstQuery = d.causal ? j - d.offset : 0;
  if (firstQuery < 0)
    firstQuery = 0;
  for (int64_t h = kvh * d.group; h < (kvh + 1) * d.group; ++h)
    for (int64_t i = firstQuery; i < d.s; ++i) {
      const int64_t qRowIdx = (b * d.h + h) * d.s + i;
      const T *qRow = q + qRowIdx * d.d, *doRow = dout + qRowIdx * d.dv;
      const double p = exp(d.scale * dotRow<P>(kr, qRow, d.d) - double(lse[qRowIdx]));
      const double ds = p * (dotRow<P>(vr, doRow, d.dv) - dRow[qRowIdx]);
      for (int r = 0; r < P; ++r) {
        const int64_t x = lane + int64_t(r) * kWarp;
        if (x < d.dv)
          dvAcc[r] += p * double(doRow[x]);
        if (x < d.d)
          dkAcc[r] += ds * double(qRow[x]);
      }
    }
  storeRow<P>(dv + row * d.dv, d.dv, dvAcc, 1.0);
  storeRow<P>(dk + row * d.d, d.d, dkAcc, d.scale);
}

/// Runs fn(std::integral_constant<int, P>{}) for the fewest head-dim values
/// per lane (P, a power of two) that hold D and Dv: loops over a lane's
/// values are unrolled at compile time and do no work past the head dims.
template <typename Fn> void dispatchPerLane(const AttentionDims &d, Fn &&fn) {
  const int64_t dims = std::max(d.d, d.dv);
  if (dims <= kWarp)
    fn(std::integral_constant<int, 1>{});
  else if (dims <= 2 * kWarp)
    fn(std::integral_constant<int, 2>{});
  else if (dims <= 4 * kWarp)
    fn(std::integral_constant<int, 4>{});
  else
    fn(std::integral_constant<int, int(kMaxHeadDim / kWarp)>{});
}

unsigned warpBlocks(int64_t rows) {
  return unsigned(std::max<int64_t>(1, (rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
}

Status checkHeadDims(const char *op, const AttentionDims &d) {
  if (d.d > kMaxHeadDim || d.dv > kMaxHeadDim)
    return opError(op, "head dims " + std::to_string(d.d) + "/" + std::to_string(d.dv) +
                           " are over the CUDA kernels' " + std::to_string(kMaxHeadDim));
  if (d.b * d.h * d.s > int64_t(INT32_MAX) * kWarpsPerBlock ||
      d.b * d.hk * d.t > int64_t(INT32_MAX) * kWarpsPerBlock)
    return opError(op, "too many rows for one launch");
  return Status();
}

Status attention(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                 const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "attention";
  if (Status s = checkArity(op, inputs, 3, 3, outputs, 2); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2];
  const TensorRef &o = outputs[0], &lse = outputs[1];
  AttentionDims d;
  if (Status s = cpu::resolveAttention(op, q, k, v, attrs, d); !s)
    return s;
  if (Status s = cpu::checkOperands(op, q.dtype,
                               {{"o", &o, {d.b, d.h, d.s, d.dv}}, {"lse", &lse, {d.b, d.h, d.s}}});
      !s)
    return s;
  if (Status s = checkHeadDims(op, d); !s)
    return s;
  const int64_t rows = d.b * d.h * d.s;
  return dispatchFloat(op, q.dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatchPerLane(d, [&](auto perLane) {
      constexpr int P = decltype(perLane)::value;
      if (rows > 0)
        forwardKernel<T, P><<<warpBlocks(rows), kThreads, 0, stream>>>(
            q.as<T>(), k.as<T>(), v.as<T>(), o.as<T>(), lse.as<T>(), d);
    });
  });
}

Status attentionGrad(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                     const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "attention_grad";
  if (Status s = checkArity(op, inputs, 6, 6, outputs, 3); !s)
    return s;
  const TensorRef &dout = inputs[0], &q = inputs[1], &k = inputs[2], &v = inputs[3],
                  &o = inputs[4], &lse = inputs[5];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
  AttentionDims d;
  if (Status s = cpu::resolveAttention(op, q, k, v, attrs, d); !s)
    return s;
  if (Status s = cpu::checkOperands(op, q.dtype,
                               {{"do", &dout, {d.b, d.h, d.s, d.dv}},
                                {"o", &o, {d.b, d.h, d.s, d.dv}},
                                {"lse", &lse, {d.b, d.h, d.s}},
                                {"dq", &dq, q.shape},
                                {"dk", &dk, k.shape},
                                {"dv", &dv, v.shape}});
      !s)
    return s;
  if (Status s = checkHeadDims(op, d); !s)
    return s;
  const int64_t queryRows = d.b * d.h * d.s, keyRows = d.b * d.hk * d.t;
  double *dRow = nullptr; // do . o per query row
  if (Status s = carveWorkspace(op, workspace, attentionGradWorkspace(d), &dRow); !s)
    return s;
  return dispatchFloat(op, q.dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatchPerLane(d, [&](auto perLane) {
      constexpr int P = decltype(perLane)::value;
      if (queryRows > 0) {
        rowDotKernel<T, P><<<warpBlocks(queryRows), kThreads, 0, stream>>>(dout.as<T>(),
                                                                            o.as<T>(), dRow, d);
        dqKernel<T, P><<<warpBlocks(queryRows), kThreads, 0, stream>>>(
            dout.as<T>(), q.as<T>(), k.as<T>(), v.as<T>(), lse.as<T>(), dRow, dq.as<T>(), d);
      }
      if (keyRows > 0)
        dkdvKernel<T, P><<<warpBlocks(keyRows), kThreads, 0, stream>>>(
            dout.as<T>(), q.as<T>(), k.as<T>(), v.as<T>(), lse.as<T>(), dRow, dk.as<T>(),
            dv.as<T>(), d);
    });
  });
}

} // namespace

void addAttentionKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"attention", attention}, {"attention_grad", attentionGrad}});
}

} // namespace cuda
} // namespace longctx
