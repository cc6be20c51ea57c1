//===- SelectiveScan.cu - Mamba's selective scan and its gradient on CUDA --===//
//
// The CPU twins' operands and checks (cpu/OperandChecks.h). Each channel
// (b, e) walks the sequence, with the state in the tensors' type in the
// forward and in double in the backward, as the CPU does; channels are
// independent, and a channel's N state elements are spread over up to a
// warp's lanes (StateLanes: sums over the state go across them), so
// B x E x N threads run at once. Every per-channel vector (the state,
// checkpoints, windows) lives in the step's workspace (ChannelScratch):
// any state size N, coalesced accesses, and no per-thread arrays (see
// ChannelScratch for why that matters).
//
// The gradient walks backwards and needs the states in reverse: each
// channel keeps the state at the start of every chunk of ~sqrt(S) steps
// (checkpoints) and recomputes a chunk's states before walking it back, so
// its scratch is O(sqrt(S) N) per channel (in the step's planned
// workspace). dB and dC (summed over channels) and dA (over batch and time)
// are accumulated with double atomics, then converted. Truncated backwards
// (adjoint windows) walk blocks of T steps as the CPU does, with two
// windows of T states per channel in the workspace.
//
// State passing (selective_scan_carry, _carry_combine): one thread per
// state element.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <algorithm>
#include <cmath>

