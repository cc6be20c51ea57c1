//===- Normalization.cpp - layer_norm, rms_norm and their gradients -------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"

namespace longctx {
namespace cpu {
Status checkRmsNorm(const char *op, const TensorRef &x, const TensorRef &scale, const TensorRef &o,
                    int64_t &rows, int64_t &n) {
  if (Status s = checkDType(op, "scale", scale.dtype, x.dtype); !s)
    return s;
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  if (x.rank() < 1 || scale.rank() != 1 || scale.shape[0] != x.shape.back())
    return opError(op, "scale " + shapeToString(scale.shape) +
                           " must be 1-D with the last dim of x " + shapeToString(x.shape));
  n = x.shape.back();
  rows = n ? x.numElements() / n : 0;
  return Status();
}

namespace {

/// x viewed as [rows, n]: every row is normalised over its n elements (the
/// dims from `axis` on).
struct NormView {
  int64_t rows = 1, n = 1;
};

/// Resolves the axis (checking `o` against x's dtype and shape) and checks
/// that each of `params` (scale, bias) has x's dtype and covers the
/// normalised dims exactly (any leading 1s).
Status resolveNorm(
    const char *op, const TensorRef &x, const TensorRef &o,
    const AttrMap &attrs,
    std::initializer_list<std::pair<const char *, const TensorRef *>> params,
    NormView &view) {
  AxisView axis;
  if (Status s = viewAroundAxis(op, x, o, attrs, axis); !s)
    return s;
  view.rows = axis.outer;
  view.n = axis.n * axis.inner;
  Shape normShape(x.shape.begin() + axis.axis, x.shape.end());
  for (const auto &[name, p] : params) {
    if (!p)
      continue;
    if (Status s = checkDType(op, name, p->dtype, x.dtype); !s)
      return s;
    if (p->numElements() != view.n || !broadcastsTo(p->shape, normShape))
      return opError(op, std::string(name) + " of shape " +
                             shapeToString(p->shape) +
                             " does not match the normalised shape " +
                             shapeToString(normShape));
  }
  return Status();
}

/// Mean and 1/sqrt(biased variance + epsilon) of one row, in double. Two
/// passes (mean, then centred squares): no cancellation from
/// E[x^2] - E[x]^2, and f32 rows keep full precision.
template <typename T>
void rowMoments(const T *x, int64_t n, double epsilon, double &mean,
                double &invStd) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i)
    sum += double(x[i]);
  mean = sum / double(n);
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; ++i) {
    double c = double(x[i]) - mean;
    sq += c * c;
  }
  invStd = 1.0 / std::sqrt(sq / double(n) + epsilon);
}

Status layerNormKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttrMap &attrs) {
  const char *op = "layer_norm";
  if (Status s = checkArity(op, inputs, 2, 3, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &scale = inputs[1], &o = outputs[0];
  const TensorRef *bias = inputs.size() == 3 ? &inputs[2] : nullptr;
  NormView view;
  if (Status s = resolveNorm(op, x, o, attrs,
                             {{"scale", &scale}, {"bias", bias}}, view);
      !s)
    return s;
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  const int64_t rows = view.rows, n = view.n;
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = x.as<T>(), *pg = scale.as<T>();
    const T *pb = bias ? bias->as<T>() : nullptr;
    T *py = o.as<T>();
    if (x.numElements() == 0)
      return Status();
#pragma omp parallel for schedule(                                             \
    static) if (x.numElements() >= kParallelGrain && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = px + r * n;
      T *yr = py + r * n;
      double mean, inv;
      rowMoments(xr, n, epsilon, mean, inv);
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

/// The adjoint of layer_norm: with xhat = (x - mean) * inv and g = dy*scale,
///   dx = inv * (g - mean(g) - xhat * mean(g * xhat)),
///   dscale = sum over rows of dy * xhat,  dbias = sum over rows of dy.
/// Rows go to threads; dscale and dbias are summed in per-thread partials.
Status layerNormGradKernel(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs,
                           const AttrMap &attrs) {
  const char *op = "layer_norm_grad";
  if (Status s = checkArity(op, inputs, 3, 3, outputs, 3); !s)
    return s;
  const TensorRef &dy = inputs[0], &x = inputs[1], &scale = inputs[2];
  const TensorRef &dx = outputs[0], &dscale = outputs[1], &dbias = outputs[2];
  NormView view;
  if (Status s = resolveNorm(op, x, dx, attrs, {{"scale", &scale}}, view); !s)
    return s;
  if (Status s = checkDType(op, "dy", dy.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "dy", dy.shape, x.shape); !s)
    return s;
  for (const auto &[name, t] :
       {std::pair<const char *, const TensorRef *>{"dscale", &dscale},
        {"dbias", &dbias}}) {
    if (Status s = checkDType(op, name, t->dtype, x.dtype); !s)
      return s;
    if (Status s = checkShape(op, name, t->shape, scale.shape); !s)
      return s;
  }
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  const int64_t rows = view.rows, n = view.n;
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = x.as<T>(), *pdy = dy.as<T>(), *pg = scale.as<T>();
    T *pdx = dx.as<T>();
    const bool parallel = x.numElements() >= kParallelGrain && rows > 1;
    // Slot layout: [dscale (n) | dbias (n)].
    ThreadPartials partials(2 * n, parallel ? maxThreads() : 1);
#pragma omp parallel if (parallel)
    {
      double *pScale = partials.slot(), *pBias = pScale + n;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const T *xr = px + r * n, *dyr = pdy + r * n;
        T *dxr = pdx + r * n;
        double mean, inv;
        rowMoments(xr, n, epsilon, mean, inv);
        double sumG = 0, sumGX = 0;
#pragma omp simd reduction(+ : sumG, sumGX)
        for (int64_t i = 0; i < n; ++i) {
          const double xhat = (double(xr[i]) - mean) * inv;
          const double d = double(dyr[i]);
          const double g = d * double(pg[i]);
          sumG += g;
          sumGX += g * xhat;
          pScale[i] += d * xhat;
          pBias[i] += d;
        }
        const double meanG = sumG / double(n), meanGX = sumGX / double(n);
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const double xhat = (double(xr[i]) - mean) * inv;
          dxr[i] =
              T(inv * (double(dyr[i]) * double(pg[i]) - meanG - xhat * meanGX));
        }
      }
    }
    std::vector<T> sums(size_t(2 * n));
    partials.reduceInto(sums.data());
    std::copy(sums.begin(), sums.begin() + n, dscale.as<T>());
    std::copy(sums.begin() + n, sums.end(), dbias.as<T>());
    return Status();
  });
}

