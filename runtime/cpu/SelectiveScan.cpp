//===- SelectiveScan.cpp - Mamba selective scan and its gradient ----------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"

namespace longctx {
namespace cpu {
namespace {

/// Channels one task scans together: they share each step's B and C rows,
/// which then stay in L1, while their states (kChannelBlock x N) do too.
constexpr int64_t kChannelBlock = 16;

/// `h0` ([batch, e, n], null: zeros) is the state before the first step;
/// `hLast` (same shape, may be null) receives the state after the last.
template <typename T>
void selectiveScan(const T *u, const T *delta, const T *a, const T *bm,
                   const T *c, T *y, int64_t batch, int64_t seq, int64_t e,
                   int64_t n, const T *h0 = nullptr, T *hLast = nullptr) {
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
      const int64_t w = e1 - e0;
      if (h0)
        std::copy(h0 + (b * e + e0) * n, h0 + (b * e + e0 + w) * n, state.begin());
      else
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
      if (hLast)
        std::copy(state.begin(), state.begin() + w * n, hLast + (b * e + e0) * n);
    }
  }
}

/// selective_scan (5 inputs, 1 output) and selective_scan_state (a sixth
/// input, the initial state, and a second output, the final state).
Status scanKernel(const char *op, bool withState, const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs) {
  const size_t arity = withState ? 6 : 5;
  if (Status s = checkArity(op, inputs, arity, arity, outputs, withState ? 2 : 1); !s)
    return s;
  const TensorRef &y = outputs[0];
  ScanDims dims;
  if (Status s = resolveScan(op, inputs, 0, {{"output", &y}}, dims); !s)
    return s;
  if (withState) {
    if (Status s = checkState(op, "h0", inputs[5], dims, y.dtype); !s)
      return s;
    if (Status s = checkState(op, "final state", outputs[1], dims, y.dtype); !s)
      return s;
  }
  return dispatchFloat(op, y.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if (withState && y.numElements() == 0) // no steps: the state passes through
      std::copy(inputs[5].as<T>(), inputs[5].as<T>() + inputs[5].numElements(),
                outputs[1].as<T>());
    if (y.numElements() == 0)
      return Status();
    selectiveScan(inputs[0].as<T>(), inputs[1].as<T>(), inputs[2].as<T>(),
                  inputs[3].as<T>(), inputs[4].as<T>(), y.as<T>(), dims.batch,
                  dims.seq, dims.e, dims.n, withState ? inputs[5].as<T>() : nullptr,
                  withState ? outputs[1].as<T>() : nullptr);
    return Status();
  });
}

Status selectiveScanKernel(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs,
                           const AttrMap &) {
  return scanKernel("selective_scan", false, inputs, outputs);
}

Status selectiveScanStateKernel(const std::vector<TensorRef> &inputs,
                                const std::vector<TensorRef> &outputs,
                                const AttrMap &) {
  return scanKernel("selective_scan_state", true, inputs, outputs);
}

