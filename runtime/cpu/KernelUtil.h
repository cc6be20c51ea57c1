//===- KernelUtil.h - Shared helpers of the CPU kernels (private) ---------===//
//
// Argument checks, dtype dispatch, broadcasting and the strided row iterator
// every layout-sensitive kernel is built on. Not part of the runtime's API.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/DType.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace longctx {
namespace cpu {

/// Loops over fewer elements than this stay serial: a parallel region costs
/// a few microseconds, more than the work it would split.
constexpr int64_t kParallelGrain = int64_t(1) << 15;

inline int maxThreads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// The calling thread's number in its parallel team (0 outside one).
inline int threadNum() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

//===----------------------------------------------------------------------===//
// Errors and argument checks
//===----------------------------------------------------------------------===//

inline Status opError(const char *op, const std::string &why) {
  return Status::error(std::string(op) + ": " + why);
}

/// Checks the input count is in [minIn, maxIn], the output count is in
/// [numOut, maxOut] (maxOut 0: exactly numOut), and that every tensor with
/// elements has data.
inline Status checkArity(const char *op, const std::vector<TensorRef> &inputs,
                         size_t minIn, size_t maxIn,
                         const std::vector<TensorRef> &outputs,
                         size_t numOut = 1, size_t maxOut = 0) {
  if (inputs.size() < minIn || inputs.size() > maxIn) {
    std::string want =
        minIn == maxIn ? std::to_string(minIn)
                       : std::to_string(minIn) + ".." + std::to_string(maxIn);
    return opError(op, "expected " + want + " inputs, got " +
                           std::to_string(inputs.size()));
  }
  maxOut = std::max(maxOut, numOut);
  if (outputs.size() < numOut || outputs.size() > maxOut)
    return opError(op, "expected " +
                           (numOut == maxOut ? std::to_string(numOut)
                                             : std::to_string(numOut) + ".." +
                                                   std::to_string(maxOut)) +
                           " outputs, got " + std::to_string(outputs.size()));
  for (const auto *list : {&inputs, &outputs})
    for (const TensorRef &t : *list) {
      for (int64_t d : t.shape)
        if (d < 0)
          return opError(op, "negative dimension in shape " +
                                 shapeToString(t.shape));
      if (!t.data && t.numElements() != 0)
        return opError(op, "tensor of shape " + shapeToString(t.shape) +
                               " has no data");
    }
  return Status();
}

inline Status checkDType(const char *op, const char *what, DType got,
                         DType want) {
  if (got == want)
    return Status();
  return opError(op, std::string(what) + " has dtype " + dtypeName(got) +
                         ", expected " + dtypeName(want));
}

inline Status checkShape(const char *op, const char *what, const Shape &got,
                         const Shape &want) {
  if (got == want)
    return Status();
  return opError(op, std::string(what) + " has shape " + shapeToString(got) +
                         ", expected " + shapeToString(want));
}

inline Status unsupportedDType(const char *op, DType dtype) {
  return opError(op, std::string("unsupported dtype ") + dtypeName(dtype));
}

//===----------------------------------------------------------------------===//
// Dtype dispatch: `fn` is a generic lambda called with a value of the C++
// element type, e.g. [&](auto tag) { using T = decltype(tag); ... }.
//===----------------------------------------------------------------------===//

/// 16-bit float storage types; arithmetic goes through float (cast/fill only).
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

template <typename T> constexpr bool kIsFloat = std::is_floating_point_v<T>;
template <typename T>
constexpr bool kIsInt =
    std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>;
/// Bool tensors are one byte holding 0 or 1.
using BoolT = uint8_t;

template <typename Fn> Status dispatchFloat(const char *op, DType d, Fn &&fn) {
  switch (d) {
  case DType::F32:
    return fn(float());
  case DType::F64:
    return fn(double());
  default:
    return unsupportedDType(op, d);
  }
}

/// f32, f64, i64, i32 and bool; the kernel filters with `if constexpr`.
template <typename Fn>
Status dispatchNumeric(const char *op, DType d, Fn &&fn) {
  switch (d) {
  case DType::F32:
    return fn(float());
  case DType::F64:
    return fn(double());
  case DType::I64:
    return fn(int64_t());
  case DType::I32:
    return fn(int32_t());
  case DType::Bool:
    return fn(BoolT());
  default:
    return unsupportedDType(op, d);
  }
}

/// Every dtype, as its storage type (for cast and fill).
template <typename Fn> Status dispatchAny(const char *op, DType d, Fn &&fn) {
  switch (d) {
  case DType::F32:
    return fn(float());
  case DType::F64:
    return fn(double());
  case DType::F16:
    return fn(Half());
  case DType::BF16:
    return fn(BFloat16());
  case DType::I64:
    return fn(int64_t());
  case DType::I32:
    return fn(int32_t());
  case DType::I8:
    return fn(int8_t());
  case DType::U8:
    return fn(uint8_t());
  case DType::Bool:
    return fn(BoolT());
  }
  return unsupportedDType(op, d);
}

/// Data movement only depends on the element size: dispatch on an unsigned
/// integer of that size.
template <typename Fn> Status dispatchBySize(const char *op, DType d, Fn &&fn) {
  switch (dtypeSize(d)) {
  case 1:
    return fn(uint8_t());
  case 2:
    return fn(uint16_t());
  case 4:
    return fn(uint32_t());
  case 8:
    return fn(uint64_t());
  default:
    return unsupportedDType(op, d);
  }
}

//===----------------------------------------------------------------------===//
// Scalar conversions (cast, fill)
//===----------------------------------------------------------------------===//

inline float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: value is mant * 2^-24, exact in float.
    float f = float(mant) * (1.0f / 16777216.0f);
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) // inf or nan (keep nan quiet)
    return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);
  if (absx >= 0x477ff000u) // rounds to >= 65520: overflow to inf
    return sign | 0x7c00;
  if (absx < 0x38800000u) { // below the smallest normal half: subnormal or 0
    // Adding 0.5 (2^-1) aligns the half subnormal ulp (2^-24) with the float
    // ulp of 0.5 and rounds to nearest even in hardware.
    float a;
    std::memcpy(&a, &absx, 4);
    a += 0.5f;
    uint32_t r;
    std::memcpy(&r, &a, 4);
    return sign | uint16_t(r - 0x3f000000u);
  }
  uint32_t mantOdd = (absx >> 13) & 1;
  absx += 0xc8000fffu + mantOdd; // rebias exponent (-112<<23) and round
  return sign | uint16_t(absx >> 13);
}

