//===- Reduction.cpp - reduce_sum/mean/max, softmax and log_softmax -------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include <type_traits>

namespace longctx {
namespace cpu {
namespace {

/// Columns one task owns when reducing along a non-innermost dim: the
/// accumulators stay in L1 while whole rows stream past them.
constexpr int64_t kColumnBlock = 256;

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// Sums accumulate in double (f32 too: long f32 sums otherwise lose digits)
/// and in wrapping int64 for integers.
template <typename T>
using SumAcc = std::conditional_t<kIsFloat<T>, double, int64_t>;

template <bool Mean> struct SumReducer {
  static constexpr const char *name = Mean ? "reduce_mean" : "reduce_sum";
  template <typename T>
  static constexpr bool supports = kIsFloat<T> || (!Mean && kIsInt<T>);
  template <typename T> using Acc = SumAcc<T>;
  template <typename T> static Acc<T> init() { return Acc<T>(0); }
  template <typename T> static Acc<T> combine(Acc<T> a, T x) {
    if constexpr (kIsInt<T>)
      return int64_t(uint64_t(a) + uint64_t(int64_t(x)));
    else
      return a + Acc<T>(x);
  }
  template <typename T> static Acc<T> merge(Acc<T> a, Acc<T> b) {
    if constexpr (kIsInt<T>)
      return int64_t(uint64_t(a) + uint64_t(b));
    else
      return a + b;
  }
  template <typename T> static Acc<T> reduceRow(const T *x, int64_t n) {
    if constexpr (kIsInt<T>) {
      uint64_t s = 0;
      for (int64_t i = 0; i < n; ++i)
        s += uint64_t(int64_t(x[i]));
      return int64_t(s);
    } else {
      Acc<T> s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i)
        s += Acc<T>(x[i]);
      return s;
    }
  }
  template <typename T> static T finalize(Acc<T> a, int64_t count) {
    if constexpr (Mean)
      return T(a / Acc<T>(count));
    else
      return T(a);
  }
};

/// Max propagates NaN, like the binary max; an empty reduction gives -inf
/// (the lowest value for integers).
struct MaxReducer {
  static constexpr const char *name = "reduce_max";
  template <typename T>
  static constexpr bool supports = kIsFloat<T> || kIsInt<T>;
  template <typename T> using Acc = T;
  template <typename T> static T init() {
    if constexpr (kIsFloat<T>)
      return -std::numeric_limits<T>::infinity();
    else
      return std::numeric_limits<T>::lowest();
  }
  template <typename T> static T combine(T a, T x) {
    return (x > a || x != x) ? x : a;
  }
  template <typename T> static T merge(T a, T b) { return combine(a, b); }
  template <typename T> static T reduceRow(const T *x, int64_t n) {
    T m = init<T>();
    bool nan = false;
    for (int64_t i = 0; i < n; ++i) {
      m = x[i] > m ? x[i] : m;
      nan |= x[i] != x[i];
    }
    return nan ? std::numeric_limits<T>::quiet_NaN() : m;
  }
  template <typename T> static T finalize(T a, int64_t) { return a; }
};

/// Input dims merged into runs of kept or reduced dims (size-1 dims dropped).
struct DimGroup {
  int64_t size;
  bool reduced;
};

template <typename Op, typename T>
void runReduce(const T *x, T *out, const Shape &shape,
               const std::vector<bool> &reduced, int64_t count) {
  using Acc = typename Op::template Acc<T>;
  const int64_t total = numElements(shape);
  const bool parallel = total >= kParallelGrain;
  std::vector<DimGroup> groups;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1)
      continue;
    if (!groups.empty() && groups.back().reduced == reduced[d])
      groups.back().size *= shape[d];
    else
      groups.push_back({shape[d], bool(reduced[d])});
  }
  int numReducedGroups = 0;
  for (const DimGroup &g : groups)
    numReducedGroups += g.reduced;