//===----------------------------------------------------------------------===//
// selective_scan_grad
//
// For each channel (b, e) the state adjoint g_t = dL/dh_t runs backwards:
//   g_t = dy_t C_t + exp(delta_{t+1} A) * g_{t+1}
// and, with h_{t-1} the previous state and ga = g_t * exp(delta_t A) * h_{t-1},
//   du_t = delta_t <g_t, B_t>,   ddelta_t = <A, ga> + u_t <g_t, B_t>,
//   dB_t += delta_t u_t g_t,     dC_t += dy_t h_t,     dA += delta_t ga.
// The backward pass needs the states in reverse order. When a task's states
// for the whole sequence fit in kHistoryBudget they are computed once and
// kept; otherwise a first forward pass keeps the state at the start of every
// chunk of kGradChunk steps (the `chunk` attribute overrides the length),
// and each chunk's states are recomputed from there before walking it
// backwards, so scratch is O(chunk * N) per channel instead of O(S * N).
// dB and dC (summed over channels) and dA (over batch and time) go to
// per-thread partials.
//
// Truncated (`truncate` = T > 0, Xu et al.'s truncated adjoint sharding):
// the cotangent dy_t reaches back to h_i only for t - i < T, i.e.
//   g_i = sum_{t=i}^{i+T-1} dy_t C_t prod_{s=i+1}^{t} exp(delta_s A).
// The walk goes in blocks of T steps (chunks hold whole blocks). Within a
// block [a, f) the sum splits into the block's own reverse scan (zero carry
// at f) plus P_i * W_f[i + T - 1 - f],
// where P_i = prod_{s=i+1}^{f-1} exp(delta_s A) and the window
//   W_f[k] = sum_{t=f}^{f+k} dy_t C_t prod_{s=f}^{t} exp(delta_s A)
// (k < T) holds what the next T steps send back. W_a follows from W_f by one
// forward walk over the block, so the work stays O(S) for any T. With a
// state, the window replaces the state's cotangent: `d final state` is the
// window after the last step and `dh0` the one at the first ([B, T, E, N]).
//
// With a seventh output the kernel also writes the scan's output y_t =
// <C_t, h_t> from the states it recomputes, so a backward that recomputes
// the forward scan only for y need not run it (lc-fuse-scan-recompute).
//===----------------------------------------------------------------------===//

/// Channels one task walks together: they share each step's B and C rows.
constexpr int64_t kGradChannelBlock = 8;
/// Steps whose states are recomputed and kept at a time on long sequences.
constexpr int64_t kGradChunk = 64;
/// Doubles a task may keep per history (states, decays): 1 MiB each.
constexpr int64_t kHistoryBudget = int64_t(1) << 17;