/// rms_norm(x, scale) {epsilon}: y = x / sqrt(mean(x^2) + eps) * scale over
/// the last dim (scale 1-D).
template <typename T> double rowInvRms(const T *x, int64_t n, double epsilon) {
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; ++i)
    sq += double(x[i]) * double(x[i]);
  return 1.0 / std::sqrt(sq / double(n) + epsilon);
}

Status rmsNormKernel(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                     const AttrMap &attrs) {
  const char *op = "rms_norm";
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &scale = inputs[1], &o = outputs[0];
  int64_t rows = 0, n = 0;
  if (Status s = checkRmsNorm(op, x, scale, o, rows, n); !s)
    return s;
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = x.as<T>(), *pw = scale.as<T>();
    T *py = o.as<T>();
#pragma omp parallel for schedule(static) if (x.numElements() >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = px + r * n;
      T *yr = py + r * n;
      const T inv = T(rowInvRms(xr, n, epsilon));
#pragma omp simd
      for (int64_t i = 0; i < n; ++i)
        yr[i] = xr[i] * inv * pw[i];
    }
    return Status();
  });
}

/// dx = inv * (g - xhat * mean(g * xhat)) with g = dy * scale, xhat = x * inv;
/// dscale = sum over rows of dy * xhat.
Status rmsNormGradKernel(const std::vector<TensorRef> &inputs,
                         const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const char *op = "rms_norm_grad";
  if (Status s = checkArity(op, inputs, 3, 3, outputs, 2); !s)
    return s;
  const TensorRef &dy = inputs[0], &x = inputs[1], &scale = inputs[2];
  const TensorRef &dx = outputs[0], &dscale = outputs[1];
  int64_t rows = 0, n = 0;
  if (Status s = checkRmsNorm(op, x, scale, dx, rows, n); !s)
    return s;
  if (Status s = checkShape(op, "dy", dy.shape, x.shape); !s)
    return s;
  if (Status s = checkDType(op, "dy", dy.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "dscale", dscale.shape, scale.shape); !s)
    return s;
  const double epsilon = attrs.getFloat("epsilon", 1e-5);
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *pdy = dy.as<T>(), *px = x.as<T>(), *pw = scale.as<T>();
    T *pdx = dx.as<T>();
    ThreadPartials partial(n);
#pragma omp parallel if (x.numElements() >= kParallelGrain)
    {
      double *acc = partial.slot();
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const T *xr = px + r * n, *dyr = pdy + r * n;
        T *dxr = pdx + r * n;
        const double inv = rowInvRms(xr, n, epsilon);
        double dot = 0;
        for (int64_t i = 0; i < n; ++i) {
          double xhat = double(xr[i]) * inv;
          dot += double(dyr[i]) * double(pw[i]) * xhat;
          acc[i] += double(dyr[i]) * xhat;
        }
        const double meanDot = dot / double(n);
        for (int64_t i = 0; i < n; ++i) {
          double xhat = double(xr[i]) * inv;
          dxr[i] = T(inv * (double(dyr[i]) * double(pw[i]) - xhat * meanDot));
        }
      }
    }
    partial.reduceInto(dscale.as<T>());
    return Status();
  });
}

} // namespace

void addNormalizationKernels(KernelTable &table) {
  table.insert(table.end(), {
                                {"layer_norm", layerNormKernel},
                                {"layer_norm_grad", layerNormGradKernel},
                                {"rms_norm", rmsNormKernel},
                                {"rms_norm_grad", rmsNormGradKernel},
                            });
}

} // namespace cpu
} // namespace longctx