inline float bf16ToFloat(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t floatToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) // nan: keep it nan
    return uint16_t((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1); // round to nearest even
  return uint16_t(x >> 16);
}

/// Float to integer: truncates toward zero, saturates out-of-range values and
/// maps NaN to 0 (plain static_cast is undefined behaviour there).
template <typename I, typename F> inline I floatToInt(F x) {
  if (x != x)
    return I(0);
  // min and max+1 are powers of two, hence exact in any float type.
  constexpr double lo = double(std::numeric_limits<I>::min());
  constexpr double hiExclusive = double(std::numeric_limits<I>::max()) + 1.0;
  double t = std::trunc(double(x));
  if (t >= hiExclusive)
    return std::numeric_limits<I>::max();
  if (t < lo)
    return std::numeric_limits<I>::min();
  return I(t);
}

/// Converts between any two storage types with `cast` semantics.
template <typename To, typename From> inline To convertScalar(From v) {
  if constexpr (std::is_same_v<From, Half>) {
    return convertScalar<To>(halfToFloat(v.bits));
  } else if constexpr (std::is_same_v<From, BFloat16>) {
    return convertScalar<To>(bf16ToFloat(v.bits));
  } else if constexpr (std::is_same_v<To, Half>) {
    return Half{floatToHalf(float(v))};
  } else if constexpr (std::is_same_v<To, BFloat16>) {
    return BFloat16{floatToBF16(float(v))};
  } else if constexpr (std::is_same_v<To, BoolT>) {
    return BoolT(v != From(0));
  } else if constexpr (std::is_same_v<From, BoolT>) {
    return To(v != 0);
  } else if constexpr (std::is_floating_point_v<From> &&
                       std::is_integral_v<To>) {
    return floatToInt<To>(v);
  } else {
    return To(v);
  }
}