template <typename T> struct ScanGrad {
  const T *dy, *u, *delta, *a, *bm, *c;
  T *du, *ddelta;
  ScanDims dims;
  int64_t chunkLen; // steps per recomputed chunk (truncated: a multiple of T, or all)
  int64_t truncate = 0; // T > 0: each dy_t reaches back T steps at most
  /// With a state: the initial state, the final state's cotangent, and the
  /// initial state's cotangent ([batch, e, n]; truncated: windows
  /// [batch, T, e, n]); null without.
  const T *h0 = nullptr, *dhLast = nullptr;
  T *dh0 = nullptr;
  T *y = nullptr; // the recomputed scan output, when asked for

  /// Scratch of one thread, reused by its tasks (all double).
  struct Scratch {
    std::vector<double> ckpt;  // [chunks][w][n]: state before each chunk
    std::vector<double> hist;  // [chunkLen + 1][w][n]: states in a chunk
    std::vector<double> decay; // [chunkLen][w][n]: exp(delta_t A)
    std::vector<double> carry; // [w][n]: exp(delta_{t+1} A) * g_{t+1}
    std::vector<double> reach; // [w][n]: P_i (truncated)
    std::vector<double> window, nextWindow; // [T][w][n]: W_a, W_f (truncated)
  };

  /// Offset of (b, k, e0) in a [batch, T, e, n] window.
  int64_t windowOffset(int64_t b, int64_t k, int64_t e0) const {
    return ((b * truncate + k) * dims.e + e0) * dims.n;
  }

  /// W_a from W_f for the block [s0, s0 + len) of batch b (truncated), whose
  /// decays start at sc.decay[first].
  void advanceWindow(int64_t b, int64_t s0, int64_t len, int64_t first, int64_t e0, int64_t w,
                     Scratch &sc) const {
    const int64_t seq = dims.seq, e = dims.e, n = dims.n, wn = w * n;
    double *reach = sc.reach.data(), *acc = sc.carry.data();
    std::fill(reach, reach + wn, 1.0);
    std::fill(acc, acc + wn, 0.0);
    for (int64_t k = 0; k < len; ++k) {
      const int64_t step = b * seq + s0 + k;
      const T *cRow = c + step * n;
      const double *dec = sc.decay.data() + (first + k) * wn;
      double *out = sc.window.data() + k * wn;
      for (int64_t ch = 0; ch < w; ++ch) {
        const double dyv = double(dy[step * e + e0 + ch]);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t j = ch * n + i;
          reach[j] *= dec[j];
          acc[j] += dyv * double(cRow[i]) * reach[j];
          out[j] = acc[j];
        }
      }
    }
    for (int64_t k = len; k < truncate; ++k) {
      const double *in = sc.nextWindow.data() + (k - len) * wn;
      double *out = sc.window.data() + k * wn;
      for (int64_t j = 0; j < wn; ++j)
        out[j] = acc[j] + reach[j] * in[j];
    }
    std::swap(sc.window, sc.nextWindow);
  }

  /// One forward step of channels [e0, e0+w) at step index `step`:
  /// hOut = exp(delta A) * hIn + delta u B, recording the decay when asked.
  void forwardStep(int64_t step, int64_t e0, int64_t w, const double *hIn,
                   double *hOut, double *decayOut) const {
    const int64_t e = dims.e, n = dims.n;
    const T *bRow = bm + step * n;
    for (int64_t ch = 0; ch < w; ++ch) {
      const double d = double(delta[step * e + e0 + ch]);
      const double du = d * double(u[step * e + e0 + ch]);
      const T *aRow = a + (e0 + ch) * n;
      const double *hi = hIn + ch * n;
      double *ho = hOut + ch * n;
      double *dec = decayOut ? decayOut + ch * n : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        const double k = std::exp(d * double(aRow[i]));
        if (dec)
          dec[i] = k;
        ho[i] = k * hi[i] + du * double(bRow[i]);
      }
    }
  }

  /// Channels [e0, e0+w) of batch b; adds into the thread's dB, dC
  /// ([batch, seq, n]) and dA ([e, n]) partials.
  void task(int64_t b, int64_t e0, int64_t w, Scratch &sc, double *pB,
            double *pC, double *pA) const {
    const int64_t seq = dims.seq, e = dims.e, n = dims.n;
    const int64_t chunks = (seq + chunkLen - 1) / chunkLen;
    const int64_t wn = w * n;
    sc.ckpt.assign(size_t(chunks * wn), 0.0);
    sc.hist.resize(size_t((chunkLen + 1) * wn));
    sc.decay.resize(size_t(chunkLen * wn));
    // The state cotangent arriving from after the last step.
    sc.carry.assign(size_t(wn), 0.0);
    const int64_t first = (b * e + e0) * n; // this task's slice of a state
    if (truncate) {
      sc.reach.resize(size_t(wn));
      sc.window.resize(size_t(truncate * wn));
      sc.nextWindow.assign(size_t(truncate * wn), 0.0);
      if (dhLast)
        for (int64_t k = 0; k < truncate; ++k)
          for (int64_t j = 0; j < wn; ++j)
            sc.nextWindow[size_t(k * wn + j)] =
                double(dhLast[windowOffset(b, k, e0) + j]);
    } else if (dhLast) {
      for (int64_t i = 0; i < wn; ++i)
        sc.carry[size_t(i)] = double(dhLast[first + i]);
    }
    // Checkpoints: ckpt[0] = the initial state, ckpt[k] = the state after k
    // chunks (carried in hist[0] / hist[1] meanwhile).
    double *hA = sc.hist.data(), *hB = hA + wn;
    for (int64_t i = 0; i < wn; ++i)
      hA[i] = h0 ? double(h0[first + i]) : 0.0;
    std::copy(hA, hA + wn, sc.ckpt.data());
    for (int64_t chunk = 0; chunk + 1 < chunks; ++chunk) {
      for (int64_t s = chunk * chunkLen; s < (chunk + 1) * chunkLen; ++s) {
        forwardStep(b * seq + s, e0, w, hA, hB, nullptr);
        std::swap(hA, hB);
      }
      std::copy(hA, hA + wn, sc.ckpt.data() + (chunk + 1) * wn);
    }
    for (int64_t chunk = chunks - 1; chunk >= 0; --chunk) {
      const int64_t s0 = chunk * chunkLen;
      const int64_t len = std::min(chunkLen, seq - s0);
      std::copy(sc.ckpt.data() + chunk * wn, sc.ckpt.data() + (chunk + 1) * wn,
                sc.hist.data());
      for (int64_t k = 0; k < len; ++k)
        forwardStep(b * seq + s0 + k, e0, w, sc.hist.data() + k * wn,
                    sc.hist.data() + (k + 1) * wn, sc.decay.data() + k * wn);
      // Truncated, the chunk walks in blocks of T steps (aligned to the
      // chunk's start), each with its own reverse scan from zero.
      int64_t blockStart = truncate ? (len - 1) / truncate * truncate : 0;
      int64_t blockLen = len - blockStart;
      if (truncate) {
        std::fill(sc.carry.begin(), sc.carry.end(), 0.0);
        std::fill(sc.reach.begin(), sc.reach.end(), 1.0);
      }
      for (int64_t k = len - 1; k >= 0; --k) {
        const int64_t step = b * seq + s0 + k;
        const T *bRow = bm + step * n, *cRow = c + step * n;
        double *pBRow = pB + step * n, *pCRow = pC + step * n;
        // W_f's entry (f: the block's end) that reaches back exactly here.
        const int64_t reachBack = k - blockStart + truncate - 1 - blockLen;
        const double *far = truncate && reachBack >= 0
                                ? sc.nextWindow.data() + reachBack * wn
                                : nullptr;
        for (int64_t ch = 0; ch < w; ++ch) {
          const int64_t idx = step * e + e0 + ch;
          const double d = double(delta[idx]), uv = double(u[idx]),
                       dyv = double(dy[idx]);
          const T *aRow = a + (e0 + ch) * n;
          const double *hNow = sc.hist.data() + (k + 1) * wn + ch * n;
          const double *hPrev = sc.hist.data() + k * wn + ch * n;
          const double *dec = sc.decay.data() + k * wn + ch * n;
          double *cr = sc.carry.data() + ch * n;
          double *pARow = pA + (e0 + ch) * n;
          double sumGB = 0, sumAGa = 0, out = 0;
          // Truncated: the block's own scan (local) plus the window entry
          // this step reaches (farRow, scaled by the decay to the block's
          // end); the carry holds only the block's own part.
          const double *farRow = far ? far + ch * n : nullptr;
          double *reach = truncate ? sc.reach.data() + ch * n : nullptr;
#pragma omp simd reduction(+ : sumGB, sumAGa, out)
          for (int64_t i = 0; i < n; ++i) {
            const double local = dyv * double(cRow[i]) + cr[i];
            const double g = farRow ? local + reach[i] * farRow[i] : local;
            const double ga = g * dec[i] * hPrev[i];
            pCRow[i] += dyv * hNow[i];
            pBRow[i] += g * d * uv;
            sumGB += g * double(bRow[i]);
            sumAGa += double(aRow[i]) * ga;
            pARow[i] += d * ga;
            out += hNow[i] * double(cRow[i]);
            cr[i] = dec[i] * local;
            if (reach)
              reach[i] *= dec[i];
          }
          du[idx] = T(d * sumGB);
          ddelta[idx] = T(sumAGa + uv * sumGB);
          if (y)
            y[idx] = T(out);
        }
        if (truncate && k == blockStart) { // the block is done: on to the one before
          advanceWindow(b, s0 + blockStart, blockLen, blockStart, e0, w, sc);
          blockStart -= truncate;
          blockLen = truncate;
          std::fill(sc.carry.begin(), sc.carry.end(), 0.0);
          std::fill(sc.reach.begin(), sc.reach.end(), 1.0);
        }
      }
    }
    if (!dh0)
      return;
    if (truncate) { // the window at the first step
      for (int64_t k = 0; k < truncate; ++k)
        for (int64_t j = 0; j < wn; ++j)
          dh0[windowOffset(b, k, e0) + j] = T(sc.nextWindow[size_t(k * wn + j)]);
      return;
    }
    // After the first step the carry is exp(delta_0 A) g_0 = dL/dh0.
    for (int64_t i = 0; i < wn; ++i)
      dh0[first + i] = T(sc.carry[size_t(i)]);
  }
};

