//===- Layout.cpp - Data movement kernels: transpose, slice, gather, ... --===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"

namespace longctx {
namespace cpu {

namespace {

/// A transposition tile: 32x32 elements keep both the read and the write
/// side of a tile in L1.
constexpr int64_t kTile = 32;

template <typename T>
void stridedCopyTyped(const Shape &outShape,
                      const std::vector<int64_t> &inStrides, const T *in,
                      T *out) {
  const int64_t total = numElements(outShape);
  if (total == 0)
    return;
  StridedLoop<2> loop =
      makeStridedLoop<2>(outShape, {contiguousStrides(outShape), inStrides});
  const bool parallel = total >= kParallelGrain;
  const int rank = int(loop.shape.size());
  const int64_t sIn = loop.innerStride(1);

  // Transposing copy (the input is contiguous along the next-to-last output
  // dim): go tile by tile so neither side strides through memory.
  if (rank >= 2 && sIn != 1 && sIn != 0 && loop.strides[1][rank - 2] == 1 &&
      loop.shape[rank - 2] >= kTile / 2 && loop.inner() >= kTile / 2) {
    const int64_t rows = loop.shape[rank - 2], cols = loop.inner();
    const int64_t matrices = total / (rows * cols);
    const int64_t rowTiles = (rows + kTile - 1) / kTile;
    const int64_t tasks = matrices * rowTiles;
#pragma omp parallel for schedule(static) if (parallel && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      int64_t mat = t / rowTiles, r0 = (t % rowTiles) * kTile;
      int64_t r1 = std::min(rows, r0 + kTile);
      int64_t inOff = 0, rest = mat;
      for (int d = rank - 3; d >= 0; --d) {
        inOff += (rest % loop.shape[d]) * loop.strides[1][d];
        rest /= loop.shape[d];
      }
      const T *src = in + inOff;
      T *dst = out + mat * rows * cols;
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c)
            dst[r * cols + c] = src[r + c * sIn];
      }
    }
    return;
  }

  forEachRow(loop, parallel, [&](const std::array<int64_t, 2> &off, int64_t n) {
    T *dst = out + off[0];
    const T *src = in + off[1];
    if (sIn == 1)
      std::memcpy(dst, src, size_t(n) * sizeof(T));
    else if (sIn == 0)
      std::fill(dst, dst + n, *src);
    else
      for (int64_t i = 0; i < n; ++i)
        dst[i] = src[i * sIn];
  });
}

/// The adjoint of stridedCopyTyped: out[sum(i_d * outStrides[d])] = in[i...]
/// for every index of inShape (`out` points at the region's first element).
/// The written positions are distinct, so rows can go to different threads.
template <typename T>
void stridedScatterTyped(const Shape &inShape,
                         const std::vector<int64_t> &outStrides, const T *in,
                         T *out) {
  const int64_t total = numElements(inShape);
  if (total == 0)
    return;
  StridedLoop<2> loop =
      makeStridedLoop<2>(inShape, {outStrides, contiguousStrides(inShape)});
  const int64_t sOut = loop.innerStride(0);
  forEachRow(loop, total >= kParallelGrain,
             [&](const std::array<int64_t, 2> &off, int64_t n) {
               T *dst = out + off[0];
               const T *src = in + off[1];
               if (sOut == 1)
                 std::memcpy(dst, src, size_t(n) * sizeof(T));
               else
                 for (int64_t i = 0; i < n; ++i)
                   dst[i * sOut] = src[i];
             });
}

} // namespace

void stridedCopy(size_t elemSize, const Shape &outShape,
                 const std::vector<int64_t> &inStrides, const void *inBase,
                 void *out) {
  switch (elemSize) {
  case 1:
    return stridedCopyTyped(outShape, inStrides,
                            static_cast<const uint8_t *>(inBase),
                            static_cast<uint8_t *>(out));
  case 2:
    return stridedCopyTyped(outShape, inStrides,
                            static_cast<const uint16_t *>(inBase),
                            static_cast<uint16_t *>(out));
  case 4:
    return stridedCopyTyped(outShape, inStrides,
                            static_cast<const uint32_t *>(inBase),
                            static_cast<uint32_t *>(out));
  case 8:
    return stridedCopyTyped(outShape, inStrides,
                            static_cast<const uint64_t *>(inBase),
                            static_cast<uint64_t *>(out));
  }
}

