//===- Attention.cpp - Fused attention and its gradient (FlashAttention-2) ===//
//
// attention and attention_grad after FlashAttention-2 (Dao, 2023), on the
// CPU. The S x T score matrix is never formed: one task owns a block of
// kBlockQ query rows (forward, dq) or kBlockK key rows (dk, dv) and walks the
// blocks of the other side, so a thread holds at most two kBlockQ x kBlockK
// score tiles plus a few per-row values. Block products are single-threaded
// BLAS calls, one per OpenMP task.
//
// Forward, per query block: S = scale * Q K_j^T, then the online softmax
// (running row max m and sum l) rescales the output accumulated so far, which
// lives in the output tensor itself; lse = m + log(l).
// Backward: P = exp(S - lse) is recomputed from the saved lse; pass 1 (one
// task per batch, kv head, key block) accumulates dv_j += P^T dO and
// dk_j += scale * dS^T Q over every query row of every query head sharing the
// kv head, with dS = P * (dO V_j^T - rowsum(dO * O)); pass 2 (one task per
// batch, query head, query block) accumulates dq_i += scale * dS K_j. Every
// output element is written by one task in a fixed order, so results do not
// depend on the thread count.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/Blas.h"
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"

#include <climits>

namespace longctx {
namespace cpu {
namespace {

/// Query rows and key rows of one tile: 64 x 64 scores (16 KiB in f32) stay
/// in L1/L2 together with the Q, K and V rows they come from.
constexpr int64_t kBlockQ = 64;
constexpr int64_t kBlockK = 64;

//===----------------------------------------------------------------------===//
// Block products
//===----------------------------------------------------------------------===//

/// e^x of a score tile entry: the vectorisable fastExp in f32 (within 2 ulp),
/// libm's exp in f64.
template <typename T> inline T tileExp(T x) {
  if constexpr (std::is_same_v<T, float>)
    return fastExp(x);
  else
    return std::exp(x);
}

//===----------------------------------------------------------------------===//
// Shapes and attributes
//===----------------------------------------------------------------------===//

/// The shapes (cpu/OperandChecks.h) and the tiles over them.
struct AttnDims : AttentionDims {
  int64_t queryBlocks() const { return (s + kBlockQ - 1) / kBlockQ; }
  int64_t keyBlocks() const { return (t + kBlockK - 1) / kBlockK; }
  /// Keys [0, end) that some row of queries [i0, i0+nr) may attend.
  int64_t keyEnd(int64_t i0, int64_t nr) const {
    return causal ? std::clamp<int64_t>(i0 + nr + offset, 0, t) : t;
  }
  /// Whether tile (queries from i0, keys [j0, j0+nc)) has masked entries.
  bool masked(int64_t i0, int64_t j0, int64_t nc) const {
    return causal && j0 + nc - 1 > i0 + offset;
  }
  /// Number of leading keys of [j0, j0+nc) that query i may attend.
  int64_t allowed(int64_t i, int64_t j0, int64_t nc) const {
    return causal ? std::clamp<int64_t>(i + offset - j0 + 1, 0, nc) : nc;
  }
};


/// Whether the kernel is worth a parallel region: ~S*T*(D+Dv) multiply-adds.
bool worthParallel(const AttnDims &d, int64_t tasks) {
  return tasks > 1 && maxThreads() > 1 &&
         double(d.b) * double(d.h) * double(d.s) * double(d.t) *
                 double(d.d + d.dv + 1) >=
             double(kParallelGrain) * 8;
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

/// One query block [i0, i0+nr) of head (b, h): o rows and lse entries.
/// Scratch: s [kBlockQ*kBlockK], m and l [kBlockQ].
template <typename T>
void forwardBlock(const AttnDims &d, const T *q, const T *k, const T *v, T *o,
                  T *lse, int64_t bh, int64_t i0, T *s, T *m, T *l) {
  const int64_t b = bh / d.h, kvh = (bh % d.h) / d.group;
  const int64_t nr = std::min(kBlockQ, d.s - i0);
  const T *qi = q + (bh * d.s + i0) * d.d;
  const T *kh = k + (b * d.hk + kvh) * d.t * d.d;
  const T *vh = v + (b * d.hk + kvh) * d.t * d.dv;
  T *oi = o + (bh * d.s + i0) * d.dv;
  T *lsei = lse + bh * d.s + i0;
  const T negInf = -std::numeric_limits<T>::infinity();
  std::fill(oi, oi + nr * d.dv, T(0));
  std::fill(m, m + nr, negInf);
  std::fill(l, l + nr, T(0));

  const int64_t kend = d.keyEnd(i0, nr);
  for (int64_t j0 = 0; j0 < kend; j0 += kBlockK) {
    const int64_t nc = std::min(kBlockK, kend - j0);
    gemm(false, true, nr, nc, d.d, T(d.scale), qi, d.d, kh + j0 * d.d, d.d,
         T(0), s, nc);
    const bool masked = d.masked(i0, j0, nc);
    for (int64_t r = 0; r < nr; ++r) {
      T *sr = s + r * nc;
      const int64_t cnt = masked ? d.allowed(i0 + r, j0, nc) : nc;
      if (cnt == 0) { // no allowed key in this tile: p = 0
        std::fill(sr, sr + nc, T(0));
        continue;
      }
      T mx = sr[0];
      for (int64_t c = 1; c < cnt; ++c)
        mx = std::max(mx, sr[c]);
      const T mNew = std::max(m[r], mx);
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < cnt; ++c) {
        const T p = tileExp(sr[c] - mNew);
        sr[c] = p;
        sum += p;
      }
      std::fill(sr + cnt, sr + nc, T(0));
      if (mNew != m[r]) {
        const T alpha = std::exp(m[r] - mNew); // 0 for the first tile
        l[r] *= alpha;
        T *orow = oi + r * d.dv;
#pragma omp simd
        for (int64_t c = 0; c < d.dv; ++c)
          orow[c] *= alpha;
        m[r] = mNew;
      }
      l[r] += sum;
    }
    gemm(false, false, nr, d.dv, nc, T(1), s, nc, vh + j0 * d.dv, d.dv, T(1),
         oi, d.dv);
  }
  for (int64_t r = 0; r < nr; ++r) {
    T *orow = oi + r * d.dv;
    if (l[r] == T(0)) { // a row without allowed keys (causal, S > T)
      std::fill(orow, orow + d.dv, T(0));
      lsei[r] = negInf;
      continue;
    }
    const T inv = T(1) / l[r];
#pragma omp simd
    for (int64_t c = 0; c < d.dv; ++c)
      orow[c] *= inv;
    lsei[r] = m[r] + std::log(l[r]);
  }
}

Status attentionKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttrMap &attrs) {
  const char *op = "attention";
  if (Status s = loadBlas(op); !s)
    return s;
  AttnDims d;
  if (Status s = resolveAttentionOperands(op, false, inputs, outputs, attrs, d); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2];
  const TensorRef &o = outputs[0], &lse = outputs[1];
  return dispatchFloat(op, q.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *pq = q.as<T>(), *pk = k.as<T>(), *pv = v.as<T>();
    T *po = o.as<T>(), *plse = lse.as<T>();
    const int64_t qBlocks = d.queryBlocks();
    const int64_t tasks = d.b * d.h * qBlocks;
    SingleThreadedBlas single;
#pragma omp parallel if (worthParallel(d, tasks))
    {
      std::vector<T> s(size_t(kBlockQ * kBlockK)), m(kBlockQ), l(kBlockQ);
      // Causal blocks near the end of the sequence see the most keys: hand
      // them out first.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t bh = task / qBlocks;
        const int64_t ib = qBlocks - 1 - task % qBlocks;
        forwardBlock(d, pq, pk, pv, po, plse, bh, ib * kBlockQ, s.data(),
                     m.data(), l.data());
      }
    }
    return Status();
  });
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

/// p[nr, nc] = exp(scale * Q_i K_j^T - lse_i), 0 where masked.
template <typename T>
void probabilities(const AttnDims &d, const T *qi, const T *kj, const T *lsei,
                   int64_t i0, int64_t nr, int64_t j0, int64_t nc, T *p) {
  gemm(false, true, nr, nc, d.d, T(d.scale), qi, d.d, kj, d.d, T(0), p, nc);
  const bool masked = d.masked(i0, j0, nc);
  for (int64_t r = 0; r < nr; ++r) {
    T *pr = p + r * nc;
    const int64_t cnt = masked ? d.allowed(i0 + r, j0, nc) : nc;
    const T rowLse = lsei[r];
#pragma omp simd
    for (int64_t c = 0; c < cnt; ++c)
      pr[c] = tileExp(pr[c] - rowLse);
    std::fill(pr + cnt, pr + nc, T(0));
  }
}

/// delta[r] = rowsum(dO_i * O_i) for the nr rows.
template <typename T>
void rowDots(const T *doi, const T *oi, int64_t nr, int64_t dv, T *delta) {
  for (int64_t r = 0; r < nr; ++r) {
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < dv; ++c)
      acc += doi[r * dv + c] * oi[r * dv + c];
    delta[r] = acc;
  }
}