/// selective_scan_grad (dy, u, delta, A, B, C) -> (du, ddelta, dA, dB, dC)
/// and selective_scan_state_grad (dy, d final state, u, delta, A, B, C, h0)
/// -> (du, ddelta, dA, dB, dC, dh0); either may add y as a last output.
Status scanGradKernel(const char *op, bool withState, const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  ScanGradShape g;
  if (Status s = resolveScanGrad(op, withState, inputs, outputs, attrs, g); !s)
    return s;
  const TensorRef &dy = inputs[0];
  const size_t first = g.first, results = g.results;
  const bool withOutput = g.withOutput;
  const ScanDims &dims = g.dims;
  const int64_t truncate = g.truncate;
  int64_t chunkLen = attrs.getInt("chunk", 0);
  if (chunkLen < 0)
    return opError(op, "chunk must be >= 0, got " + std::to_string(chunkLen));
  if (chunkLen == 0)
    chunkLen = dims.seq * std::min(dims.e, kGradChannelBlock) * dims.n <=
                       kHistoryBudget
                   ? std::max<int64_t>(dims.seq, 1)
                   : kGradChunk;
  // Truncated, a chunk holds whole blocks of T steps (the window's upkeep
  // is then O(1) per step): round the chunk to a multiple of T.
  if (truncate && chunkLen < dims.seq)
    chunkLen = std::max(truncate, chunkLen / truncate * truncate);
  return dispatchFloat(op, dy.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const int64_t batch = dims.batch, seq = dims.seq, e = dims.e, n = dims.n;
    ScanGrad<T> g{dy.as<T>(),
                  inputs[first].as<T>(),
                  inputs[first + 1].as<T>(),
                  inputs[first + 2].as<T>(),
                  inputs[first + 3].as<T>(),
                  inputs[first + 4].as<T>(),
                  outputs[0].as<T>(),
                  outputs[1].as<T>(),
                  dims,
                  chunkLen,
                  truncate};
    if (withOutput)
      g.y = outputs[results].as<T>();
    if (withState) {
      g.dhLast = inputs[1].as<T>();
      g.h0 = inputs[7].as<T>();
      g.dh0 = outputs[5].as<T>();
      if (seq == 0) // no steps: the cotangent passes through
        std::copy(g.dhLast, g.dhLast + outputs[5].numElements(), g.dh0);
    }
    const int64_t blocks = (e + kGradChannelBlock - 1) / kGradChannelBlock;
    const int64_t tasks = batch * blocks;
    const bool parallel = batch * seq * e * n >= kParallelGrain && tasks > 1;
    const int threads = parallel ? maxThreads() : 1;
    const int64_t bcSize = batch * seq * n;
    ThreadPartials pB(bcSize, threads), pC(bcSize, threads), pA(e * n, threads);
    if (seq > 0) {
#pragma omp parallel if (parallel)
      {
        typename ScanGrad<T>::Scratch scratch;
        double *myB = pB.slot(), *myC = pC.slot(), *myA = pA.slot();
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; ++t) {
          const int64_t b = t / blocks;
          const int64_t e0 = (t % blocks) * kGradChannelBlock;
          g.task(b, e0, std::min(kGradChannelBlock, e - e0), scratch, myB, myC,
                 myA);
        }
      }
    }
    pA.reduceInto(outputs[2].as<T>());
    pB.reduceInto(outputs[3].as<T>());
    pC.reduceInto(outputs[4].as<T>());
    return Status();
  });
}