Status resolveTranspose(const char *op, const TensorRef &x, const TensorRef &o,
                        const AttrMap &attrs, std::vector<int64_t> &inStrides) {
  const int64_t rank = x.rank();
  std::vector<int64_t> perm = attrs.getInts("perm");
  if (perm.empty() && !attrs.has("perm")) // ONNX default: reverse the dims
    for (int64_t d = rank - 1; d >= 0; --d)
      perm.push_back(d);
  if (int64_t(perm.size()) != rank)
    return opError(op, "perm has " + std::to_string(perm.size()) +
                           " entries for a rank-" + std::to_string(rank) +
                           " input");
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[p])
      return opError(op, "perm is not a permutation of 0.." +
                             std::to_string(rank - 1));
    seen[p] = true;
  }
  Shape expected(rank);
  std::vector<int64_t> xStrides = contiguousStrides(x.shape);
  inStrides.assign(rank, 0);
  for (int64_t d = 0; d < rank; ++d) {
    expected[d] = x.shape[perm[d]];
    inStrides[d] = xStrides[perm[d]];
  }
  return checkShape(op, "output", o.shape, expected);
}

/// Checks the starts/steps (and optional sizes) attributes of a slice of
/// `big` with shape `small` and resolves them to element offsets.
Status resolveSlice(const char *op, const AttrMap &attrs, const Shape &big,
                    const Shape &small, const char *smallName,
                    SliceRegion &region) {
  const int64_t rank = int64_t(big.size());
  std::vector<int64_t> starts = attrs.getInts("starts");
  std::vector<int64_t> steps = attrs.getInts("steps");
  if (steps.empty() && !attrs.has("steps"))
    steps.assign(rank, 1);
  if (int64_t(starts.size()) != rank || int64_t(steps.size()) != rank)
    return opError(op, "starts and steps need " + std::to_string(rank) +
                           " entries each");
  if (int64_t(small.size()) != rank)
    return opError(op, std::string(smallName) + " rank " +
                           std::to_string(small.size()) +
                           " differs from rank " + std::to_string(rank));
  // The op also carries `sizes`; when present it must be the sliced shape.
  if (attrs.has("sizes"))
    if (Status s = checkShape(op, smallName, small, attrs.getInts("sizes")); !s)
      return s;
  std::vector<int64_t> bigStrides = contiguousStrides(big);
  region.base = 0;
  region.strides.assign(rank, 0);
  const bool empty = numElements(small) == 0;
  for (int64_t d = 0; d < rank; ++d) {
    if (steps[d] == 0)
      return opError(op, "step of dim " + std::to_string(d) + " is 0");
    if (empty)
      continue;
    int64_t first = starts[d];
    int64_t last = first + (small[d] - 1) * steps[d];
    if (first < 0 || first >= big[d] || last < 0 || last >= big[d])
      return opError(op, "dim " + std::to_string(d) + ": indices " +
                             std::to_string(first) + ".." +
                             std::to_string(last) + " of a dim of size " +
                             std::to_string(big[d]));
    region.base += first * bigStrides[d];
    region.strides[d] = steps[d] * bigStrides[d];
  }
  return Status();
}

namespace {

/// Common checks of single-input data-movement kernels.
Status checkMove(const char *op, const std::vector<TensorRef> &inputs,
                 const std::vector<TensorRef> &outputs) {
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  return checkDType(op, "output", outputs[0].dtype, inputs[0].dtype);
}

Status transposeKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttrMap &attrs) {
  const char *op = "transpose";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  std::vector<int64_t> inStrides;
  if (Status s = resolveTranspose(op, x, o, attrs, inStrides); !s)
    return s;
  stridedCopy(dtypeSize(x.dtype), o.shape, inStrides, x.data, o.data);
  return Status();
}

Status reshapeKernel(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "reshape";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (x.numElements() != o.numElements())
    return opError(op, "cannot reshape " + shapeToString(x.shape) + " to " +
                           shapeToString(o.shape));
  if (x.numElements() && o.data != x.data) // in place: nothing to move
    std::memcpy(o.data, x.data, x.bytes());
  return Status();
}

Status expandKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "expand";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (!broadcastsTo(x.shape, o.shape))
    return opError(op, "cannot broadcast " + shapeToString(x.shape) + " to " +
                           shapeToString(o.shape));
  stridedCopy(dtypeSize(x.dtype), o.shape, broadcastStrides(x.shape, o.shape),
              x.data, o.data);
  return Status();
}

