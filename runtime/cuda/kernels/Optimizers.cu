//===- Optimizers.cu - adamw_update and sgd_update on CUDA ----------------===//
//
// The CPU twins' math (runtime/cpu/Optimizers.cpp): each element updated in
// double, stored in the param's dtype, in place (outputs alias inputs) or
// not. lr, step and scale are rank-0 device tensors read by every thread.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <cstring>

namespace longctx {
namespace cuda {
namespace {


/// A rank-0 operand's pointer and dtype, as kernels take them.
struct Scalar {
  const void *data;
  int dtype;
};

struct AdamW {
  double beta1, beta2, eps, wd;
};

/// What adamw_update leaves for the executor to check after the step: a
/// step below 1, which the CPU refuses (the kernel then updates nothing).
struct StepCheck {
  unsigned int bad;
  double step;
};

template <typename T>
__global__ void adamwKernel(const T *p, const T *m, const T *v, const T *g, T *po, T *mo, T *vo,
                            int64_t n, Scalar lr, Scalar step, Scalar scale, AdamW c,
                            StepCheck *check) {
  const double lrv = readScalar(lr.data, lr.dtype), stepv = readScalar(step.data, step.dtype),
               scalev = readScalar(scale.data, scale.dtype);
  if (!(stepv >= 1)) { // the bias corrections would divide by zero
    if (check && globalIndex() == 0)
      *check = StepCheck{1u, stepv};
    return;
  }
  const double decay = 1 - lrv * c.wd;
  const double stepSize = lrv / (1 - pow(c.beta1, stepv));
  const double invBc2Sqrt = 1 / sqrt(1 - pow(c.beta2, stepv));
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    const double gi = double(g[i]) * scalev;
    const double mi = c.beta1 * double(m[i]) + (1 - c.beta1) * gi;
    const double vi = c.beta2 * double(v[i]) + (1 - c.beta2) * gi * gi;
    const double denom = sqrt(vi) * invBc2Sqrt + c.eps;
    po[i] = T(double(p[i]) * decay - stepSize * mi / denom);
    mo[i] = T(mi);
    vo[i] = T(vi);
  }
}

struct Sgd {
  double momentum, wd;
  bool nesterov;
};

template <typename T>
__global__ void sgdKernel(const T *p, const T *b, const T *g, T *po, T *bo, int64_t n, Scalar lr,
                          Scalar scale, Sgd c) {
  const double lrv = readScalar(lr.data, lr.dtype), scalev = readScalar(scale.data, scale.dtype);
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    double d = double(g[i]) * scalev + c.wd * double(p[i]);
    double bi = double(b[i]);
    if (c.momentum != 0) {
      bi = c.momentum * bi + d;
      d = c.nesterov ? d + c.momentum * bi : bi;
    }
    po[i] = T(double(p[i]) - lrv * d);
    bo[i] = T(bi);
  }
}

/// The CPU twin's operand checks: param, state and grad alike, outputs like
/// param, scalars of rank 0 (lr and scale in param's dtype).
Status checkUpdate(const char *op, const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs, size_t numTensors,
                   const std::vector<std::pair<const char *, bool>> &scalars,
                   std::vector<Scalar> &values) {
  const size_t numIn = numTensors + scalars.size();
  if (Status s = checkArity(op, inputs, numIn, numIn, outputs, numTensors - 1); !s)
    return s;
  const TensorRef &param = inputs[0];
  if (param.dtype != DType::F32 && param.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(param.dtype));
  for (size_t k = 1; k < numTensors; ++k) {
    if (Status s = checkDType(op, "state or grad", inputs[k].dtype, param.dtype); !s)
      return s;
    if (Status s = checkShape(op, "state or grad", inputs[k].shape, param.shape); !s)
      return s;
  }
  for (size_t k = 0; k + 1 < numTensors; ++k) {
    if (Status s = checkDType(op, "output", outputs[k].dtype, param.dtype); !s)
      return s;
    if (Status s = checkShape(op, "output", outputs[k].shape, param.shape); !s)
      return s;
  }
  for (size_t k = 0; k < scalars.size(); ++k) {
    const TensorRef &t = inputs[numTensors + k];
    if (t.numElements() != 1)
      return opError(op, std::string(scalars[k].first) + " must hold one value");
    if (scalars[k].second)
      if (Status s = checkDType(op, scalars[k].first, t.dtype, param.dtype); !s)
        return s;
    if (t.dtype != DType::F32 && t.dtype != DType::F64 && t.dtype != DType::I64 &&
        t.dtype != DType::I32)
      return opError(op, std::string(scalars[k].first) + " must be f32, f64, i64 or i32");
    values.push_back({t.data, int(t.dtype)});
  }
  return Status();
}

Status badStepError(const char *op, double step) {
  return opError(op, "step must be >= 1, got " + std::to_string(step));
}

/// A rank-0 f32/f64/i64/i32 device tensor read on the host (waits).
Result<double> scalarOnHost(const char *op, const TensorRef &t) {
  unsigned char bytes[8] = {};
  if (cudaMemcpy(bytes, t.data, dtypeSize(t.dtype), cudaMemcpyDeviceToHost) != cudaSuccess)
    return launchStatus(op);
  switch (t.dtype) {
  case DType::F32: return double(*reinterpret_cast<float *>(bytes));
  case DType::F64: return *reinterpret_cast<double *>(bytes);
  case DType::I64: return double(*reinterpret_cast<int64_t *>(bytes));
  default: return double(*reinterpret_cast<int32_t *>(bytes));
  }
}

Status adamwUpdate(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                   const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "adamw_update";
  std::vector<Scalar> s;
  if (Status st = checkUpdate(op, inputs, outputs, 4, {{"lr", true}, {"step", false},
                                                       {"scale", true}}, s);
      !st)
    return st;
  const AdamW c{attrs.getFloat("beta1", 0.9), attrs.getFloat("beta2", 0.999),
                attrs.getFloat("epsilon", 1e-8), attrs.getFloat("weight_decay", 0.01)};
  if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1))
    return opError(op, "beta1 and beta2 must be in [0, 1)");
  if (!(c.eps >= 0) || !(c.wd >= 0))
    return opError(op, "epsilon and weight_decay must be >= 0");
  // The step lives on the device: the executor gives a record the kernel
  // fills and reads it after the step (no wait per parameter); without one
  // the step is read here.
  static_assert(sizeof(StepCheck) <= kCheckRecordBytes, "a record holds the check");
  auto *check = static_cast<StepCheck *>(workspace.record);
  if (!check) {
    Result<double> step = scalarOnHost(op, inputs[5]);
    if (!step)
      return step.status();
    if (!(*step >= 1))
      return badStepError(op, *step);
  }
  const int64_t n = inputs[0].numElements();
  if (n == 0)
    return Status();
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    adamwKernel<T><<<gridFor(n), kThreads, 0, stream>>>(
        inputs[0].as<T>(), inputs[1].as<T>(), inputs[2].as<T>(), inputs[3].as<T>(),
        outputs[0].as<T>(), outputs[1].as<T>(), outputs[2].as<T>(), n, s[0], s[1], s[2], c,
        check);
  });
}

