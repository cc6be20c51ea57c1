//===- Elementwise.cu - unary and broadcasting binary float ops on CUDA ---===//
//
// The CPU twins' formulas (runtime/cpu/Elementwise.cpp): stable sigmoid and
// softplus, NaN-propagating max/min. Binary operands broadcast like numpy:
// each output index is decomposed against up to kMaxRank dims and each
// operand read through its broadcast strides (0 on broadcast dims).
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

namespace longctx {
namespace cuda {
namespace {

#define LONGCTX_CUDA_UNARY(Name, expr)                                                           \
  struct Name {                                                                                \
    template <typename T> __device__ static T apply(T x) { return expr; }                      \
  };
LONGCTX_CUDA_UNARY(Neg, -x)
LONGCTX_CUDA_UNARY(Abs, fabs(x))
LONGCTX_CUDA_UNARY(Relu, x < T(0) ? T(0) : x)
LONGCTX_CUDA_UNARY(Exp, exp(x))
LONGCTX_CUDA_UNARY(Log, log(x))
LONGCTX_CUDA_UNARY(Sqrt, sqrt(x))
LONGCTX_CUDA_UNARY(Reciprocal, T(1) / x)
LONGCTX_CUDA_UNARY(Tanh, tanh(x))
LONGCTX_CUDA_UNARY(Erf, erf(x))
LONGCTX_CUDA_UNARY(Cos, cos(x))
LONGCTX_CUDA_UNARY(Sin, sin(x))
LONGCTX_CUDA_UNARY(Sigmoid, x >= T(0) ? T(1) / (T(1) + exp(-x)) : exp(x) / (T(1) + exp(x)))
LONGCTX_CUDA_UNARY(Softplus, (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x))))
#undef LONGCTX_CUDA_UNARY

#define LONGCTX_CUDA_BINARY(Name, expr)                                                          \
  struct Name {                                                                                \
    template <typename T> __device__ static T apply(T a, T b) { return expr; }                 \
  };
LONGCTX_CUDA_BINARY(Add, a + b)
LONGCTX_CUDA_BINARY(Sub, a - b)
LONGCTX_CUDA_BINARY(Mul, a * b)
LONGCTX_CUDA_BINARY(Div, a / b)
LONGCTX_CUDA_BINARY(Pow, pow(a, b))
LONGCTX_CUDA_BINARY(Max, (a > b || a != a) ? a : b)
LONGCTX_CUDA_BINARY(Min, (a < b || a != a) ? a : b)
#undef LONGCTX_CUDA_BINARY

template <typename Op, typename T> __global__ void unaryKernel(const T *x, T *y, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride())
    y[i] = Op::apply(x[i]);
}

template <typename Op, typename T>
__global__ void binaryKernel(const T *a, const T *b, T *y, int64_t n, Broadcast bc) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    int64_t off[2];
    offsetsOf(bc, i, off);
    y[i] = Op::apply(a[off[0]], b[off[1]]);
  }
}

template <typename Op>
Status unary(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
             const AttrMap &, cudaStream_t stream, const char *op) {
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &y = outputs[0];
  if (x.dtype != DType::F32 && x.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(x.dtype));
  if (Status s = checkDType(op, "output", y.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", y.shape, x.shape); !s)
    return s;
  const int64_t n = x.numElements();
  if (n == 0)
    return Status();
  return dispatchFloat(op, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    unaryKernel<Op, T><<<gridFor(n), kThreads, 0, stream>>>(x.as<T>(), y.as<T>(), n);
  });
}

template <typename Op>
Status binary(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
              const AttrMap &, cudaStream_t stream, const char *op) {
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &y = outputs[0];
  if (a.dtype != DType::F32 && a.dtype != DType::F64)
    return opError(op, std::string("no CUDA kernel for ") + dtypeName(a.dtype));
  if (Status s = checkDType(op, "rhs", b.dtype, a.dtype); !s)
    return s;
  if (Status s = checkDType(op, "output", y.dtype, a.dtype); !s)
    return s;
  Broadcast bc;
  if (Status s = makeBroadcast(op, y, {&a, &b}, bc); !s)
    return s;
  const int64_t n = y.numElements();
  if (n == 0)
    return Status();
  return dispatchFloat(op, a.dtype, [&](auto tag) {
    using T = decltype(tag);
    binaryKernel<Op, T><<<gridFor(n), kThreads, 0, stream>>>(a.as<T>(), b.as<T>(), y.as<T>(), n,
                                                             bc);
  });
}

#define LONGCTX_UNARY_ENTRY(str, Op)                                                             \
  {str, [](const std::vector<TensorRef> &i, const std::vector<TensorRef> &o, const AttrMap &a,   \
           cudaStream_t s, Workspace) { return unary<Op>(i, o, a, s, str); }}
#define LONGCTX_BINARY_ENTRY(str, Op)                                                            \
  {str, [](const std::vector<TensorRef> &i, const std::vector<TensorRef> &o, const AttrMap &a,   \
           cudaStream_t s, Workspace) { return binary<Op>(i, o, a, s, str); }}

} // namespace

void addElementwiseKernels(CudaKernelTable &table) {
  table.insert(table.end(), {
                                LONGCTX_UNARY_ENTRY("neg", Neg),
                                LONGCTX_UNARY_ENTRY("abs", Abs),
                                LONGCTX_UNARY_ENTRY("relu", Relu),
                                LONGCTX_UNARY_ENTRY("exp", Exp),
                                LONGCTX_UNARY_ENTRY("log", Log),
                                LONGCTX_UNARY_ENTRY("sqrt", Sqrt),
                                LONGCTX_UNARY_ENTRY("reciprocal", Reciprocal),
                                LONGCTX_UNARY_ENTRY("tanh", Tanh),
                                LONGCTX_UNARY_ENTRY("erf", Erf),
                                LONGCTX_UNARY_ENTRY("cos", Cos),
                                LONGCTX_UNARY_ENTRY("sin", Sin),
                                LONGCTX_UNARY_ENTRY("sigmoid", Sigmoid),
                                LONGCTX_UNARY_ENTRY("softplus", Softplus),
                                LONGCTX_BINARY_ENTRY("add", Add),
                                LONGCTX_BINARY_ENTRY("sub", Sub),
                                LONGCTX_BINARY_ENTRY("mul", Mul),
                                LONGCTX_BINARY_ENTRY("div", Div),
                                LONGCTX_BINARY_ENTRY("pow", Pow),
                                LONGCTX_BINARY_ENTRY("max", Max),
                                LONGCTX_BINARY_ENTRY("min", Min),
                            });
}

} // namespace cuda
} // namespace longctx