Status sliceKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttrMap &attrs) {
  const char *op = "slice";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  SliceRegion region;
  if (Status s = resolveSlice(op, attrs, x.shape, o.shape, "output", region);
      !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  stridedCopy(dtypeSize(x.dtype), o.shape, region.strides,
              static_cast<const char *>(x.data) +
                  region.base * int64_t(dtypeSize(x.dtype)),
              o.data);
  return Status();
}

/// The adjoint of slice: zeros, with src written to the region slice reads.
Status sliceScatterKernel(const std::vector<TensorRef> &inputs,
                          const std::vector<TensorRef> &outputs,
                          const AttrMap &attrs) {
  const char *op = "slice_scatter";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &src = inputs[0], &o = outputs[0];
  SliceRegion region;
  if (Status s = resolveSlice(op, attrs, o.shape, src.shape, "src", region); !s)
    return s;
  zeroFill(o.data, o.bytes());
  if (src.numElements() == 0)
    return Status();
  return dispatchBySize(op, o.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    stridedScatterTyped(src.shape, region.strides, src.as<T>(),
                        o.as<T>() + region.base);
    return Status();
  });
}

Status concatKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs) {
  const char *op = "concat";
  if (Status s = checkArity(op, inputs, 1, SIZE_MAX, outputs); !s)
    return s;
  const TensorRef &o = outputs[0];
  int64_t outer = 0, inner = 0;
  if (Status s = resolveConcat(op, inputs, o, attrs, outer, inner); !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  const int64_t axis = attrs.getInt("axis", 0);
  const int64_t outRow = o.shape[axis] * inner;
  char *dst = static_cast<char *>(o.data);
  // Each output row [axis..] is the inputs' rows laid end to end.
#pragma omp parallel for schedule(static) if (outer > 1 && o.numElements() >=  \
                                                               kParallelGrain)
  for (int64_t r = 0; r < outer; ++r) {
    char *row = dst + r * outRow;
    for (const TensorRef &x : inputs) {
      int64_t bytes = x.shape[axis] * inner;
      if (bytes)
        std::memcpy(row, static_cast<const char *>(x.data) + r * bytes,
                    size_t(bytes));
      row += bytes;
    }
  }
  return Status();
}

/// Every index of a gather or scatter_add in range, checked before the data
/// loops run so they cannot fail halfway.
Status checkIndexValues(const char *op, const TensorRef &indices, const GatherView &view) {
  for (int64_t i = 0; i < view.numIdx; ++i) {
    int64_t v = indexAt(indices, i);
    if (v < -view.axisLen || v >= view.axisLen)
      return opError(op, "index " + std::to_string(v) +
                             " out of range for a dim of size " +
                             std::to_string(view.axisLen));
  }
  return Status();
}

Status gatherKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs) {
  const char *op = "gather";
  GatherView view;
  if (Status s = resolveGatherOperands(op, false, inputs, outputs, attrs, view); !s)
    return s;
  const TensorRef &data = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (Status s = checkIndexValues(op, indices, view); !s)
    return s;
  if (o.numElements() == 0)
    return Status();
  const int64_t axisLen = view.axisLen, numIdx = view.numIdx,
                inner = view.inner;
  const int64_t items = view.outer * numIdx;
  return dispatchBySize(op, data.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *src = data.as<T>();
    T *dst = o.as<T>();
#pragma omp parallel for schedule(static) if (o.numElements() >= kParallelGrain)
    for (int64_t it = 0; it < items; ++it) {
      int64_t r = it / numIdx, v = indexAt(indices, it % numIdx);
      if (v < 0)
        v += axisLen;
      const T *s = src + (r * axisLen + v) * inner;
      T *d = dst + it * inner;
      if (inner == 1)
        *d = *s;
      else
        std::memcpy(d, s, size_t(inner) * sizeof(T));
    }
    return Status();
  });
}

