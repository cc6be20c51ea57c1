//===- Logical.cu - Comparisons, logic, where and cast on CUDA -------------===//
//
// The CPU twins' semantics (runtime/cpu/Elementwise.cpp): equal/less/greater
// give bool (equal also on bools), and/or/not treat any non-zero byte as
// true and write 0 or 1, where selects with numpy broadcasting, cast
// converts between f32, f64, i64, i32 and bool (float to int truncates
// toward zero, to bool is x != 0).
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <type_traits>

namespace longctx {
namespace cuda {
namespace {

using BoolT = uint8_t;

/// Runs fn(T{}) for the dtypes these kernels move: f32, f64, i64, i32, bool.
template <typename Fn> Status dispatchMovable(const char *op, DType d, Fn &&fn) {
  switch (d) {
  case DType::F32: fn(float{}); break;
  case DType::F64: fn(double{}); break;
  case DType::I64: fn(int64_t{}); break;
  case DType::I32: fn(int32_t{}); break;
  case DType::Bool:
  case DType::U8: fn(BoolT{}); break;
  default: return opError(op, std::string("no CUDA kernel for ") + dtypeName(d));
  }
  return launchStatus(op);
}

struct Equal { template <typename T> __device__ static bool apply(T a, T b) { return a == b; } };
struct Less { template <typename T> __device__ static bool apply(T a, T b) { return a < b; } };
struct Greater { template <typename T> __device__ static bool apply(T a, T b) { return a > b; } };
struct And { template <typename T> __device__ static bool apply(T a, T b) { return (a != 0) & (b != 0); } };
struct Or { template <typename T> __device__ static bool apply(T a, T b) { return (a != 0) | (b != 0); } };

template <typename Op, typename T>
__global__ void compareKernel(const T *a, const T *b, BoolT *out, int64_t n, Broadcast bc) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    int64_t off[2];
    offsetsOf(bc, i, off);
    out[i] = BoolT(Op::apply(a[off[0]], b[off[1]]));
  }
}

/// equal/less/greater (-> bool) and and/or (bool -> bool).
template <typename Op, bool Logic>
Status compare(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
               const AttrMap &, cudaStream_t stream, const char *op) {
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &o = outputs[0];
  if (a.dtype != b.dtype)
    return opError(op, std::string("inputs have different dtypes ") + dtypeName(a.dtype) +
                           " and " + dtypeName(b.dtype));
  if (Logic && a.dtype != DType::Bool)
    return opError(op, std::string("no kernel for dtype ") + dtypeName(a.dtype));
  if (!Logic && a.dtype == DType::Bool && !std::is_same_v<Op, Equal>)
    return opError(op, std::string("no kernel for dtype ") + dtypeName(a.dtype));
  if (Status s = checkDType(op, "output", o.dtype, DType::Bool); !s)
    return s;
  Broadcast bc;
  if (Status s = makeBroadcast(op, o, {&a, &b}, bc); !s)
    return s;
  const int64_t n = o.numElements();
  if (n == 0)
    return Status();
  return dispatchMovable(op, a.dtype, [&](auto tag) {
    using T = decltype(tag);
    compareKernel<Op, T><<<gridFor(n), kThreads, 0, stream>>>(a.as<T>(), b.as<T>(),
                                                              o.as<BoolT>(), n, bc);
  });
}

__global__ void notKernel(const BoolT *x, BoolT *y, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride())
    y[i] = BoolT(x[i] == 0);
}

Status notOp(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
             const AttrMap &, cudaStream_t stream, Workspace) {
  const char *op = "not";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &y = outputs[0];
  if (x.dtype != DType::Bool)
    return opError(op, std::string("no kernel for dtype ") + dtypeName(x.dtype));
  if (Status s = checkDType(op, "output", y.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", y.shape, x.shape); !s)
    return s;
  const int64_t n = x.numElements();
  if (n > 0)
    notKernel<<<gridFor(n), kThreads, 0, stream>>>(x.as<BoolT>(), y.as<BoolT>(), n);
  return launchStatus(op);
}

template <typename T>
__global__ void whereKernel(const BoolT *c, const T *x, const T *y, T *out, int64_t n,
                            Broadcast bc) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    int64_t off[3];
    offsetsOf(bc, i, off);
    out[i] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

Status where(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
             const AttrMap &, cudaStream_t stream, Workspace) {
  const char *op = "where";
  if (Status s = checkArity(op, inputs, 3, 3, outputs); !s)
    return s;
  const TensorRef &c = inputs[0], &x = inputs[1], &y = inputs[2], &o = outputs[0];
  if (Status s = checkDType(op, "condition", c.dtype, DType::Bool); !s)
    return s;
  if (Status s = checkDType(op, "y", y.dtype, x.dtype); !s)
    return s;
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  Broadcast bc;
  if (Status s = makeBroadcast(op, o, {&c, &x, &y}, bc); !s)
    return s;
  const int64_t n = o.numElements();
  if (n == 0)
    return Status();
  return dispatchMovable(op, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    whereKernel<T><<<gridFor(n), kThreads, 0, stream>>>(c.as<BoolT>(), x.as<T>(), y.as<T>(),
                                                        o.as<T>(), n, bc);
  });
}

template <typename To, typename From> __device__ inline To convert(From v) {
  if constexpr (std::is_same_v<To, BoolT>)
    return BoolT(v != From(0));
  else if constexpr (std::is_same_v<From, BoolT>)
    return To(v != 0);
  else
    return To(v);
}

template <typename To, typename From>
__global__ void castKernel(const From *x, To *y, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride())
    y[i] = convert<To>(x[i]);
}

Status cast(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
            const AttrMap &, cudaStream_t stream, Workspace) {
  const char *op = "cast";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  const int64_t n = x.numElements();
  if (n == 0)
    return Status();
  if (x.dtype == o.dtype)
    return cudaMemcpyAsync(o.data, x.data, x.bytes(), cudaMemcpyDeviceToDevice, stream) ==
                   cudaSuccess
               ? Status()
               : launchStatus(op);
  Status inner;
  Status outer = dispatchMovable(op, x.dtype, [&](auto fromTag) {
    using From = decltype(fromTag);
    inner = dispatchMovable(op, o.dtype, [&](auto toTag) {
      using To = decltype(toTag);
      castKernel<To, From><<<gridFor(n), kThreads, 0, stream>>>(x.as<From>(), o.as<To>(), n);
    });
  });
  return outer ? inner : outer;
}

#define LONGCTX_COMPARE_ENTRY(str, Op, Logic)                                                    \
  {str, [](const std::vector<TensorRef> &i, const std::vector<TensorRef> &o, const AttrMap &a,   \
           cudaStream_t s, Workspace) { return compare<Op, Logic>(i, o, a, s, str); }}

} // namespace

void addLogicalKernels(CudaKernelTable &table) {
  table.insert(table.end(), {
                                LONGCTX_COMPARE_ENTRY("equal", Equal, false),
                                LONGCTX_COMPARE_ENTRY("less", Less, false),
                                LONGCTX_COMPARE_ENTRY("greater", Greater, false),
                                LONGCTX_COMPARE_ENTRY("and", And, true),
                                LONGCTX_COMPARE_ENTRY("or", Or, true),
                                {"not", notOp},
                                {"where", where},
                                {"cast", cast},
                            });
}

} // namespace cuda
} // namespace longctx