Status selectiveScanGradKernel(const std::vector<TensorRef> &inputs,
                               const std::vector<TensorRef> &outputs,
                               const AttrMap &attrs) {
  return scanGradKernel("selective_scan_grad", false, inputs, outputs, attrs);
}

Status selectiveScanStateGradKernel(const std::vector<TensorRef> &inputs,
                                    const std::vector<TensorRef> &outputs,
                                    const AttrMap &attrs) {
  return scanGradKernel("selective_scan_state_grad", true, inputs, outputs, attrs);
}

//===----------------------------------------------------------------------===//
// State passing (adjoint sharding's parallel backward)
//
// The cotangent a shard sends to the shard before it is linear in the one
// it receives: dh0 = carry + decay * dfinal, with carry the reverse scan of
// the shard's own dy from a zero cotangent,
//   acc <- exp(delta_s A) * (acc + dy_s C_s)   for s = S-1 .. 0,
// and decay = prod_s exp(delta_s A) = exp(A * sum_s delta_s). Shards compute
// (carry, decay) independently; the combine chains them in K steps.
//===----------------------------------------------------------------------===//

/// selective_scan_carry (dy, delta, A, C) -> (carry, decay), [B, E, N] each.
Status scanCarryKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "selective_scan_carry";
  ScanDims dims;
  if (Status s = resolveScanCarry(op, inputs, outputs, dims); !s)
    return s;
  const TensorRef &dy = inputs[0], &delta = inputs[1], &a = inputs[2], &c = inputs[3];
  const int64_t batch = dims.batch, seq = dims.seq, e = dims.e, n = dims.n;
  return dispatchFloat(op, dy.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *dyp = dy.as<T>(), *dp = delta.as<T>(), *ap = a.as<T>(), *cp = c.as<T>();
    T *carry = outputs[0].as<T>(), *decay = outputs[1].as<T>();
    const int64_t channels = batch * e;
    const bool parallel = batch * seq * e * n >= kParallelGrain && channels > 1;
#pragma omp parallel if (parallel)
    {
      std::vector<double> acc(static_cast<size_t>(n));
#pragma omp for schedule(static)
      for (int64_t ch = 0; ch < channels; ++ch) {
        const int64_t b = ch / e, ech = ch % e;
        const T *aRow = ap + ech * n;
        std::fill(acc.begin(), acc.end(), 0.0);
        double deltaSum = 0;
        for (int64_t s = seq - 1; s >= 0; --s) {
          const int64_t step = b * seq + s;
          const double d = double(dp[step * e + ech]), g = double(dyp[step * e + ech]);
          const T *cRow = cp + step * n;
          deltaSum += d;
          for (int64_t i = 0; i < n; ++i)
            acc[size_t(i)] = std::exp(d * double(aRow[i])) * (acc[size_t(i)] + g * double(cRow[i]));
        }
        for (int64_t i = 0; i < n; ++i) {
          carry[ch * n + i] = T(acc[size_t(i)]);
          decay[ch * n + i] = T(std::exp(deltaSum * double(aRow[i])));
        }
      }
    }
    return Status();
  });
}