  if (numReducedGroups == 0) { // only size-1 dims reduced: a copy
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t i = 0; i < total; ++i)
      out[i] = Op::template finalize<T>(
          Op::template combine<T>(Op::template init<T>(), x[i]), count);
    return;
  }

  if (numReducedGroups == 1) {
    // [outer kept] [red reduced] [inner kept]
    int64_t outer = 1, red = 1, inner = 1;
    size_t g = 0;
    if (!groups[g].reduced)
      outer = groups[g++].size;
    red = groups[g++].size;
    if (g < groups.size())
      inner = groups[g].size;

    if (inner == 1) {
      if (parallel && outer < maxThreads()) {
        // Few long rows (e.g. a full reduction): split each row.
        const int64_t chunks = int64_t(maxThreads()) * 4;
        std::vector<Acc> partial(chunks);
        for (int64_t o = 0; o < outer; ++o) {
          const T *row = x + o * red;
#pragma omp parallel for schedule(static)
          for (int64_t c = 0; c < chunks; ++c) {
            int64_t b = red * c / chunks, e = red * (c + 1) / chunks;
            partial[c] = Op::template reduceRow<T>(row + b, e - b);
          }
          Acc acc = partial[0];
          for (int64_t c = 1; c < chunks; ++c)
            acc = Op::template merge<T>(acc, partial[c]);
          out[o] = Op::template finalize<T>(acc, count);
        }
        return;
      }
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t o = 0; o < outer; ++o)
        out[o] = Op::template finalize<T>(
            Op::template reduceRow<T>(x + o * red, red), count);
      return;
    }

    // Reduce a middle/leading dim: stream whole rows into column accumulators.
    const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
    const int64_t tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (parallel && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t o = t / blocks, c0 = (t % blocks) * kColumnBlock;
      const int64_t w = std::min(kColumnBlock, inner - c0);
      Acc acc[kColumnBlock];
      for (int64_t j = 0; j < w; ++j)
        acc[j] = Op::template init<T>();
      const T *base = x + o * red * inner + c0;
      for (int64_t r = 0; r < red; ++r) {
        const T *row = base + r * inner;
        for (int64_t j = 0; j < w; ++j)
          acc[j] = Op::template combine<T>(acc[j], row[j]);
      }
      T *dst = out + o * inner + c0;
      for (int64_t j = 0; j < w; ++j)
        dst[j] = Op::template finalize<T>(acc[j], count);
    }
    return;
  }

  // Several separate reduced runs: per output element, walk the reduced
  // index space with an odometer (innermost run as a strided loop).
  std::vector<int64_t> keptSize, keptStride, redSize, redStride;
  int64_t stride = 1;
  for (size_t g = groups.size(); g-- > 0;) {
    (groups[g].reduced ? redSize : keptSize).push_back(groups[g].size);
    (groups[g].reduced ? redStride : keptStride).push_back(stride);
    stride *= groups[g].size;
  }
  // Both lists are innermost first.
  const int64_t numOut = total / count;
  const int64_t innerRed = redSize[0], innerRedStride = redStride[0];
  const int64_t outerRed = count / innerRed;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t q = 0; q < numOut; ++q) {
    int64_t base = 0, rest = q;
    for (size_t i = 0; i < keptSize.size(); ++i) {
      base += (rest % keptSize[i]) * keptStride[i];
      rest /= keptSize[i];
    }
    Acc acc = Op::template init<T>();
    for (int64_t r = 0; r < outerRed; ++r) {
      int64_t off = base, rr = r;
      for (size_t i = 1; i < redSize.size(); ++i) {
        off += (rr % redSize[i]) * redStride[i];
        rr /= redSize[i];
      }
      for (int64_t j = 0; j < innerRed; ++j)
        acc = Op::template combine<T>(acc, x[off + j * innerRedStride]);
    }
    out[q] = Op::template finalize<T>(acc, count);
  }
}

template <typename Op>
Status reduceKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs) {
  const char *op = Op::name;
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  const int64_t rank = x.rank();
  std::vector<int64_t> axes = attrs.getInts("axes");
  if (axes.empty()) // ONNX default: reduce every dim
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  std::vector<bool> reduced(rank, false);
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= rank || (i && axes[i] <= axes[i - 1]))
      return opError(op, "axes must be sorted, distinct and in [0, " +
                             std::to_string(rank) + ")");
    reduced[axes[i]] = true;
  }
  // Either keepdims form is accepted: the layout of the result is the same.
  Shape kept, squeezed;
  int64_t count = 1;
  for (int64_t d = 0; d < rank; ++d) {
    kept.push_back(reduced[d] ? 1 : x.shape[d]);
    if (!reduced[d])
      squeezed.push_back(x.shape[d]);
    else
      count *= x.shape[d];
  }
  if (o.shape != kept && o.shape != squeezed)
    return opError(op, "output has shape " + shapeToString(o.shape) +
                           ", expected " + shapeToString(kept) + " or " +
                           shapeToString(squeezed));
  return dispatchNumeric(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if constexpr (!Op::template supports<T>) {
      return unsupportedDType(op, x.dtype);
    } else {
      T *po = o.as<T>();
      const int64_t numOut = o.numElements();
      if (x.numElements() == 0) { // empty reduction: the identity (or NaN mean)
        for (int64_t i = 0; i < numOut; ++i)
          po[i] = Op::template finalize<T>(Op::template init<T>(), count);
        return Status();
      }
      runReduce<Op>(x.as<T>(), po, x.shape, reduced, count);
      return Status();
    }
  });
}

//===----------------------------------------------------------------------===//
// softmax / log_softmax
//===----------------------------------------------------------------------===//