namespace longctx {
namespace cuda {
namespace {

using cpu::ScanDims;

/// Scratch of many channels: row `slot` of channel ch (N values) lies at
/// ((slot * channels + ch) * n), so the lanes sharing a channel touch
/// neighbouring words, and so do the channels of a warp. No thread keeps
/// an array of its own: the GPU reserves local memory for every resident
/// thread at the largest frame any kernel has (kilobytes per thread would
/// be gigabytes outside the plan).
template <typename V> struct ChannelRow {
  V *at;
  __host__ __device__ V &operator[](int64_t i) const { return at[i]; }
};
template <typename V> struct ChannelScratch {
  V *base;
  int64_t channels, n;
  __host__ __device__ ChannelRow<V> row(int64_t ch, int64_t slot) const {
    return {base + (slot * channels + ch) * n};
  }
};

/// The lanes that share one channel: lane `index` of `count` (a power of
/// two dividing the warp) takes state elements index, index + count, ...;
/// sums over the state go across them. The host check runs one lane.
struct StateLanes {
  int index = 0, count = 1;
  unsigned mask = 0xffffffffu; // the group's lanes in the warp
  template <typename V> __host__ __device__ V sum(V v) const {
#ifdef __CUDA_ARCH__
    for (int offset = count / 2; offset > 0; offset /= 2)
      v += __shfl_xor_sync(mask, v, offset);
#endif
    return v;
  }
};

/// Lanes per channel: the state size rounded up to a power of two, at most
/// a warp.
int lanesFor(int64_t n) {
  int lanes = 1;
  while (lanes < n && lanes < 32)
    lanes *= 2;
  return lanes;
}

/// Thread t's channel (t / count) and lanes: groups of `count` consecutive
/// lanes of a warp (blocks and the grid stride are multiples of 32, so a
/// group never straddles warps and stays together across the loop).
static_assert(kThreads % 32 == 0, "lane groups rely on whole warps per block");
__device__ inline StateLanes stateLanes(int64_t t, int count) {
  StateLanes lanes;
  lanes.index = int(t % count);
  lanes.count = count;
  const int first = int(threadIdx.x % 32) & ~(count - 1);
  lanes.mask = count == 32 ? 0xffffffffu : ((1u << count) - 1u) << first;
  return lanes;
}

template <typename T>
__global__ void scanForward(const T *u, const T *delta, const T *a, const T *bm, const T *c, T *y,
                            ScanDims d, const T *h0, T *hLast, ChannelScratch<T> states,
                            int lanesPerChannel) {
  for (int64_t t = globalIndex(); t < d.batch * d.e * lanesPerChannel; t += globalStride()) {
    const int64_t ch = t / lanesPerChannel, b = ch / d.e, e = ch % d.e;
    const StateLanes lanes = stateLanes(t, lanesPerChannel);
    if (d.n <= lanes.count) { // one value per lane: the state stays in a register
      const int64_t i = lanes.index;
      const bool mine = i < d.n;
      T h = mine && h0 ? h0[ch * d.n + i] : T(0);
      for (int64_t s = 0; s < d.seq; ++s) {
        const int64_t step = b * d.seq + s, x = step * d.e + e;
        const T dt = delta[x], du = dt * u[x];
        T acc = 0;
        if (mine) {
          h = exp(dt * a[e * d.n + i]) * h + du * bm[step * d.n + i];
          acc = h * c[step * d.n + i];
        }
        acc = lanes.sum(acc);
        if (lanes.index == 0)
          y[x] = acc;
      }
      if (hLast && mine)
        hLast[ch * d.n + i] = h;
      continue;
    }
    const ChannelRow<T> h = states.row(ch, 0);
    for (int64_t i = lanes.index; i < d.n; i += lanes.count)
      h[i] = h0 ? h0[ch * d.n + i] : T(0);
    for (int64_t s = 0; s < d.seq; ++s) {
      const int64_t step = b * d.seq + s, x = step * d.e + e;
      const T dt = delta[x], du = dt * u[x];
      T acc = 0;
      for (int64_t i = lanes.index; i < d.n; i += lanes.count) {
        const T hi = exp(dt * a[e * d.n + i]) * h[i] + du * bm[step * d.n + i];
        h[i] = hi;
        acc += hi * c[step * d.n + i];
      }
      acc = lanes.sum(acc);
      if (lanes.index == 0)
        y[x] = acc;
    }
    if (hLast)
      for (int64_t i = lanes.index; i < d.n; i += lanes.count)
        hLast[ch * d.n + i] = h[i];
  }
}

/// The gradient's operands and scratch, as one launch sees them.
template <typename T> struct ScanGradArgs {
  const T *dy, *u, *delta, *a, *bm, *c;
  T *du, *ddelta;
  double *dA, *dB, *dC; // double accumulators (zeroed)
  ScanDims d;
  const T *h0, *dhLast; // with a state, else null
  T *dh0, *y;           // with a state / with the output, else null
  ChannelScratch<double> scratch; // scanGradChannelSlots slots per channel
  int64_t chunkLen, truncate;
};

/// Adds into an accumulator shared by channels: atomically on the device,
/// plainly in the host check (one channel at a time).
__host__ __device__ inline void accumulate(double *at, double value) {
#ifdef __CUDA_ARCH__
  atomicAdd(at, value);
#else
  *at += value;
#endif
}

template <typename T>
__host__ __device__ void backwardChannel(const ScanGradArgs<T> &p, int64_t ch,
                                         const StateLanes &lanes);

/// The channels' walks back, `lanesPerChannel` lanes each.
template <typename T> __global__ void scanBackward(ScanGradArgs<T> p, int lanesPerChannel) {
  for (int64_t t = globalIndex(); t < p.d.batch * p.d.e * lanesPerChannel; t += globalStride())
    backwardChannel(p, t / lanesPerChannel, stateLanes(t, lanesPerChannel));
}

/// The CPU twin's walk (cpu/SelectiveScan.cpp explains the truncated form:
/// blocks of T steps, each a reverse scan from zero plus what the window W_f
/// of the next T steps sends back). A channel's slots (scanGradChannelSlots):
/// `chunks` checkpoints, one chunk's states (chunkLen + 1), truncated two
/// windows of T states, and six working rows.
template <typename T>
__host__ __device__ void backwardChannel(const ScanGradArgs<T> &p, int64_t ch,
                                         const StateLanes &lanes) {
  const T *dy = p.dy, *u = p.u, *delta = p.delta, *a = p.a, *bm = p.bm, *c = p.c;
  const ScanDims &d = p.d;
  const int64_t chunkLen = p.chunkLen, truncate = p.truncate;
  const int64_t b = ch / d.e, e = ch % d.e, n = d.n;
  const int64_t chunks = (d.seq + chunkLen - 1) / chunkLen;
  auto slot = [&](int64_t s) { return p.scratch.row(ch, s); };
  const int64_t histSlot = chunks; // ckpt: slots [0, chunks)
  // Truncated: W_f (what the T steps after the current block send back)
  // and W_a (the block's own, made when the block is done), swapped.
  int64_t windowSlot = histSlot + chunkLen + 1, nextWindowSlot = windowSlot + truncate;
  const int64_t work = nextWindowSlot + truncate;
  const ChannelRow<double> h = slot(work), carry = slot(work + 1), gA = slot(work + 2),
                           reach = slot(work + 3), acc = slot(work + 4), prod = slot(work + 5);
  auto windowAt = [&](int64_t k) { return ((b * truncate + k) * d.e + e) * n; };
  for (int64_t i = lanes.index; i < n; i += lanes.count) {
    h[i] = p.h0 ? double(p.h0[ch * n + i]) : 0.0;
    carry[i] = p.dhLast && !truncate ? double(p.dhLast[ch * n + i]) : 0.0;
    gA[i] = 0;
    reach[i] = 1;
  }
  for (int64_t k = 0; k < truncate; ++k) {
    const ChannelRow<double> w = slot(nextWindowSlot + k);
    for (int64_t i = lanes.index; i < n; i += lanes.count)
      w[i] = p.dhLast ? double(p.dhLast[windowAt(k) + i]) : 0.0;
  }
  auto step = [&](int64_t s, const ChannelRow<double> &in, const ChannelRow<double> &out) {
    const int64_t st = b * d.seq + s, x = st * d.e + e;
    const double dt = double(delta[x]), dut = dt * double(u[x]);
    for (int64_t i = lanes.index; i < n; i += lanes.count)
      out[i] = exp(dt * double(a[e * n + i])) * in[i] + dut * double(bm[st * n + i]);
  };
  // W_a from W_f for the block [s0, s0 + len).
  auto advanceWindow = [&](int64_t s0, int64_t len) {
    for (int64_t i = lanes.index; i < n; i += lanes.count) {
      acc[i] = 0;
      prod[i] = 1;
    }
    for (int64_t k = 0; k < len; ++k) {
      const int64_t st = b * d.seq + s0 + k;
      const double dt = double(delta[st * d.e + e]), dyv = double(dy[st * d.e + e]);
      const ChannelRow<double> w = slot(windowSlot + k);
      for (int64_t i = lanes.index; i < n; i += lanes.count) {
        prod[i] *= exp(dt * double(a[e * n + i]));
        acc[i] += dyv * double(c[st * n + i]) * prod[i];
        w[i] = acc[i];
      }
    }
    for (int64_t k = len; k < truncate; ++k) {
      const ChannelRow<double> w = slot(windowSlot + k), next = slot(nextWindowSlot + k - len);
      for (int64_t i = lanes.index; i < n; i += lanes.count)
        w[i] = acc[i] + prod[i] * next[i];
    }
    const int64_t swap = windowSlot;
    windowSlot = nextWindowSlot;
    nextWindowSlot = swap;
  };
  for (int64_t k = 0; k < chunks; ++k) { // checkpoints: the state before each chunk
    const ChannelRow<double> ckpt = slot(k);
    for (int64_t i = lanes.index; i < n; i += lanes.count)
      ckpt[i] = h[i];
    for (int64_t s = k * chunkLen; s < ((k + 1) * chunkLen < d.seq ? (k + 1) * chunkLen : d.seq);
         ++s)
      step(s, h, h);
  }
  for (int64_t k = chunks - 1; k >= 0; --k) {
    const int64_t s0 = k * chunkLen, len = chunkLen < d.seq - s0 ? chunkLen : d.seq - s0;
    const ChannelRow<double> ckpt = slot(k), first = slot(histSlot);
    for (int64_t i = lanes.index; i < n; i += lanes.count)
      first[i] = ckpt[i];
    for (int64_t j = 0; j < len; ++j)
      step(s0 + j, slot(histSlot + j), slot(histSlot + j + 1));
    // Truncated, the chunk walks in blocks of T steps from its start.
    int64_t blockStart = truncate ? (len - 1) / truncate * truncate : 0;
    int64_t blockLen = len - blockStart;
    if (truncate)
      for (int64_t i = lanes.index; i < n; i += lanes.count) {
        carry[i] = 0;
        reach[i] = 1;
      }
    for (int64_t j = len - 1; j >= 0; --j) {
      const int64_t st = b * d.seq + s0 + j, x = st * d.e + e;
      const double dt = double(delta[x]), uv = double(u[x]), dyv = double(dy[x]);
      // W_f's entry that reaches back exactly here, if any.
      const int64_t reachBack = j - blockStart + truncate - 1 - blockLen;
      const bool far = truncate && reachBack >= 0;
      const ChannelRow<double> farRow = slot(nextWindowSlot + (far ? reachBack : 0));
      const ChannelRow<double> hNow = slot(histSlot + j + 1), hPrev = slot(histSlot + j);
      double sumGB = 0, sumAGa = 0, out = 0;
      for (int64_t i = lanes.index; i < n; i += lanes.count) {
        const double ai = double(a[e * n + i]), dec = exp(dt * ai);
        const double local = dyv * double(c[st * n + i]) + carry[i];
        const double g = far ? local + reach[i] * farRow[i] : local;
        const double ga = g * dec * hPrev[i];
        accumulate(p.dC + st * n + i, dyv * hNow[i]);
        accumulate(p.dB + st * n + i, g * dt * uv);
        sumGB += g * double(bm[st * n + i]);
        sumAGa += ai * ga;
        gA[i] += dt * ga;
        out += hNow[i] * double(c[st * n + i]);
        carry[i] = dec * local;
        reach[i] *= dec;
      }
      sumGB = lanes.sum(sumGB);
      sumAGa = lanes.sum(sumAGa);
      out = lanes.sum(out);
      if (lanes.index == 0) {
        p.du[x] = T(dt * sumGB);
        p.ddelta[x] = T(sumAGa + uv * sumGB);
        if (p.y)
          p.y[x] = T(out);
      }
      if (truncate && j == blockStart) { // the block is done: on to the one before
        advanceWindow(s0 + blockStart, blockLen);
        blockStart -= truncate;
        blockLen = truncate;
        for (int64_t i = lanes.index; i < n; i += lanes.count) {
          carry[i] = 0;
          reach[i] = 1;
        }
      }
    }
  }
  for (int64_t i = lanes.index; i < n; i += lanes.count)
    accumulate(p.dA + e * n + i, gA[i]);
  if (!p.dh0)
    return;
  if (truncate) { // the window at the first step
    for (int64_t k = 0; k < truncate; ++k) {
      const ChannelRow<double> w = slot(nextWindowSlot + k);
      for (int64_t i = lanes.index; i < n; i += lanes.count)
        p.dh0[windowAt(k) + i] = T(w[i]);
    }
    return;
  }
  for (int64_t i = lanes.index; i < n; i += lanes.count) // after the first step the carry is dL/dh0
    p.dh0[ch * n + i] = T(carry[i]);
}

template <typename T> __global__ void narrow(const double *in, T *out, int64_t count) {
  for (int64_t i = globalIndex(); i < count; i += globalStride())
    out[i] = T(in[i]);
}

Status scan(const char *op, bool withState, const std::vector<TensorRef> &inputs,
            const std::vector<TensorRef> &outputs, cudaStream_t stream,
            const Workspace &workspace) {
  const size_t arity = withState ? 6 : 5;
  if (Status s = checkArity(op, inputs, arity, arity, outputs, withState ? 2 : 1); !s)
    return s;
  const TensorRef &y = outputs[0];
  ScanDims d;
  if (Status s = cpu::resolveScan(op, inputs, 0, {{"output", &y}}, d); !s)
    return s;
  if (withState) {
    if (Status s = cpu::checkState(op, "h0", inputs[5], d, y.dtype); !s)
      return s;
    if (Status s = cpu::checkState(op, "final state", outputs[1], d, y.dtype); !s)
      return s;
  }
  void *states = nullptr; // each channel's running state
  if (Status s = carveWorkspace(op, workspace, scanWorkspace(d, y.dtype), &states); !s)
    return s;
  return dispatchFloat(op, y.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (withState && d.seq == 0) { // no steps: the state passes through
      cudaMemcpyAsync(outputs[1].data, inputs[5].data, inputs[5].bytes(),
                      cudaMemcpyDeviceToDevice, stream);
      return;
    }
    if (d.batch * d.e == 0 || d.seq == 0)
      return;
    const int lanes = lanesFor(d.n);
    scanForward<T><<<gridFor(d.batch * d.e * lanes), kThreads, 0, stream>>>(
        inputs[0].as<T>(), inputs[1].as<T>(), inputs[2].as<T>(), inputs[3].as<T>(),
        inputs[4].as<T>(), y.as<T>(), d, withState ? inputs[5].as<T>() : nullptr,
        withState ? outputs[1].as<T>() : nullptr,
        ChannelScratch<T>{static_cast<T *>(states), d.batch * d.e, d.n}, lanes);
  });
}

/// The gradient's checks and chunking, for the device run and the host check.
struct ScanGradPlan {
  cpu::ScanGradShape g;
  int64_t chunkLen = 1;
  WorkspaceLayout layout; // dA, dB, dC, the channels' scratch
};

Status planScanGrad(const char *op, bool withState, const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                    ScanGradPlan &plan) {
  if (Status s = cpu::resolveScanGrad(op, withState, inputs, outputs, attrs, plan.g); !s)
    return s;
  if (const int64_t chunk = attrs.getInt("chunk", 0); chunk < 0) // as the CPU says it
    return opError(op, "chunk must be >= 0, got " + std::to_string(chunk));
  plan.chunkLen = scanGradChunkLength(plan.g.dims.seq, plan.g.truncate);
  plan.layout = scanGradWorkspace(plan.g.dims, plan.g.truncate);
  return Status();
}

/// The launch's operands; `parts` are the layout's (dA, dB, dC, scratch).
template <typename T>
ScanGradArgs<T> scanGradArgs(const ScanGradPlan &plan, const std::vector<TensorRef> &inputs,
                             const std::vector<TensorRef> &outputs, double *const parts[4]) {
  const cpu::ScanGradShape &g = plan.g;
  const size_t first = g.first;
  const bool withState = first == 2;
  return {inputs[0].as<T>(),         inputs[first].as<T>(),
          inputs[first + 1].as<T>(), inputs[first + 2].as<T>(),
          inputs[first + 3].as<T>(), inputs[first + 4].as<T>(),
          outputs[0].as<T>(),        outputs[1].as<T>(),
          parts[0],                  parts[1],
          parts[2],                  g.dims,
          withState ? inputs[7].as<T>() : nullptr,
          withState ? inputs[1].as<T>() : nullptr,
          withState ? outputs[5].as<T>() : nullptr,
          g.withOutput ? outputs[g.results].as<T>() : nullptr,
          {parts[3], g.dims.batch * g.dims.e, g.dims.n}, plan.chunkLen,
          g.truncate};
}

Status scanGrad(const char *op, bool withState, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                cudaStream_t stream, const Workspace &workspace) {
  ScanGradPlan plan;
  if (Status s = planScanGrad(op, withState, inputs, outputs, attrs, plan); !s)
    return s;
  const ScanDims &d = plan.g.dims;
  const int64_t channels = d.batch * d.e, nA = d.e * d.n, nBC = d.batch * d.seq * d.n;
  double *parts[4] = {};
  if (Status s = carveWorkspace(op, workspace, plan.layout, &parts[0], &parts[1], &parts[2],
                                &parts[3]);
      !s)
    return s;
  for (int k = 0; k < 3; ++k)
    cudaMemsetAsync(parts[k], 0, size_t(k == 0 ? nA : nBC) * sizeof(double), stream);
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if (withState && d.seq == 0) // no steps: the cotangent passes through
      cudaMemcpyAsync(outputs[5].data, inputs[1].data, inputs[1].bytes(),
                      cudaMemcpyDeviceToDevice, stream);
    if (channels > 0 && d.seq > 0)
      scanBackward<T><<<gridFor(channels * lanesFor(d.n)), kThreads, 0, stream>>>(
          scanGradArgs<T>(plan, inputs, outputs, parts), lanesFor(d.n));
    narrow<T><<<gridFor(nA), kThreads, 0, stream>>>(parts[0], outputs[2].as<T>(), nA);
    narrow<T><<<gridFor(nBC), kThreads, 0, stream>>>(parts[1], outputs[3].as<T>(), nBC);
    narrow<T><<<gridFor(nBC), kThreads, 0, stream>>>(parts[2], outputs[4].as<T>(), nBC);
  });
}