/// The adjoint of gather: out = 0, out[.., idx[p], ..] += grad[.., p, ..].
/// Index positions are bucketed by the row they hit (a stable counting
/// sort), so each output row [outer, v] is summed by one thread, in index
/// order and in double: race-free and independent of the thread count.
Status scatterAddKernel(const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs,
                        const AttrMap &attrs) {
  const char *op = "scatter_add";
  GatherView view;
  if (Status s = resolveGatherOperands(op, true, inputs, outputs, attrs, view); !s)
    return s;
  const TensorRef &grad = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (Status s = checkIndexValues(op, indices, view); !s)
    return s;
  return dispatchFloat(op, o.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if (o.numElements() == 0)
      return Status();
    const int64_t axisLen = view.axisLen, numIdx = view.numIdx,
                  inner = view.inner;
    // first[v]..first[v+1]: the positions p (ascending) with index v.
    std::vector<int64_t> first(size_t(axisLen) + 1, 0);
    std::vector<int64_t> order(static_cast<size_t>(numIdx));
    auto row = [&](int64_t p) {
      int64_t v = indexAt(indices, p);
      return v < 0 ? v + axisLen : v;
    };
    for (int64_t p = 0; p < numIdx; ++p)
      ++first[row(p) + 1];
    for (int64_t v = 0; v < axisLen; ++v)
      first[v + 1] += first[v];
    {
      std::vector<int64_t> next(first.begin(), first.end() - 1);
      for (int64_t p = 0; p < numIdx; ++p)
        order[next[row(p)]++] = p;
    }
    const T *pg = grad.as<T>();
    T *po = o.as<T>();
    const int64_t items = view.outer * axisLen;
    const bool parallel =
        o.numElements() + grad.numElements() >= kParallelGrain && items > 1;
#pragma omp parallel if (parallel)
    {
      std::vector<double> acc(std::is_same_v<T, double> ? 0 : size_t(inner));
      // Dynamic: a frequent index (a common token) makes its row heavy.
#pragma omp for schedule(dynamic, 16)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t r = it / axisLen, v = it % axisLen;
        T *dst = po + it * inner;
        const int64_t b = first[v], e = first[v + 1];
        const T *gBase = pg + r * numIdx * inner;
        if (b == e) {
          std::fill(dst, dst + inner, T(0));
        } else if (e - b == 1) {
          std::memcpy(dst, gBase + order[b] * inner, size_t(inner) * sizeof(T));
        } else {
          double *sum;
          if constexpr (std::is_same_v<T, double>)
            sum = dst;
          else
            sum = acc.data();
          std::fill(sum, sum + inner, 0.0);
          for (int64_t k = b; k < e; ++k) {
            const T *g = gBase + order[k] * inner;
#pragma omp simd
            for (int64_t j = 0; j < inner; ++j)
              sum[j] += double(g[j]);
          }
          if constexpr (!std::is_same_v<T, double>)
            for (int64_t j = 0; j < inner; ++j)
              dst[j] = T(sum[j]);
        }
      }
    }
    return Status();
  });
}

Status triluKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttrMap &attrs) {
  const char *op = "trilu";
  if (Status s = checkMove(op, inputs, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (x.rank() < 2)
    return opError(op, "input must have rank >= 2");
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  const bool upper = attrs.getInt("upper", 1) != 0;
  const int64_t k = attrs.getInt("k", 0);
  const int64_t rows = x.shape[x.rank() - 2], cols = x.shape.back();
  const int64_t allRows = x.numElements() / std::max<int64_t>(cols, 1);
  if (x.numElements() == 0)
    return Status();
  const int64_t esize = int64_t(dtypeSize(x.dtype));
  const char *src = static_cast<const char *>(x.data);
  char *dst = static_cast<char *>(o.data);
  // Row i keeps columns [i+k, cols) (upper) or [0, i+k] (lower); all-zero
  // bytes are 0 in every dtype.
#pragma omp parallel for schedule(static) if (x.numElements() >= kParallelGrain)
  for (int64_t r = 0; r < allRows; ++r) {
    int64_t i = r % rows;
    int64_t lo = upper ? std::clamp<int64_t>(i + k, 0, cols) : 0;
    int64_t hi = upper ? cols : std::clamp<int64_t>(i + k + 1, 0, cols);
    const char *s = src + r * cols * esize;
    char *d = dst + r * cols * esize;
    if (lo > 0)
      std::memset(d, 0, size_t(lo * esize));
    if (hi > lo)
      std::memcpy(d + lo * esize, s + lo * esize, size_t((hi - lo) * esize));
    else
      hi = lo;
    if (hi < cols)
      std::memset(d + hi * esize, 0, size_t((cols - hi) * esize));
  }
  return Status();
}

Status rangeKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs,
                   const AttrMap &attrs) {
  const char *op = "range";
  if (Status s = checkArity(op, inputs, 0, 0, outputs); !s)
    return s;
  const TensorRef &o = outputs[0];
  const int64_t n = o.numElements();
  return dispatchNumeric(op, o.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    T *po = o.as<T>();
    if constexpr (kIsFloat<T>) {
      // start + i*delta per element: no error accumulates along the range.
      const double start = attrs.getFloat("start", 0),
                   delta = attrs.getFloat("delta", 1);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i)
        po[i] = T(start + double(i) * delta);
      return Status();
    } else if constexpr (kIsInt<T>) {
      auto intAttr = [&](const char *name, int64_t fallback) {
        return attrIsInt(attrs, name) ? attrs.getInt(name)
                                      : floatToInt<int64_t>(attrs.getFloat(
                                            name, double(fallback)));
      };
      const uint64_t start = uint64_t(intAttr("start", 0));
      const uint64_t delta = uint64_t(intAttr("delta", 1));
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i)
        po[i] = T(int64_t(start + uint64_t(i) * delta));
      return Status();
    } else {
      return unsupportedDType(op, o.dtype);
    }
  });
}