//===----------------------------------------------------------------------===//
// Shapes, strides, broadcasting
//===----------------------------------------------------------------------===//

inline std::vector<int64_t> contiguousStrides(const Shape &shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/// Element strides of `in` viewed with `out`'s rank (right-aligned, numpy
/// style): 0 on broadcast and missing leading dims.
inline std::vector<int64_t> broadcastStrides(const Shape &in,
                                             const Shape &out) {
  std::vector<int64_t> strides(out.size(), 0);
  std::vector<int64_t> inStrides = contiguousStrides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    strides[off + i] = in[i] == 1 ? 0 : inStrides[i];
  return strides;
}

/// Multidirectional (numpy) broadcast of `shapes`, or nullopt if they clash.
inline std::optional<Shape>
broadcastShapes(const std::vector<const Shape *> &shapes) {
  size_t rank = 0;
  for (const Shape *s : shapes)
    rank = std::max(rank, s->size());
  Shape out(rank, 1);
  for (const Shape *s : shapes) {
    size_t off = rank - s->size();
    for (size_t i = 0; i < s->size(); ++i) {
      int64_t d = (*s)[i];
      int64_t &o = out[off + i];
      if (d == o || d == 1)
        continue;
      if (o != 1)
        return std::nullopt;
      o = d;
    }
  }
  return out;
}

/// Whether `in` broadcasts to exactly `out` (unidirectional).
inline bool broadcastsTo(const Shape &in, const Shape &out) {
  if (in.size() > out.size())
    return false;
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] != 1 && in[i] != out[off + i])
      return false;
  return true;
}

/// Checks that the inputs broadcast multidirectionally to exactly `out`.
/// x viewed as [outer, n, inner] around one axis.
struct AxisView {
  int64_t axis = 0, outer = 1, n = 1, inner = 1;
};

/// For ops that map x to an output of x's dtype and shape along one axis
/// (softmax, cumsum, layer_norm): checks the output and resolves the `axis`
/// attribute (default: the last dim).
inline Status viewAroundAxis(const char *op, const TensorRef &x, const TensorRef &o,
                             const AttrMap &attrs, AxisView &view) {
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  const int64_t rank = x.rank();
  view.axis = attrs.getInt("axis", rank - 1);
  if (view.axis < 0 || view.axis >= rank)
    return opError(op, "axis " + std::to_string(view.axis) + " out of range for rank " +
                           std::to_string(rank));
  view.outer = view.inner = 1;
  for (int64_t d = 0; d < view.axis; ++d)
    view.outer *= x.shape[d];
  for (int64_t d = view.axis + 1; d < rank; ++d)
    view.inner *= x.shape[d];
  view.n = x.shape[view.axis];
  return Status();
}

inline Status checkBroadcast(const char *op,
                             const std::vector<const Shape *> &ins,
                             const Shape &out) {
  std::optional<Shape> b = broadcastShapes(ins);
  if (!b) {
    std::string s;
    for (const Shape *in : ins)
      s += (s.empty() ? "" : ", ") + shapeToString(*in);
    return opError(op, "shapes " + s + " do not broadcast");
  }
  return checkShape(op, "output", out, *b);
}

//===----------------------------------------------------------------------===//
// Strided row iteration
//
// N operands (operand 0 is usually the contiguous output) walk one shape,
// each with its own element strides (0 for broadcast, negative for reversed
// slices). Dims of size 1 are dropped and adjacent dims that are contiguous
// for every operand are merged, so a same-shape op becomes one long row and a
// trailing-dims broadcast becomes [rows, inner] with unit inner strides.
//===----------------------------------------------------------------------===//

template <int N> struct StridedLoop {
  Shape shape; // collapsed, outermost first, never empty
  std::array<std::vector<int64_t>, N> strides;

  int64_t inner() const { return shape.back(); }
  int64_t innerStride(int k) const { return strides[k].back(); }
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i)
      r *= shape[i];
    return r;
  }
};