/// dp[nr, nc] = p * (dO_i V_j^T - delta): dS of the tile, in place of dp.
template <typename T>
void scoreGrad(const AttnDims &d, const T *doi, const T *vj, const T *p,
               const T *delta, int64_t nr, int64_t nc, T *dp) {
  gemm(false, true, nr, nc, d.dv, T(1), doi, d.dv, vj, d.dv, T(0), dp, nc);
  for (int64_t r = 0; r < nr; ++r) {
    const T *pr = p + r * nc;
    T *dpr = dp + r * nc;
    const T dr = delta[r];
#pragma omp simd
    for (int64_t c = 0; c < nc; ++c)
      dpr[c] = pr[c] * (dpr[c] - dr);
  }
}

/// Pass 1: dk and dv of key block [j0, j0+nc) of kv head (b, kvh).
template <typename T>
void keyBlockGrad(const AttnDims &d, const T *dout, const T *q, const T *k,
                  const T *v, const T *o, const T *lse, T *dk, T *dv,
                  int64_t bkv, int64_t j0, T *p, T *ds, T *delta) {
  const int64_t b = bkv / d.hk, kvh = bkv % d.hk;
  const int64_t nc = std::min(kBlockK, d.t - j0);
  const T *kj = k + (bkv * d.t + j0) * d.d;
  const T *vj = v + (bkv * d.t + j0) * d.dv;
  T *dkj = dk + (bkv * d.t + j0) * d.d;
  T *dvj = dv + (bkv * d.t + j0) * d.dv;
  std::fill(dkj, dkj + nc * d.d, T(0));
  std::fill(dvj, dvj + nc * d.dv, T(0));
  // Queries before `first` see none of these keys.
  const int64_t first = d.causal ? std::max<int64_t>(0, j0 - d.offset) : 0;
  for (int64_t h = kvh * d.group; h < (kvh + 1) * d.group; ++h) {
    const int64_t bh = b * d.h + h;
    for (int64_t i0 = first / kBlockQ * kBlockQ; i0 < d.s; i0 += kBlockQ) {
      const int64_t nr = std::min(kBlockQ, d.s - i0);
      const T *qi = q + (bh * d.s + i0) * d.d;
      const T *doi = dout + (bh * d.s + i0) * d.dv;
      const T *oi = o + (bh * d.s + i0) * d.dv;
      probabilities(d, qi, kj, lse + bh * d.s + i0, i0, nr, j0, nc, p);
      gemm(true, false, nc, d.dv, nr, T(1), p, nc, doi, d.dv, T(1), dvj, d.dv);
      rowDots(doi, oi, nr, d.dv, delta);
      scoreGrad(d, doi, vj, p, delta, nr, nc, ds);
      gemm(true, false, nc, d.d, nr, T(d.scale), ds, nc, qi, d.d, T(1), dkj,
           d.d);
    }
  }
}

