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
// per lane, the fewest that hold them, fixed at compile time). A block's 8
// warps own 8 consecutive rows of one head and stage the rows they all
// read (keys and values; for dk/dv the queries, do, lse and D) in
// shared-memory tiles, so each is read from memory once per 8 rows. The
// next step is FlashAttention's: a thread (and tensor cores) per row tile
// instead of a warp per row.
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

/// Rows [first, first + count) of a [rows, n] matrix copied by the whole
/// block into `tile` (count x n; zeros past `rows`): the block's warps then
/// read them from shared memory instead of each from the cache.
template <typename T>
__device__ inline void stageRows(const T *matrix, int64_t first, int64_t count, int64_t rows,
                                 int64_t n, T *tile) {
  for (int64_t e = threadIdx.x; e < count * n; e += blockDim.x) {
    const int64_t r = first + e / n;
    tile[e] = r < rows ? matrix[r * n + e % n] : T(0);
  }
}

/// The rows a block's warps own: kWarpsPerBlock consecutive rows (query
/// rows i of head bh, or key rows j of kv head bh), one per warp.
struct BlockRows {
  int64_t head, first, mine;
  bool active; // false for a warp past the last row (it still stages tiles)
};
__device__ inline BlockRows blockRows(int64_t rows) {
  const int64_t tiles = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  BlockRows r;
  r.head = blockIdx.x / tiles;
  r.first = (blockIdx.x % tiles) * kWarpsPerBlock;
  r.mine = r.first + threadIdx.x / kWarp;
  r.active = r.mine < rows;
  return r;
}

/// Runs visit(kRow, vRow) for this warp's keys [0, end), in order, with the
/// keys and values every warp of the block reads staged in shared-memory
/// tiles of `tileKeys` rows. Every warp of the block calls it (it
/// synchronises the block), inactive ones with end = 0.
template <typename T, typename Visit>
__device__ inline void forEachKey(const T *kBase, const T *vBase, const AttentionDims &d,
                                  const BlockRows &rows, int64_t end, int64_t tileKeys,
                                  T *kTile, T *vTile, Visit &&visit) {
  // The block's last row sees the most keys.
  const int64_t blockEnd = keyEnd(d, min(rows.first + kWarpsPerBlock, d.s) - 1);
  for (int64_t j0 = 0; j0 < blockEnd; j0 += tileKeys) {
    __syncthreads(); // the last tile is read by every warp
    const int64_t count = min(tileKeys, blockEnd - j0); // the rows any warp reads
    stageRows(kBase, j0, count, d.t, d.d, kTile);
    stageRows(vBase, j0, count, d.t, d.dv, vTile);
    __syncthreads();
    const int64_t stop = min(end - j0, tileKeys);
    for (int64_t jj = 0; jj < stop; ++jj)
      visit(kTile + jj * d.d, vTile + jj * d.dv);
  }
}