template <int N>
StridedLoop<N>
makeStridedLoop(const Shape &shape,
                const std::array<std::vector<int64_t>, N> &strides) {
  // Built innermost first, reversed at the end.
  StridedLoop<N> loop;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1)
      continue;
    if (!loop.shape.empty()) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        mergeable &=
            strides[k][d] == loop.strides[k].back() * loop.shape.back();
      if (mergeable) {
        loop.shape.back() *= shape[d];
        continue;
      }
    }
    loop.shape.push_back(shape[d]);
    for (int k = 0; k < N; ++k)
      loop.strides[k].push_back(strides[k][d]);
  }
  if (loop.shape.empty()) {
    loop.shape.push_back(1);
    for (int k = 0; k < N; ++k)
      loop.strides[k].push_back(0);
  }
  std::reverse(loop.shape.begin(), loop.shape.end());
  for (int k = 0; k < N; ++k)
    std::reverse(loop.strides[k].begin(), loop.strides[k].end());
  return loop;
}

/// Calls body(offsets, len) for every row of `loop` (or a segment of one):
/// offsets[k] is operand k's element offset of the first element; the `len`
/// elements are spaced by loop.innerStride(k). With many rows, rows are split
/// into one contiguous chunk per thread, each decoding its first index once
/// and then counting; with few long rows (a same-shape op is a single row),
/// the rows themselves are cut into segments so every thread gets work.
template <int N, typename Body>
void forEachRow(const StridedLoop<N> &loop, bool parallel, Body &&body) {
  const int64_t rows = loop.rows();
  const int64_t len = loop.inner();
  const int outerRank = int(loop.shape.size()) - 1;
  const int64_t wantItems = parallel ? int64_t(maxThreads()) * 4 : 1;
  auto decodeRow = [&](int64_t row, std::vector<int64_t> &idx,
                       std::array<int64_t, N> &off) {
    off.fill(0);
    for (int d = outerRank - 1; d >= 0; --d) {
      idx[d] = row % loop.shape[d];
      row /= loop.shape[d];
      for (int k = 0; k < N; ++k)
        off[k] += idx[d] * loop.strides[k][d];
    }
  };

  if (parallel && rows < wantItems && len >= 2048) {
    // Few long rows: split each row into segments of at least 1024 elements.
    const int64_t segs =
        std::min<int64_t>((wantItems + rows - 1) / rows, len / 1024);
    const int64_t items = rows * segs;
#pragma omp parallel for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      int64_t row = it / segs, seg = it % segs;
      int64_t begin = len * seg / segs, end = len * (seg + 1) / segs;
      std::vector<int64_t> idx(outerRank > 0 ? outerRank : 1, 0);
      std::array<int64_t, N> off;
      decodeRow(row, idx, off);
      for (int k = 0; k < N; ++k)
        off[k] += begin * loop.strides[k].back();
      body(off, end - begin);
    }
    return;
  }

  const int64_t numChunks = std::min<int64_t>(rows, wantItems);
#pragma omp parallel for schedule(static) if (numChunks > 1)
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t begin = rows * c / numChunks, end = rows * (c + 1) / numChunks;
    if (begin == end)
      continue;
    std::vector<int64_t> idx(outerRank > 0 ? outerRank : 1, 0);
    std::array<int64_t, N> off;
    decodeRow(begin, idx, off);
    for (int64_t r = begin; r < end; ++r) {
      body(off, len);
      for (int d = outerRank - 1; d >= 0; --d) {
        for (int k = 0; k < N; ++k)
          off[k] += loop.strides[k][d];
        if (++idx[d] < loop.shape[d])
          break;
        for (int k = 0; k < N; ++k)
          off[k] -= loop.strides[k][d] * loop.shape[d];
        idx[d] = 0;
      }
    }
  }
}

/// out[i...] = in[base + sum(i_d * inStrides[d])] for every index of
/// outShape: the one data-movement routine behind transpose, slice, expand and
/// gemm's bias broadcast. Defined in Layout.cpp.
void stridedCopy(size_t elemSize, const Shape &outShape,
                 const std::vector<int64_t> &inStrides, const void *inBase,
                 void *out);

