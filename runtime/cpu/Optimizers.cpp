//===- Optimizers.cpp - In-place optimizer updates: AdamW, SGD ------------===//
//
// The one exception to "outputs never alias inputs": output k is the updated
// value of input k (param and its state) and is normally the same buffer, so
// the update happens in place. Distinct output buffers work too (every
// element is read before its own position is written). Each element is
// updated in double and stored back in the param's dtype.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"

namespace longctx {
namespace cpu {
namespace {

/// Checks param, its state tensors and grad (inputs named by tensorNames, in
/// order) and the outputs (one per name but grad) against param's dtype and
/// shape, and reads the rank-0 operands after grad, in order: (name, whether
/// it must have param's dtype: lr and scale do, step does not).
Status resolveUpdate(const char *op, const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs,
                     const std::vector<const char *> &tensorNames,
                     const std::vector<std::pair<const char *, bool>> &scalars,
                     std::vector<double> &scalarValues) {
  const size_t numTensors = tensorNames.size(); // param, state..., grad
  const size_t numIn = numTensors + scalars.size();
  if (Status s = checkArity(op, inputs, numIn, numIn, outputs, numTensors - 1);
      !s)
    return s;
  const TensorRef &param = inputs[0];
  for (size_t k = 1; k < numTensors; ++k) {
    if (Status s = checkDType(op, tensorNames[k], inputs[k].dtype, param.dtype);
        !s)
      return s;
    if (Status s = checkShape(op, tensorNames[k], inputs[k].shape, param.shape);
        !s)
      return s;
  }
  for (size_t k = 0; k + 1 < numTensors; ++k) {
    const std::string name = std::string("output ") + tensorNames[k];
    if (Status s = checkDType(op, name.c_str(), outputs[k].dtype, param.dtype);
        !s)
      return s;
    if (Status s = checkShape(op, name.c_str(), outputs[k].shape, param.shape);
        !s)
      return s;
  }
  scalarValues.assign(scalars.size(), 0.0);
  for (size_t k = 0; k < scalars.size(); ++k) {
    const TensorRef &t = inputs[numTensors + k];
    if (scalars[k].second)
      if (Status s = checkDType(op, scalars[k].first, t.dtype, param.dtype); !s)
        return s;
    if (Status s = readScalar(op, scalars[k].first, t, scalarValues[k]); !s)
      return s;
  }
  return Status();
}

/// adamw_update(param, m, v, grad, lr, step, scale) -> (param, m, v), as
/// torch.optim.AdamW (amsgrad off) on g = grad * scale.
Status adamwUpdateKernel(const std::vector<TensorRef> &inputs,
                         const std::vector<TensorRef> &outputs,
                         const AttrMap &attrs) {
  const char *op = "adamw_update";
  std::vector<double> sv;
  if (Status s =
          resolveUpdate(op, inputs, outputs, {"param", "m", "v", "grad"},
                        {{"lr", true}, {"step", false}, {"scale", true}}, sv);
      !s)
    return s;
  const double lr = sv[0], step = sv[1], scale = sv[2];
  const double beta1 = attrs.getFloat("beta1", 0.9),
               beta2 = attrs.getFloat("beta2", 0.999),
               eps = attrs.getFloat("epsilon", 1e-8),
               wd = attrs.getFloat("weight_decay", 0.01);
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
    return opError(op, "beta1 and beta2 must be in [0, 1)");
  if (!(eps >= 0) || !(wd >= 0))
    return opError(op, "epsilon and weight_decay must be >= 0");
  if (!(step >= 1))
    return opError(op, "step must be >= 1, got " + std::to_string(step));
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *p = inputs[0].as<T>(), *m = inputs[1].as<T>(),
            *v = inputs[2].as<T>(), *g = inputs[3].as<T>();
    T *po = outputs[0].as<T>(), *mo = outputs[1].as<T>(),
      *vo = outputs[2].as<T>();
    const int64_t n = inputs[0].numElements();
    const double decay = 1 - lr * wd;
    const double stepSize = lr / (1 - std::pow(beta1, step));
    const double invBc2Sqrt = 1 / std::sqrt(1 - std::pow(beta2, step));
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const double gi = double(g[i]) * scale;
      const double mi = beta1 * double(m[i]) + (1 - beta1) * gi;
      const double vi = beta2 * double(v[i]) + (1 - beta2) * gi * gi;
      const double denom = std::sqrt(vi) * invBc2Sqrt + eps;
      po[i] = T(double(p[i]) * decay - stepSize * mi / denom);
      mo[i] = T(mi);
      vo[i] = T(vi);
    }
    return Status();
  });
}

/// sgd_update(param, buf, grad, lr, scale) -> (param, buf), as
/// torch.optim.SGD (dampening 0) on g = grad * scale; buf starts at 0.
Status sgdUpdateKernel(const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs,
                       const AttrMap &attrs) {
  const char *op = "sgd_update";
  std::vector<double> sv;
  if (Status s = resolveUpdate(op, inputs, outputs, {"param", "buf", "grad"},
                               {{"lr", true}, {"scale", true}}, sv);
      !s)
    return s;
  const double lr = sv[0], scale = sv[1];
  const double momentum = attrs.getFloat("momentum", 0),
               wd = attrs.getFloat("weight_decay", 0);
  const int64_t nesterov = attrs.getInt("nesterov", 0);
  if (!(momentum >= 0) || !(wd >= 0))
    return opError(op, "momentum and weight_decay must be >= 0");
  if (nesterov != 0 && nesterov != 1)
    return opError(op, "nesterov must be 0 or 1");
  if (nesterov && momentum == 0)
    return opError(op, "nesterov needs a momentum > 0");
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *p = inputs[0].as<T>(), *b = inputs[1].as<T>(),
            *g = inputs[2].as<T>();
    T *po = outputs[0].as<T>(), *bo = outputs[1].as<T>();
    const int64_t n = inputs[0].numElements();
    const bool useMomentum = momentum != 0, useNesterov = nesterov != 0;
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      double d = double(g[i]) * scale + wd * double(p[i]);
      double bi = double(b[i]);
      if (useMomentum) {
        bi = momentum * bi + d;
        d = useNesterov ? d + momentum * bi : bi;
      }
      po[i] = T(double(p[i]) - lr * d);
      bo[i] = T(bi);
    }
    return Status();
  });
}

} // namespace

void addOptimizerKernels(KernelTable &table) {
  table.insert(table.end(), {
                                {"adamw_update", adamwUpdateKernel},
                                {"sgd_update", sgdUpdateKernel},
                            });
}

} // namespace cpu
} // namespace longctx