/// Pass 2: dq of query block [i0, i0+nr) of head (b, h).
template <typename T>
void queryBlockGrad(const AttnDims &d, const T *dout, const T *q, const T *k,
                    const T *v, const T *o, const T *lse, T *dq, int64_t bh,
                    int64_t i0, T *p, T *ds, T *delta) {
  const int64_t b = bh / d.h, kvh = (bh % d.h) / d.group;
  const int64_t bkv = b * d.hk + kvh;
  const int64_t nr = std::min(kBlockQ, d.s - i0);
  const T *qi = q + (bh * d.s + i0) * d.d;
  const T *doi = dout + (bh * d.s + i0) * d.dv;
  T *dqi = dq + (bh * d.s + i0) * d.d;
  std::fill(dqi, dqi + nr * d.d, T(0));
  rowDots(doi, o + (bh * d.s + i0) * d.dv, nr, d.dv, delta);
  const int64_t kend = d.keyEnd(i0, nr);
  for (int64_t j0 = 0; j0 < kend; j0 += kBlockK) {
    const int64_t nc = std::min(kBlockK, kend - j0);
    const T *kj = k + (bkv * d.t + j0) * d.d;
    const T *vj = v + (bkv * d.t + j0) * d.dv;
    probabilities(d, qi, kj, lse + bh * d.s + i0, i0, nr, j0, nc, p);
    scoreGrad(d, doi, vj, p, delta, nr, nc, ds);
    gemm(false, false, nr, d.d, nc, T(d.scale), ds, nc, kj, d.d, T(1), dqi,
         d.d);
  }
}