/// One row along the axis (inner == 1): max, sum of exp in double, scale.
template <bool Log, typename T> void softmaxRow(const T *x, T *y, int64_t n) {
  T m = x[0];
  for (int64_t i = 1; i < n; ++i)
    m = x[i] > m ? x[i] : m;
  double sum = 0;
  if constexpr (Log) {
    for (int64_t i = 0; i < n; ++i)
      sum += double(std::exp(x[i] - m));
    const T logSum = T(std::log(sum));
    for (int64_t i = 0; i < n; ++i)
      y[i] = (x[i] - m) - logSum;
  } else {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = std::exp(x[i] - m);
      sum += double(y[i]);
    }
    const T scale = T(1.0 / sum);
    for (int64_t i = 0; i < n; ++i)
      y[i] *= scale;
  }
}

/// A block of w columns along a non-innermost axis: rows are `inner` apart.
template <bool Log, typename T>
void softmaxColumns(const T *x, T *y, int64_t n, int64_t inner, int64_t w) {
  T m[kColumnBlock];
  double sum[kColumnBlock];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = x[j];
    sum[j] = 0;
  }
  for (int64_t a = 1; a < n; ++a)
    for (int64_t j = 0; j < w; ++j)
      m[j] = x[a * inner + j] > m[j] ? x[a * inner + j] : m[j];
  for (int64_t a = 0; a < n; ++a) {
    const T *xr = x + a * inner;
    T *yr = y + a * inner;
    for (int64_t j = 0; j < w; ++j) {
      T e = std::exp(xr[j] - m[j]);
      if constexpr (!Log)
        yr[j] = e;
      sum[j] += double(e);
    }
  }
  if constexpr (Log) {
    T logSum[kColumnBlock];
    for (int64_t j = 0; j < w; ++j)
      logSum[j] = T(std::log(sum[j]));
    for (int64_t a = 0; a < n; ++a)
      for (int64_t j = 0; j < w; ++j)
        y[a * inner + j] = (x[a * inner + j] - m[j]) - logSum[j];
  } else {
    T scale[kColumnBlock];
    for (int64_t j = 0; j < w; ++j)
      scale[j] = T(1.0 / sum[j]);
    for (int64_t a = 0; a < n; ++a)
      for (int64_t j = 0; j < w; ++j)
        y[a * inner + j] *= scale[j];
  }
}

template <bool Log>
Status softmaxKernel(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const AttrMap &attrs) {
  const char *op = Log ? "log_softmax" : "softmax";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  AxisView view;
  if (Status s = viewAroundAxis(op, x, o, attrs, view); !s)
    return s;
  const int64_t outer = view.outer, inner = view.inner, n = view.n;
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = x.as<T>();
    T *py = o.as<T>();
    const int64_t total = x.numElements();
    if (total == 0)
      return Status();
    const bool parallel = total >= kParallelGrain;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (parallel && outer > 1)
      for (int64_t r = 0; r < outer; ++r)
        softmaxRow<Log>(px + r * n, py + r * n, n);
      return Status();
    }
    const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
    const int64_t tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (parallel && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r = t / blocks, c0 = (t % blocks) * kColumnBlock;
      const int64_t off = r * n * inner + c0;
      softmaxColumns<Log>(px + off, py + off, n, inner,
                          std::min(kColumnBlock, inner - c0));
    }
    return Status();
  });
}

/// Running sum along one axis (ONNX CumSum), optionally exclusive and/or
/// from the end. Accumulates in double for floats so long sequences do not
/// drift.
Status cumsumKernel(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs) {
  const char *op = "cumsum";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  AxisView view;
  if (Status s = viewAroundAxis(op, x, o, attrs, view); !s)
    return s;
  const bool exclusive = attrs.getInt("exclusive", 0) != 0;
  const bool reverse = attrs.getInt("reverse", 0) != 0;
  const int64_t outer = view.outer, inner = view.inner, n = view.n;
  return dispatchNumeric(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, BoolT>) {
      return unsupportedDType(op, x.dtype);
    } else {
      using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
      const T *px = x.as<T>();
      T *py = o.as<T>();
      const int64_t lanes = outer * inner;
#pragma omp parallel for schedule(static) if (x.numElements() >= kParallelGrain && lanes > 1)
      for (int64_t lane = 0; lane < lanes; ++lane) {
        const int64_t base = (lane / inner) * n * inner + lane % inner;
        Acc acc = 0;
        for (int64_t k = 0; k < n; ++k) {
          const int64_t i = base + (reverse ? n - 1 - k : k) * inner;
          if (exclusive) {
            py[i] = T(acc);
            acc += Acc(px[i]);
          } else {
            acc += Acc(px[i]);
            py[i] = T(acc);
          }
        }
      }
      return Status();
    }
  });
}

} // namespace

void addReductionKernels(KernelTable &table) {
  table.insert(table.end(), {
                                {"reduce_sum", reduceKernel<SumReducer<false>>},
                                {"reduce_mean", reduceKernel<SumReducer<true>>},
                                {"reduce_max", reduceKernel<MaxReducer>},
                                {"softmax", softmaxKernel<false>},
                                {"log_softmax", softmaxKernel<true>},
                                {"cumsum", cumsumKernel},
                            });
}

} // namespace cpu
} // namespace longctx