/// One thread per state element (b, e, i): its reverse scan from zero
/// over the shard, and the shard's decay, as the CPU twin computes them.
template <typename T>
__global__ void carryKernel(const T *dy, const T *delta, const T *a, const T *c, T *carry,
                            T *decay, ScanDims d) {
  for (int64_t t = globalIndex(); t < d.batch * d.e * d.n; t += globalStride()) {
    const int64_t ch = t / d.n, i = t % d.n, b = ch / d.e, e = ch % d.e;
    const double ai = double(a[e * d.n + i]);
    double acc = 0, deltaSum = 0;
    for (int64_t s = d.seq - 1; s >= 0; --s) {
      const int64_t st = b * d.seq + s, x = st * d.e + e;
      const double dt = double(delta[x]);
      deltaSum += dt;
      acc = exp(dt * ai) * (acc + double(dy[x]) * double(c[st * d.n + i]));
    }
    carry[t] = T(acc); // t = (b * E + e) * N + i
    decay[t] = T(exp(deltaSum * ai));
  }
}

template <typename T>
__global__ void combineKernel(const T *carries, const T *decays, const T *dfinal, T *last,
                              T *init, int64_t shards, int64_t size) {
  for (int64_t j = globalIndex(); j < size; j += globalStride()) {
    double g = double(dfinal[j]);
    for (int64_t k = shards - 1; k >= 0; --k) {
      last[k * size + j] = T(g);
      g = double(carries[k * size + j]) + double(decays[k * size + j]) * g;
    }
    init[j] = T(g);
  }
}