Status fillKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const char *op = "fill";
  if (Status s = checkArity(op, inputs, 0, 0, outputs); !s)
    return s;
  const TensorRef &o = outputs[0];
  const int64_t n = o.numElements();
  return dispatchAny(op, o.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    T v;
    // An integer attribute fills integer tensors exactly (beyond 2^53).
    if (attrIsInt(attrs, "value") && std::is_integral_v<T>)
      v = convertScalar<T>(attrs.getInt("value"));
    else
      v = convertScalar<T>(attrs.getFloat("value", 0));
    T *po = o.as<T>();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i)
      po[i] = v;
    return Status();
  });
}

} // namespace

void addLayoutKernels(KernelTable &table) {
  table.insert(table.end(), {
                                {"transpose", transposeKernel},
                                {"reshape", reshapeKernel},
                                {"expand", expandKernel},
                                {"slice", sliceKernel},
                                {"slice_scatter", sliceScatterKernel},
                                {"concat", concatKernel},
                                {"gather", gatherKernel},
                                {"scatter_add", scatterAddKernel},
                                {"trilu", triluKernel},
                                {"range", rangeKernel},
                                {"fill", fillKernel},
                            });
}

Status resolveGatherShape(const char *op, const Shape &data, const TensorRef &indices,
                          const Shape &gathered, const char *gatheredName, const AttrMap &attrs,
                          GatherView &view) {
  if (Status s = checkIndexDType(op, "indices", indices); !s)
    return s;
  const int64_t rank = int64_t(data.size());
  const int64_t axis = attrs.getInt("axis", 0);
  if (axis < 0 || axis >= rank)
    return opError(op, "axis " + std::to_string(axis) +
                           " out of range for rank " + std::to_string(rank));
  Shape expected(data.begin(), data.begin() + axis);
  expected.insert(expected.end(), indices.shape.begin(), indices.shape.end());
  expected.insert(expected.end(), data.begin() + axis + 1, data.end());
  if (Status s = checkShape(op, gatheredName, gathered, expected); !s)
    return s;
  view.axisLen = data[axis];
  view.numIdx = indices.numElements();
  view.outer = view.inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    view.outer *= data[d];
  for (int64_t d = axis + 1; d < rank; ++d)
    view.inner *= data[d];
  return Status();
}

Status resolveGatherOperands(const char *op, bool scatter, const std::vector<TensorRef> &inputs,
                             const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                             GatherView &view) {
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &in = inputs[0], &indices = inputs[1], &o = outputs[0];
  if (scatter) {
    if (Status s = checkDType(op, "grad", in.dtype, o.dtype); !s)
      return s;
    return resolveGatherShape(op, o.shape, indices, in.shape, "grad", attrs, view);
  }
  if (Status s = checkDType(op, "output", o.dtype, in.dtype); !s)
    return s;
  return resolveGatherShape(op, in.shape, indices, o.shape, "output", attrs, view);
}

Status resolveConcat(const char *op, const std::vector<TensorRef> &inputs, const TensorRef &o,
                     const AttrMap &attrs, int64_t &outer, int64_t &innerBytes) {
  const int64_t rank = o.rank();
  const int64_t axis = attrs.getInt("axis", 0);
  if (axis < 0 || axis >= rank)
    return opError(op, "axis " + std::to_string(axis) +
                           " out of range for rank " + std::to_string(rank));
  int64_t axisTotal = 0;
  for (const TensorRef &x : inputs) {
    if (Status s = checkDType(op, "input", x.dtype, o.dtype); !s)
      return s;
    bool match = x.rank() == rank;
    for (int64_t d = 0; match && d < rank; ++d)
      match = d == axis || x.shape[d] == o.shape[d];
    if (!match)
      return opError(op, "input of shape " + shapeToString(x.shape) +
                             " does not fit output " + shapeToString(o.shape) +
                             " along axis " + std::to_string(axis));
    axisTotal += x.shape[axis];
  }
  if (axisTotal != o.shape[axis])
    return opError(op, "inputs add up to " + std::to_string(axisTotal) +
                           " along axis " + std::to_string(axis) +
                           ", output has " + std::to_string(o.shape[axis]));
  outer = 1;
  innerBytes = int64_t(dtypeSize(o.dtype));
  for (int64_t d = 0; d < axis; ++d)
    outer *= o.shape[d];
  for (int64_t d = axis + 1; d < rank; ++d)
    innerBytes *= o.shape[d];
  return Status();
}

} // namespace cpu
} // namespace longctx