/// One warp per query row (b, h, i); the block's 8 rows share each tile of
/// `tileKeys` keys and values in shared memory.
template <typename T, int P>
__global__ void forwardKernel(const T *q, const T *k, const T *v, T *o, T *lse, AttentionDims d,
                              int64_t tileKeys) {
  extern __shared__ double shared[];
  T *kTile = reinterpret_cast<T *>(shared), *vTile = kTile + tileKeys * d.d;
  const BlockRows rows = blockRows(d.s);
  const int64_t i = rows.mine, bh = rows.head, row = bh * d.s + i;
  const int64_t b = bh / d.h, kvh = (bh % d.h) / d.group;
  const T *kBase = k + (b * d.hk + kvh) * d.t * d.d, *vBase = v + (b * d.hk + kvh) * d.t * d.dv;
  double qr[P], acc[P];
  loadRow<P>(q + (rows.active ? row : bh * d.s) * d.d, d.d, qr);
  for (int r = 0; r < P; ++r)
    acc[r] = 0;
  double m = -INFINITY, l = 0;
  const int lane = threadIdx.x % kWarp;
  const int64_t end = rows.active ? keyEnd(d, i) : 0;
  forEachKey(kBase, vBase, d, rows, end, tileKeys, kTile, vTile,
             [&](const T *kRow, const T *vRow) {
               const double score = d.scale * dotRow<P>(qr, kRow, d.d);
               const double mNew = fmax(m, score), corr = exp(m - mNew), p = exp(score - mNew);
               l = l * corr + p;
               for (int r = 0; r < P; ++r) {
                 const int64_t x = lane + int64_t(r) * kWarp;
                 acc[r] = acc[r] * corr + (x < d.dv ? p * double(vRow[x]) : 0.0);
               }
               m = mNew;
             });
  if (!rows.active)
    return;
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

/// dq_i = scale sum_j P_ij (do_i . v_j - D_i) k_j, one warp per query row;
/// key and value tiles shared as in the forward.
template <typename T, int P>
__global__ void dqKernel(const T *dout, const T *q, const T *k, const T *v, const T *lse,
                         const double *dRow, T *dq, AttentionDims d, int64_t tileKeys) {
  extern __shared__ double shared[];
  T *kTile = reinterpret_cast<T *>(shared), *vTile = kTile + tileKeys * d.d;
  const BlockRows rows = blockRows(d.s);
  const int64_t i = rows.mine, bh = rows.head, row = bh * d.s + (rows.active ? i : 0);
  const int64_t b = bh / d.h, kvh = (bh % d.h) / d.group;
  const T *kBase = k + (b * d.hk + kvh) * d.t * d.d, *vBase = v + (b * d.hk + kvh) * d.t * d.dv;
  double qr[P], dor[P], acc[P];
  loadRow<P>(q + row * d.d, d.d, qr);
  loadRow<P>(dout + row * d.dv, d.dv, dor);
  for (int r = 0; r < P; ++r)
    acc[r] = 0;
  const double rowLse = double(lse[row]), di = dRow[row];
  const int lane = threadIdx.x % kWarp;
  const int64_t end = rows.active ? keyEnd(d, i) : 0;
  forEachKey(kBase, vBase, d, rows, end, tileKeys, kTile, vTile,
             [&](const T *kRow, const T *vRow) {
               const double p = exp(d.scale * dotRow<P>(qr, kRow, d.d) - rowLse);
               const double ds = p * (dotRow<P>(dor, vRow, d.dv) - di);
               for (int r = 0; r < P; ++r) {
                 const int64_t x = lane + int64_t(r) * kWarp;
                 if (x < d.d)
                   acc[r] += ds * double(kRow[x]);
               }
             });
  if (rows.active)
    storeRow<P>(dq + row * d.d, d.d, acc, d.scale);
}

/// dv_j = sum_i P_ij do_i and dk_j = scale sum_i dS_ij q_i over every query
/// row of every query head sharing key j's kv head; one warp per key row,
/// the block's 8 key rows sharing each tile of `tileQueries` query rows (q,
/// do, lse and D) in shared memory.
template <typename T, int P>
__global__ void dkdvKernel(const T *dout, const T *q, const T *k, const T *v, const T *lse,
                           const double *dRow, T *dk, T *dv, AttentionDims d,
                           int64_t tileQueries) {
  extern __shared__ double shared[];
  double *dTile = shared; // doubles first: the T tiles after them stay aligned
  T *lseTile = reinterpret_cast<T *>(dTile + tileQueries);
  T *qTile = lseTile + tileQueries, *doTile = qTile + tileQueries * d.d;
  const BlockRows rows = blockRows(d.t);
  const int64_t j = rows.mine, bkv = rows.head, row = bkv * d.t + (rows.active ? j : 0);
  const int64_t b = bkv / d.hk, kvh = bkv % d.hk;
  double kr[P], vr[P], dkAcc[P], dvAcc[P];
  loadRow<P>(k + row * d.d, d.d, kr);
  loadRow<P>(v + row * d.dv, d.dv, vr);
  for (int r = 0; r < P; ++r)
    dkAcc[r] = dvAcc[r] = 0;
  const int lane = threadIdx.x % kWarp;
  // Causal: query i sees key j iff j <= i + offset; the block's first key
  // is seen by the earliest queries.
  auto firstQueryOf = [&](int64_t key) {
    const int64_t first = d.causal ? key - d.offset : 0;
    return first < 0 ? 0 : first;
  };
  const int64_t mineFirst = rows.active ? firstQueryOf(j) : d.s;
  const int64_t blockFirst = firstQueryOf(rows.first);
  for (int64_t h = kvh * d.group; h < (kvh + 1) * d.group; ++h) {
    const int64_t headRow = (b * d.h + h) * d.s; // query row 0 of head h
    for (int64_t i0 = blockFirst; i0 < d.s; i0 += tileQueries) {
      __syncthreads();
      const int64_t count = min(tileQueries, d.s - i0);
      stageRows(q + headRow * d.d, i0, count, d.s, d.d, qTile);
      stageRows(dout + headRow * d.dv, i0, count, d.s, d.dv, doTile);
      stageRows(lse + headRow, i0, count, d.s, 1, lseTile);
      stageRows(dRow + headRow, i0, count, d.s, 1, dTile);
      __syncthreads();
      const int64_t stop = count;
      for (int64_t ii = mineFirst > i0 ? mineFirst - i0 : 0; ii < stop; ++ii) {
        const T *qRow = qTile + ii * d.d, *doRow = doTile + ii * d.dv;
        const double p = exp(d.scale * dotRow<P>(kr, qRow, d.d) - double(lseTile[ii]));
        const double ds = p * (dotRow<P>(vr, doRow, d.dv) - dTile[ii]);
        for (int r = 0; r < P; ++r) {
          const int64_t x = lane + int64_t(r) * kWarp;
          if (x < d.dv)
            dvAcc[r] += p * double(doRow[x]);
          if (x < d.d)
            dkAcc[r] += ds * double(qRow[x]);
        }
      }
    }
  }
  if (!rows.active)
    return;
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

/// Shared memory for one block's tiles; a tile holds as many rows as fit.
constexpr int64_t kTileBytes = int64_t(32) << 10;
int64_t tileRows(int64_t bytesPerRow) {
  return std::clamp<int64_t>(kTileBytes / std::max<int64_t>(bytesPerRow, 1), 1, 64);
}

/// Blocks of kWarpsPerBlock rows for `heads` heads of `rows` rows each.
unsigned headBlocks(int64_t heads, int64_t rows) {
  return unsigned(heads * ((rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
}

unsigned warpBlocks(int64_t rows) {
  return unsigned(std::max<int64_t>(1, (rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
}

Status checkHeadDims(const char *op, const AttentionDims &d) {
  if (d.d > kMaxHeadDim || d.dv > kMaxHeadDim)
    return opError(op, "head dims " + std::to_string(d.d) + "/" + std::to_string(d.dv) +
                           " are over the CUDA kernels' " + std::to_string(kMaxHeadDim));
  const int64_t queryBlocks = d.b * d.h * ((d.s + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const int64_t keyBlocks = d.b * d.hk * ((d.t + kWarpsPerBlock - 1) / kWarpsPerBlock);
  if (queryBlocks > INT32_MAX || keyBlocks > INT32_MAX)
    return opError(op, "too many rows for one launch");
  return Status();
}

Status attention(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                 const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "attention";
  AttentionDims d;
  if (Status s = cpu::resolveAttentionOperands(op, false, inputs, outputs, attrs, d); !s)
    return s;
  const TensorRef &q = inputs[0], &k = inputs[1], &v = inputs[2];
  const TensorRef &o = outputs[0], &lse = outputs[1];
  if (Status s = checkHeadDims(op, d); !s)
    return s;
  const int64_t rows = d.b * d.h * d.s;
  return dispatchFloat(op, q.dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatchPerLane(d, [&](auto perLane) {
      constexpr int P = decltype(perLane)::value;
      const int64_t tile = tileRows((d.d + d.dv) * int64_t(sizeof(T)));
      if (rows > 0)
        forwardKernel<T, P><<<headBlocks(d.b * d.h, d.s), kThreads,
                              size_t(tile * (d.d + d.dv)) * sizeof(T), stream>>>(
            q.as<T>(), k.as<T>(), v.as<T>(), o.as<T>(), lse.as<T>(), d, tile);
    });
  });
}

Status attentionGrad(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                     const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "attention_grad";
  AttentionDims d;
  if (Status s = cpu::resolveAttentionOperands(op, true, inputs, outputs, attrs, d); !s)
    return s;
  const TensorRef &dout = inputs[0], &q = inputs[1], &k = inputs[2], &v = inputs[3],
                  &o = inputs[4], &lse = inputs[5];
  const TensorRef &dq = outputs[0], &dk = outputs[1], &dv = outputs[2];
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
      const int64_t keyTile = tileRows((d.d + d.dv) * int64_t(sizeof(T)));
      const int64_t queryTile = tileRows((d.d + d.dv + 1) * int64_t(sizeof(T)) + 8);
      if (queryRows > 0) {
        rowDotKernel<T, P><<<warpBlocks(queryRows), kThreads, 0, stream>>>(dout.as<T>(),
                                                                            o.as<T>(), dRow, d);
        dqKernel<T, P><<<headBlocks(d.b * d.h, d.s), kThreads,
                         size_t(keyTile * (d.d + d.dv)) * sizeof(T), stream>>>(
            dout.as<T>(), q.as<T>(), k.as<T>(), v.as<T>(), lse.as<T>(), dRow, dq.as<T>(), d,
            keyTile);
      }
      if (keyRows > 0)
        dkdvKernel<T, P><<<headBlocks(d.b * d.hk, d.t), kThreads,
                           size_t(queryTile) * ((d.d + d.dv + 1) * sizeof(T) + 8), stream>>>(
            dout.as<T>(), q.as<T>(), k.as<T>(), v.as<T>(), lse.as<T>(), dRow, dk.as<T>(),
            dv.as<T>(), d, queryTile);
    });
  });
}

} // namespace

void addAttentionKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"attention", attention}, {"attention_grad", attentionGrad}});
}

} // namespace cuda
} // namespace longctx