Status scanCarry(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                 const AttrMap &, cudaStream_t stream, Workspace) {
  const char *op = "selective_scan_carry";
  ScanDims d;
  if (Status s = cpu::resolveScanCarry(op, inputs, outputs, d); !s)
    return s;
  const TensorRef &dy = inputs[0], &a = inputs[2];
  return dispatchFloat(op, dy.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (d.batch * d.e * d.n > 0)
      carryKernel<T><<<gridFor(d.batch * d.e * d.n), kThreads, 0, stream>>>(
          dy.as<T>(), inputs[1].as<T>(), a.as<T>(), inputs[3].as<T>(), outputs[0].as<T>(),
          outputs[1].as<T>(), d);
  });
}

Status scanCarryCombine(const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs, const AttrMap &,
                        cudaStream_t stream, Workspace) {
  const char *op = "selective_scan_carry_combine";
  int64_t shards = 0;
  if (Status s = cpu::resolveCarryCombine(op, inputs, outputs, shards); !s)
    return s;
  const TensorRef &carries = inputs[0], &decays = inputs[1], &dfinal = inputs[2];
  return dispatchFloat(op, dfinal.dtype, [&](auto tag) {
    using T = decltype(tag);
    const int64_t size = dfinal.numElements();
    if (size > 0)
      combineKernel<T><<<gridFor(size), kThreads, 0, stream>>>(
          carries.as<T>(), decays.as<T>(), dfinal.as<T>(), outputs[0].as<T>(),
          outputs[1].as<T>(), shards, size);
  });
}

