//===- Normalization.cpp - layer_norm kernel ------------------------------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"

namespace longctx {
namespace cpu {
namespace {

Status layerNormKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttrMap &attrs) {
  const char *op = "layer_norm";
  if (Status s = checkArity(op, inputs, 2, 3, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &scale = inputs[1], &o = outputs[0];
  const TensorRef *bias = inputs.size() == 3 ? &inputs[2] : nullptr;
  if (Status s = checkDType(op, "scale", scale.dtype, x.dtype); !s)
    return s;
  if (bias)
    if (Status s = checkDType(op, "bias", bias->dtype, x.dtype); !s)
      return s;
  AxisView view;
  if (Status s = viewAroundAxis(op, x, o, attrs, view); !s)
    return s;
  const int64_t axis = view.axis;
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  // Normalises over every dim from `axis` on.
  const int64_t rows = view.outer, n = view.n * view.inner;
  // scale and bias cover the normalised dims exactly (any leading 1s).
  Shape normShape(x.shape.begin() + axis, x.shape.end());
  for (const TensorRef *p : {&scale, bias})
    if (p && (p->numElements() != n || !broadcastsTo(p->shape, normShape)))
      return opError(op,
                     (p == bias ? std::string("bias") : std::string("scale")) +
                         " of shape " + shapeToString(p->shape) +
                         " does not match the normalised shape " +
                         shapeToString(normShape));
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = x.as<T>(), *pg = scale.as<T>();
    const T *pb = bias ? bias->as<T>() : nullptr;
    T *py = o.as<T>();
    if (x.numElements() == 0)
      return Status();
      // Two passes (mean, then centred squares) in double: no cancellation
      // from E[x^2] - E[x]^2 and f32 rows keep full precision.
#pragma omp parallel for schedule(                                             \
    static) if (x.numElements() >= kParallelGrain && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = px + r * n;
      T *yr = py + r * n;
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < n; ++i)
        sum += double(xr[i]);
      const double mean = sum / double(n);
      double sq = 0;
#pragma omp simd reduction(+ : sq)
      for (int64_t i = 0; i < n; ++i) {
        double c = double(xr[i]) - mean;
        sq += c * c;
      }
      const double inv = 1.0 / std::sqrt(sq / double(n) + epsilon);
      if (pb)
        for (int64_t i = 0; i < n; ++i)
          yr[i] =
              T((double(xr[i]) - mean) * inv * double(pg[i]) + double(pb[i]));
      else
        for (int64_t i = 0; i < n; ++i)
          yr[i] = T((double(xr[i]) - mean) * inv * double(pg[i]));
    }
    return Status();
  });
}

} // namespace

void addNormalizationKernels(KernelTable &table) {
  table.push_back({"layer_norm", layerNormKernel});
}

} // namespace cpu
} // namespace longctx