Status sgdUpdate(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                 const AttrMap &attrs, cudaStream_t stream, Workspace) {
  const char *op = "sgd_update";
  std::vector<Scalar> s;
  if (Status st = checkUpdate(op, inputs, outputs, 3, {{"lr", true}, {"scale", true}}, s); !st)
    return st;
  const Sgd c{attrs.getFloat("momentum", 0), attrs.getFloat("weight_decay", 0),
              attrs.getInt("nesterov", 0) != 0};
  if (!(c.momentum >= 0) || !(c.wd >= 0))
    return opError(op, "momentum and weight_decay must be >= 0");
  if (c.nesterov && c.momentum == 0)
    return opError(op, "nesterov needs a momentum > 0");
  const int64_t n = inputs[0].numElements();
  if (n == 0)
    return Status();
  return dispatchFloat(op, inputs[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    sgdKernel<T><<<gridFor(n), kThreads, 0, stream>>>(inputs[0].as<T>(), inputs[1].as<T>(),
                                                      inputs[2].as<T>(), outputs[0].as<T>(),
                                                      outputs[1].as<T>(), n, s[0], s[1], c);
  });
}

Status stepRecord(const char *op, const void *record, const std::vector<TensorRef> &,
                  const std::vector<TensorRef> &, const AttrMap &) {
  StepCheck check;
  std::memcpy(&check, record, sizeof check);
  return check.bad ? badStepError(op, check.step) : Status();
}

} // namespace

void addOptimizerKernels(CudaKernelTable &table) {
  table.push_back({"adamw_update", adamwUpdate, stepRecord, /*recordsAlways=*/true});
  table.push_back({"sgd_update", sgdUpdate});
}

} // namespace cuda
} // namespace longctx