Status attentionGradKernel(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs,
                           const AttrMap &attrs) {
  const char *op = "attention_grad";
  if (Status s = loadBlas(op); !s)
    return s;
  AttnDims d;
  if (Status s = resolveAttentionOperands(op, true, inputs, outputs, attrs, d); !s)
    return s;
  const TensorRef &dout = inputs[0], &q = inputs[1], &k = inputs[2],
                  &v = inputs[3], &o = inputs[4], &lse = inputs[5];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
  return dispatchFloat(op, q.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *pdo = dout.as<T>(), *pq = q.as<T>(), *pk = k.as<T>(),
            *pv = v.as<T>(), *po = o.as<T>(), *plse = lse.as<T>();
    T *pdq = dq.as<T>(), *pdk = dk.as<T>(), *pdv = dv.as<T>();
    const int64_t qBlocks = d.queryBlocks(), kBlocks = d.keyBlocks();
    const int64_t keyTasks = d.b * d.hk * kBlocks;
    const int64_t queryTasks = d.b * d.h * qBlocks;
    SingleThreadedBlas single;
#pragma omp parallel if (worthParallel(d, std::max(keyTasks, queryTasks)))
    {
      std::vector<T> p(size_t(kBlockQ * kBlockK)),
          ds(size_t(kBlockQ * kBlockK)), delta(kBlockQ);
      // Causal: early key blocks are seen by the most queries, late query
      // blocks see the most keys; both are handed out first.
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t task = 0; task < keyTasks; ++task)
        keyBlockGrad(d, pdo, pq, pk, pv, po, plse, pdk, pdv, task / kBlocks,
                     task % kBlocks * kBlockK, p.data(), ds.data(),
                     delta.data());
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < queryTasks; ++task)
        queryBlockGrad(d, pdo, pq, pk, pv, po, plse, pdq, task / qBlocks,
                       (qBlocks - 1 - task % qBlocks) * kBlockQ, p.data(),
                       ds.data(), delta.data());
    }
    return Status();
  });
}

} // namespace

void addAttentionKernels(KernelTable &table) {
  table.insert(table.end(), {{"attention", attentionKernel},
                             {"attention_grad", attentionGradKernel}});
}