Status selectiveScan(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                     const AttrMap &, cudaStream_t stream, Workspace workspace) {
  return scan("selective_scan", false, inputs, outputs, stream, workspace);
}
Status selectiveScanState(const std::vector<TensorRef> &inputs,
                          const std::vector<TensorRef> &outputs, const AttrMap &,
                          cudaStream_t stream, Workspace workspace) {
  return scan("selective_scan_state", true, inputs, outputs, stream, workspace);
}
Status selectiveScanGrad(const std::vector<TensorRef> &inputs,
                         const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                         cudaStream_t stream, Workspace workspace) {
  return scanGrad("selective_scan_grad", false, inputs, outputs, attrs, stream, workspace);
}
Status selectiveScanStateGrad(const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                              cudaStream_t stream, Workspace workspace) {
  return scanGrad("selective_scan_state_grad", true, inputs, outputs, attrs, stream, workspace);
}

} // namespace

Status scanGradOnHost(const char *op, const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const bool withState = std::string(op) == "selective_scan_state_grad";
  ScanGradPlan plan;
  if (Status s = planScanGrad(op, withState, inputs, outputs, attrs, plan); !s)
    return s;
  const ScanDims &d = plan.g.dims;
  // The workspace the compiler plans, zeroed as the device run zeroes the
  // accumulators, then a guard the walk must leave alone.
  const size_t planned = plan.layout.bytes() / sizeof(double) + 1;
  const size_t guard = size_t(2 * d.batch * d.e * d.n + 64);
  std::vector<double> workspace(planned + guard, 0.0);
  std::fill(workspace.begin() + long(planned), workspace.end(), 12345.0);
  double *parts[4];
  for (size_t k = 0; k < 4; ++k)
    parts[k] = workspace.data() + plan.layout.offset(k) / sizeof(double);
  return cpu::dispatchFloat(op, inputs[0].dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if (withState && d.seq == 0)
      std::copy(inputs[1].as<T>(), inputs[1].as<T>() + inputs[1].numElements(), outputs[5].as<T>());
    const ScanGradArgs<T> args = scanGradArgs<T>(plan, inputs, outputs, parts);
    if (d.seq > 0)
      for (int64_t ch = 0; ch < d.batch * d.e; ++ch)
        backwardChannel(args, ch, StateLanes{}); // one lane: the walk in order
    if (std::any_of(workspace.begin() + long(planned), workspace.end(),
                    [](double v) { return v != 12345.0; }))
      return opError(op, "the walk wrote past its planned workspace");
    const int64_t counts[3] = {d.e * d.n, d.batch * d.seq * d.n, d.batch * d.seq * d.n};
    for (int k = 0; k < 3; ++k)
      for (int64_t i = 0; i < counts[k]; ++i)
        outputs[size_t(2 + k)].as<T>()[i] = T(parts[k][i]);
    return Status();
  });
}

void addSelectiveScanKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"selective_scan", selectiveScan},
                             {"selective_scan_state", selectiveScanState},
                             {"selective_scan_grad", selectiveScanGrad},
                             {"selective_scan_state_grad", selectiveScanStateGrad},
                             {"selective_scan_carry", scanCarry},
                             {"selective_scan_carry_combine", scanCarryCombine}});
}

} // namespace cuda
} // namespace longctx