/// selective_scan_carry_combine (carries, decays [K*B,E,N], dfinal [B,E,N])
/// -> (dlast [K*B,E,N], dinit [B,E,N]).
Status scanCarryCombineKernel(const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "selective_scan_carry_combine";
  int64_t shards = 0;
  if (Status s = resolveCarryCombine(op, inputs, outputs, shards); !s)
    return s;
  const TensorRef &carries = inputs[0], &decays = inputs[1], &dfinal = inputs[2];
  return dispatchFloat(op, dfinal.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const int64_t size = dfinal.numElements();
    const T *cp = carries.as<T>(), *dp = decays.as<T>(), *fp = dfinal.as<T>();
    T *last = outputs[0].as<T>(), *init = outputs[1].as<T>();
#pragma omp parallel for schedule(static) if (shards * size >= kParallelGrain)
    for (int64_t j = 0; j < size; ++j) {
      double g = double(fp[j]);
      for (int64_t k = shards - 1; k >= 0; --k) {
        last[k * size + j] = T(g);
        g = double(cp[k * size + j]) + double(dp[k * size + j]) * g;
      }
      init[j] = T(g);
    }
    return Status();
  });
}

} // namespace

void addSelectiveScanKernels(KernelTable &table) {
  table.insert(table.end(),
               {
                   {"selective_scan", selectiveScanKernel},
                   {"selective_scan_grad", selectiveScanGradKernel},
                   {"selective_scan_state", selectiveScanStateKernel},
                   {"selective_scan_state_grad", selectiveScanStateGradKernel},
                   {"selective_scan_carry", scanCarryKernel},
                   {"selective_scan_carry_combine", scanCarryCombineKernel},
               });
}