Status resolveAttention(const char *op, const TensorRef &q, const TensorRef &k,
                        const TensorRef &v, const AttrMap &attrs, AttentionDims &dims) {
  const std::pair<const char *, const TensorRef *> operands[] = {
      {"q [B,H,S,D]", &q}, {"k [B,Hk,T,D]", &k}, {"v [B,Hk,T,Dv]", &v}};
  for (auto &[what, t] : operands)
    if (t->rank() != 4)
      return opError(op, std::string(what) + " must have rank 4, got shape " +
                             shapeToString(t->shape));
  dims.b = q.shape[0];
  dims.h = q.shape[1];
  dims.s = q.shape[2];
  dims.d = q.shape[3];
  dims.hk = k.shape[1];
  dims.t = k.shape[2];
  dims.dv = v.shape[3];
  if (Status s = checkShape(op, "k", k.shape, {dims.b, dims.hk, dims.t, dims.d});
      !s)
    return s;
  if (Status s =
          checkShape(op, "v", v.shape, {dims.b, dims.hk, dims.t, dims.dv});
      !s)
    return s;
  if (dims.hk == 0 ? dims.h != 0 : dims.h % dims.hk != 0)
    return opError(op, "query heads H=" + std::to_string(dims.h) +
                           " are not a multiple of kv heads Hk=" +
                           std::to_string(dims.hk));
  dims.group = dims.hk == 0 ? 1 : dims.h / dims.hk;
  dims.offset = dims.t - dims.s;
  if (Status s = checkDType(op, "k", k.dtype, q.dtype); !s)
    return s;
  if (Status s = checkDType(op, "v", v.dtype, q.dtype); !s)
    return s;
  if (dims.d > INT_MAX || dims.dv > INT_MAX)
    return opError(op, "head dimensions exceed the BLAS int range");
  dims.scale = attrs.getFloat(
      "scale", dims.d > 0 ? 1.0 / std::sqrt(double(dims.d)) : 1.0);
  if (!std::isfinite(dims.scale))
    return opError(op, "scale must be finite");
  const int64_t causal = attrs.getInt("causal", 1);
  if (causal != 0 && causal != 1)
    return opError(op, "causal must be 0 or 1, got " + std::to_string(causal));
  dims.causal = causal == 1;
  return Status();
}

Status resolveAttentionOperands(const char *op, bool grad, const std::vector<TensorRef> &inputs,
                                const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                                AttentionDims &d) {
  if (Status s = grad ? checkArity(op, inputs, 6, 6, outputs, 3)
                      : checkArity(op, inputs, 3, 3, outputs, 2);
      !s)
    return s;
  const size_t first = grad ? 1 : 0; // q's index
  const TensorRef &q = inputs[first], &k = inputs[first + 1], &v = inputs[first + 2];
  if (Status s = resolveAttention(op, q, k, v, attrs, d); !s)
    return s;
  if (!grad)
    return checkOperands(op, q.dtype,
                         {{"o", &outputs[0], {d.b, d.h, d.s, d.dv}},
                          {"lse", &outputs[1], {d.b, d.h, d.s}}});
  return checkOperands(op, q.dtype,
                       {{"do", &inputs[0], {d.b, d.h, d.s, d.dv}},
                        {"o", &inputs[4], {d.b, d.h, d.s, d.dv}},
                        {"lse", &inputs[5], {d.b, d.h, d.s}},
                        {"dq", &outputs[0], q.shape},
                        {"dk", &outputs[1], k.shape},
                        {"dv", &outputs[2], v.shape}});
}

Status checkOperands(
    const char *op, DType dtype,
    std::initializer_list<std::tuple<const char *, const TensorRef *, Shape>>
        list) {
  for (auto &[what, t, shape] : list) {
    if (Status s = checkDType(op, what, t->dtype, dtype); !s)
      return s;
    if (Status s = checkShape(op, what, t->shape, shape); !s)
      return s;
  }
  return Status();
}

} // namespace cpu
} // namespace longctx