/// Sets `bytes` bytes at `p` to zero (0 in every dtype), in parallel when
/// large.
inline void zeroFill(void *p, size_t bytes) {
  constexpr size_t kChunk = size_t(1) << 20;
  char *c = static_cast<char *>(p);
  const int64_t chunks = int64_t((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t k = 0; k < chunks; ++k)
    std::memset(c + size_t(k) * kChunk, 0,
                std::min(kChunk, bytes - size_t(k) * kChunk));
}

/// Index tensors (gather, scatter_add, cross_entropy targets) are i64 or i32.
inline Status checkIndexDType(const char *op, const char *what,
                              const TensorRef &t) {
  if (t.dtype == DType::I64 || t.dtype == DType::I32)
    return Status();
  return opError(op, std::string(what) + " must be i64 or i32, got " +
                         dtypeName(t.dtype));
}

/// Element i of an i64 or i32 tensor.
inline int64_t indexAt(const TensorRef &t, int64_t i) {
  return t.dtype == DType::I64 ? t.as<int64_t>()[i]
                               : int64_t(t.as<int32_t>()[i]);
}

/// The value of a rank-0 operand (a learning rate, a step count, an upstream
/// scalar gradient) of dtype f32, f64, i64 or i32.
inline Status readScalar(const char *op, const char *what, const TensorRef &t,
                         double &value) {
  if (t.rank() != 0)
    return opError(op, std::string(what) + " must be rank 0, got shape " +
                           shapeToString(t.shape));
  switch (t.dtype) {
  case DType::F32:
    value = double(*t.as<float>());
    return Status();
  case DType::F64:
    value = *t.as<double>();
    return Status();
  case DType::I64:
    value = double(*t.as<int64_t>());
    return Status();
  case DType::I32:
    value = double(*t.as<int32_t>());
    return Status();
  default:
    return opError(op, std::string(what) + " has unsupported dtype " +
                           dtypeName(t.dtype));
  }
}

/// Per-thread double accumulators for a parameter gradient that every row or
/// channel adds into (layer_norm's dscale, selective_scan's dA): thread k of
/// a parallel region adds into slot(k) without races, and reduceInto() sums
/// the slots in thread order, so a fixed thread count gives fixed results.
class ThreadPartials {
public:
  ThreadPartials(int64_t size, int threads = maxThreads())
      : size_(size), threads_(std::max(threads, 1)),
        data_(size_t(size) * size_t(threads_), 0.0) {}
  int64_t size() const { return size_; }
  /// The calling thread's slot (a region may run with fewer threads).
  double *slot() { return data_.data() + int64_t(threadNum()) * size_; }
  template <typename T> void reduceInto(T *out) const {
    const double *d = data_.data();
    const int64_t n = size_, threads = threads_;
#pragma omp parallel for schedule(static) if (n * threads >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t k = 0; k < threads; ++k)
        s += d[k * n + i];
      out[i] = T(s);
    }
  }

private:
  int64_t size_;
  int threads_;
  std::vector<double> data_;
};

/// exp(x) for float without a libm call, so that loops over it vectorise
/// (under `#pragma omp simd`): Cody-Waite reduction x = n ln2 + r, |r| <=
/// ln2/2, and Cephes' degree-7 polynomial for e^r; within 2 ulp of expf for x
/// in [-87, 88]. x is clamped to that range first (below it the result is
/// e^-87 ~ 1.6e-38 instead of a subnormal or 0, above it e^88 instead of inf),
/// NaN gives a finite value: for arguments known to be moderate, such as
/// x - max(x) in a softmax.
inline float fastExp(float x) {
  // The clamp compares bit patterns: float compares may trap, which keeps
  // GCC from turning them into vector selects.
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const uint32_t lo = 0xc2ae0000u; // -87.0f; more negative floats, -inf and
                                   // negative NaNs have larger patterns
  const int32_t hi = 0x42b00000;   // 88.0f; as signed, larger are above it
  u = u > lo ? lo : u;
  u = int32_t(u) > hi ? uint32_t(hi) : u;
  std::memcpy(&x, &u, sizeof x);
  // Round x*log2(e) to the nearest integer by adding 1.5 * 2^23 (no
  // rounding instruction needed below SSE4.1).
  const float shifter = 12582912.0f;
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23; // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/// Reads an attribute that may be stored as an int or a double.
inline bool attrIsInt(const AttrMap &attrs, const std::string &name) {
  auto it = attrs.values().find(name);
  return it != attrs.values().end() &&
         std::holds_alternative<int64_t>(it->second);
}

} // namespace cpu
} // namespace longctx