/// Checks the five forward operands (u, delta, A, B, C) starting at
/// inputs[first], and that each tensor of `same` has u's dtype and shape.
Status resolveScan(
    const char *op, const std::vector<TensorRef> &inputs, size_t first,
    std::initializer_list<std::pair<const char *, const TensorRef *>> same,
    ScanDims &dims) {
  const TensorRef &u = inputs[first], &a = inputs[first + 2];
  if (u.rank() != 3)
    return opError(op,
                   "u must have rank 3 [B,S,E], got " + shapeToString(u.shape));
  if (a.rank() != 2)
    return opError(op,
                   "A must have rank 2 [E,N], got " + shapeToString(a.shape));
  dims = {u.shape[0], u.shape[1], u.shape[2], a.shape[1]};
  const int64_t batch = dims.batch, seq = dims.seq, e = dims.e, n = dims.n;
  const char *names[] = {"delta", "A", "B", "C"};
  const Shape shapes[] = {
      {batch, seq, e}, {e, n}, {batch, seq, n}, {batch, seq, n}};
  for (size_t i = 0; i < 4; ++i) {
    const TensorRef &t = inputs[first + 1 + i];
    if (Status s = checkDType(op, names[i], t.dtype, u.dtype); !s)
      return s;
    if (Status s = checkShape(op, names[i], t.shape, shapes[i]); !s)
      return s;
  }
  for (const auto &[name, t] : same) {
    if (Status s = checkDType(op, name, t->dtype, u.dtype); !s)
      return s;
    if (Status s = checkShape(op, name, t->shape, u.shape); !s)
      return s;
  }
  return Status();
}

/// Checks that `t` is a state [batch, e, n] of the scan's dtype.
Status checkState(const char *op, const char *name, const TensorRef &t,
                  const ScanDims &dims, DType dtype) {
  if (Status s = checkDType(op, name, t.dtype, dtype); !s)
    return s;
  return checkShape(op, name, t.shape, {dims.batch, dims.e, dims.n});
}

Status resolveScanCarry(const char *op, const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs, ScanDims &dims) {
  if (Status s = checkArity(op, inputs, 4, 4, outputs, 2); !s)
    return s;
  const TensorRef &dy = inputs[0], &a = inputs[2];
  if (dy.rank() != 3 || a.rank() != 2)
    return opError(op, "dy must be [B,S,E] and A [E,N], got " + shapeToString(dy.shape) +
                           " and " + shapeToString(a.shape));
  dims = {dy.shape[0], dy.shape[1], dy.shape[2], a.shape[1]};
  const std::pair<const char *, const TensorRef *> operands[] = {
      {"delta", &inputs[1]}, {"A", &a}, {"C", &inputs[3]}, {"carry", &outputs[0]},
      {"decay", &outputs[1]}};
  const Shape shapes[] = {dy.shape,
                          {dims.e, dims.n},
                          {dims.batch, dims.seq, dims.n},
                          {dims.batch, dims.e, dims.n},
                          {dims.batch, dims.e, dims.n}};
  for (size_t i = 0; i < 5; ++i) {
    if (Status s = checkDType(op, operands[i].first, operands[i].second->dtype, dy.dtype); !s)
      return s;
    if (Status s = checkShape(op, operands[i].first, operands[i].second->shape, shapes[i]); !s)
      return s;
  }
  return Status();
}

Status resolveCarryCombine(const char *op, const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs, int64_t &shards) {
  if (Status s = checkArity(op, inputs, 3, 3, outputs, 2); !s)
    return s;
  const TensorRef &carries = inputs[0], &decays = inputs[1], &dfinal = inputs[2];
  if (dfinal.rank() != 3 || carries.rank() != 3 || dfinal.shape[0] == 0 ||
      carries.shape[0] % dfinal.shape[0] != 0)
    return opError(op, "expects carries [K*B,E,N] and dfinal [B,E,N], got " +
                           shapeToString(carries.shape) + " and " + shapeToString(dfinal.shape));
  const Shape stacked{carries.shape[0], dfinal.shape[1], dfinal.shape[2]};
  const std::pair<const char *, const TensorRef *> operands[] = {
      {"carries", &carries}, {"decays", &decays}, {"dlast", &outputs[0]}, {"dinit", &outputs[1]}};
  const Shape shapes[] = {stacked, stacked, stacked, dfinal.shape};
  for (size_t i = 0; i < 4; ++i) {
    if (Status s = checkDType(op, operands[i].first, operands[i].second->dtype, dfinal.dtype); !s)
      return s;
    if (Status s = checkShape(op, operands[i].first, operands[i].second->shape, shapes[i]); !s)
      return s;
  }
  shards = carries.shape[0] / dfinal.shape[0];
  return Status();
}

Status resolveScanGrad(const char *op, bool withState, const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                       ScanGradShape &g) {
  const size_t arity = withState ? 8 : 6, results = withState ? 6 : 5;
  if (Status s = checkArity(op, inputs, arity, arity, outputs, results, results + 1); !s)
    return s;
  const TensorRef &dy = inputs[0];
  const size_t first = withState ? 2 : 1; // u's index
  const bool withOutput = outputs.size() == results + 1;
  g.first = first;
  g.results = results;
  g.withOutput = withOutput;
  ScanDims &dims = g.dims;
  if (Status s = resolveScan(
          op, inputs, first,
          {{"dy", &dy}, {"du", &outputs[0]}, {"ddelta", &outputs[1]},
           {"output", withOutput ? &outputs[results] : &dy}},
          dims);
      !s)
    return s;
  const char *names[] = {"dA", "dB", "dC"};
  for (int i = 0; i < 3; ++i) {
    const TensorRef &want = inputs[first + 2 + i], &got = outputs[2 + i];
    if (Status s = checkDType(op, names[i], got.dtype, want.dtype); !s)
      return s;
    if (Status s = checkShape(op, names[i], got.shape, want.shape); !s)
      return s;
  }
  const int64_t truncate = g.truncate = attrs.getInt("truncate", 0);
  if (truncate < 0 || (truncate > 0 && !withState))
    return opError(op, truncate < 0 ? "truncate must be >= 0, got " + std::to_string(truncate)
                                    : std::string("truncate needs the state form"));
  if (withState) {
    if (Status s = checkState(op, "h0", inputs[7], dims, dy.dtype); !s)
      return s;
    // Truncated, the state's cotangent is the adjoint window [B, T, E, N].
    const Shape carry = truncate ? Shape{dims.batch, truncate, dims.e, dims.n}
                                 : Shape{dims.batch, dims.e, dims.n};
    for (auto [name, t] : {std::pair<const char *, const TensorRef *>{"d final state", &inputs[1]},
                           {"dh0", &outputs[5]}}) {
      if (Status s = checkDType(op, name, t->dtype, dy.dtype); !s)
        return s;
      if (Status s = checkShape(op, name, t->shape, carry); !s)
        return s;
    }
  }
  return Status();
}

} // namespace cpu
} // namespace longctx
