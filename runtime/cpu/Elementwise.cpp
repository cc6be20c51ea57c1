//===- Elementwise.cpp - Binary, unary, where, cast and identity kernels --===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"

namespace longctx {
namespace cpu {
namespace {

/// Integer arithmetic wraps (through unsigned) instead of overflowing, which
/// would be undefined behaviour.
template <typename T> T wrapAdd(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return T(U(a) + U(b));
}
template <typename T> T wrapSub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return T(U(a) - U(b));
}
template <typename T> T wrapMul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return T(U(a) * U(b));
}

//===----------------------------------------------------------------------===//
// Binary ops
//===----------------------------------------------------------------------===//

template <typename T> constexpr bool kArith = kIsFloat<T> || kIsInt<T>;

struct AddOp {
  static constexpr const char *name = "add";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T a, T b) {
    if constexpr (kIsInt<T>)
      return wrapAdd(a, b);
    else
      return a + b;
  }
};
struct SubOp {
  static constexpr const char *name = "sub";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T a, T b) {
    if constexpr (kIsInt<T>)
      return wrapSub(a, b);
    else
      return a - b;
  }
};
struct MulOp {
  static constexpr const char *name = "mul";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T a, T b) {
    if constexpr (kIsInt<T>)
      return wrapMul(a, b);
    else
      return a * b;
  }
};
/// Integer division truncates toward zero (C semantics, like ONNX Runtime);
/// a zero divisor is rejected before the loop, and MIN / -1 wraps.
struct DivOp {
  static constexpr const char *name = "div";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T a, T b) {
    if constexpr (kIsInt<T>)
      return b == T(-1) ? wrapSub(T(0), a) : T(a / b);
    else
      return a / b;
  }
};
struct PowOp {
  static constexpr const char *name = "pow";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kIsFloat<T>;
  template <typename T> static T apply(T a, T b) { return std::pow(a, b); }
};
/// max/min propagate NaN (numpy maximum/minimum, torch).
struct MaxOp {
  static constexpr const char *name = "max";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T a, T b) {
    return (a > b || a != a) ? a : b;
  }
};
struct MinOp {
  static constexpr const char *name = "min";
  static constexpr bool kCompare = false;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T a, T b) {
    return (a < b || a != a) ? a : b;
  }
};
struct EqualOp {
  static constexpr const char *name = "equal";
  static constexpr bool kCompare = true;
  template <typename T>
  static constexpr bool supports = kArith<T> || std::is_same_v<T, BoolT>;
  template <typename T> static BoolT apply(T a, T b) { return BoolT(a == b); }
};
struct LessOp {
  static constexpr const char *name = "less";
  static constexpr bool kCompare = true;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static BoolT apply(T a, T b) { return BoolT(a < b); }
};
struct GreaterOp {
  static constexpr const char *name = "greater";
  static constexpr bool kCompare = true;
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static BoolT apply(T a, T b) { return BoolT(a > b); }
};
/// Logical ops treat any non-zero byte as true and always write 0 or 1.
struct AndOp {
  static constexpr const char *name = "and";
  static constexpr bool kCompare = false;
  template <typename T>
  static constexpr bool supports = std::is_same_v<T, BoolT>;
  template <typename T> static T apply(T a, T b) {
    return T((a != 0) & (b != 0));
  }
};
struct OrOp {
  static constexpr const char *name = "or";
  static constexpr bool kCompare = false;
  template <typename T>
  static constexpr bool supports = std::is_same_v<T, BoolT>;
  template <typename T> static T apply(T a, T b) {
    return T((a != 0) | (b != 0));
  }
};

/// Inner loops specialised on the operands' inner strides so the common
/// layouts (same shape, scalar, trailing-dims operand) vectorise.
template <typename Op, typename T, typename R>
void runBinary(const T *a, const T *b, R *o, const StridedLoop<3> &loop,
               bool parallel) {
  const int64_t sa = loop.innerStride(1), sb = loop.innerStride(2);
  using Off = std::array<int64_t, 3>;
  if (sa == 1 && sb == 1) {
    forEachRow(loop, parallel, [&](const Off &off, int64_t n) {
      const T *pa = a + off[1], *pb = b + off[2];
      R *po = o + off[0];
      for (int64_t i = 0; i < n; ++i)
        po[i] = Op::apply(pa[i], pb[i]);
    });
  } else if (sa == 1 && sb == 0) {
    forEachRow(loop, parallel, [&](const Off &off, int64_t n) {
      const T *pa = a + off[1];
      const T vb = b[off[2]];
      R *po = o + off[0];
      for (int64_t i = 0; i < n; ++i)
        po[i] = Op::apply(pa[i], vb);
    });
  } else if (sa == 0 && sb == 1) {
    forEachRow(loop, parallel, [&](const Off &off, int64_t n) {
      const T va = a[off[1]];
      const T *pb = b + off[2];
      R *po = o + off[0];
      for (int64_t i = 0; i < n; ++i)
        po[i] = Op::apply(va, pb[i]);
    });
  } else {
    forEachRow(loop, parallel, [&](const Off &off, int64_t n) {
      const T *pa = a + off[1], *pb = b + off[2];
      R *po = o + off[0];
      for (int64_t i = 0; i < n; ++i)
        po[i] = Op::apply(pa[i * sa], pb[i * sb]);
    });
  }
}

template <typename Op>
Status binaryKernel(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = Op::name;
  if (Status s = checkArity(op, inputs, 2, 2, outputs); !s)
    return s;
  const TensorRef &a = inputs[0], &b = inputs[1], &o = outputs[0];
  if (a.dtype != b.dtype)
    return opError(op, std::string("inputs have different dtypes ") +
                           dtypeName(a.dtype) + " and " + dtypeName(b.dtype));
  if (Status s = checkDType(op, "output", o.dtype,
                            Op::kCompare ? DType::Bool : a.dtype);
      !s)
    return s;
  if (Status s = checkBroadcast(op, {&a.shape, &b.shape}, o.shape); !s)
    return s;
  return dispatchNumeric(op, a.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if constexpr (!Op::template supports<T>) {
      return unsupportedDType(op, a.dtype);
    } else {
      using R = std::conditional_t<Op::kCompare, BoolT, T>;
      const int64_t n = o.numElements();
      if (n == 0)
        return Status();
      if constexpr (std::is_same_v<Op, DivOp> && kIsInt<T>) {
        const T *pb = b.as<T>();
        int64_t nb = b.numElements();
        bool zero = false;
        for (int64_t i = 0; i < nb; ++i)
          zero |= pb[i] == T(0);
        if (zero)
          return opError(op, "integer division by zero");
      }
      StridedLoop<3> loop =
          makeStridedLoop<3>(o.shape, {contiguousStrides(o.shape),
                                       broadcastStrides(a.shape, o.shape),
                                       broadcastStrides(b.shape, o.shape)});
      runBinary<Op>(a.as<T>(), b.as<T>(), o.as<R>(), loop, n >= kParallelGrain);
      return Status();
    }
  });
}

//===----------------------------------------------------------------------===//
// Unary ops
//===----------------------------------------------------------------------===//

#define LONGCTX_FLOAT_UNARY(Name, str, expr)                                   \
  struct Name {                                                                \
    static constexpr const char *name = str;                                   \
    template <typename T> static constexpr bool supports = kIsFloat<T>;        \
    template <typename T> static T apply(T x) { return expr; }                 \
  };
LONGCTX_FLOAT_UNARY(ExpOp, "exp", std::exp(x))
LONGCTX_FLOAT_UNARY(LogOp, "log", std::log(x))
LONGCTX_FLOAT_UNARY(SqrtOp, "sqrt", std::sqrt(x))
LONGCTX_FLOAT_UNARY(ReciprocalOp, "reciprocal", T(1) / x)
LONGCTX_FLOAT_UNARY(TanhOp, "tanh", std::tanh(x))
LONGCTX_FLOAT_UNARY(ErfOp, "erf", std::erf(x))
LONGCTX_FLOAT_UNARY(CosOp, "cos", std::cos(x))
LONGCTX_FLOAT_UNARY(SinOp, "sin", std::sin(x))
// exp of a non-positive argument only: no overflow for large |x|.
LONGCTX_FLOAT_UNARY(SigmoidOp, "sigmoid",
                    x >= T(0) ? T(1) / (T(1) + std::exp(-x))
                              : std::exp(x) / (T(1) + std::exp(x)))
LONGCTX_FLOAT_UNARY(SoftplusOp, "softplus",
                    (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x))))
#undef LONGCTX_FLOAT_UNARY

struct NegOp {
  static constexpr const char *name = "neg";
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T x) {
    if constexpr (kIsInt<T>)
      return wrapSub(T(0), x);
    else
      return -x;
  }
};
struct AbsOp {
  static constexpr const char *name = "abs";
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T x) {
    if constexpr (kIsInt<T>)
      return x < 0 ? wrapSub(T(0), x) : x;
    else
      return std::fabs(x);
  }
};
/// relu(NaN) is NaN, as in torch.
struct ReluOp {
  static constexpr const char *name = "relu";
  template <typename T> static constexpr bool supports = kArith<T>;
  template <typename T> static T apply(T x) { return x < T(0) ? T(0) : x; }
};
struct NotOp {
  static constexpr const char *name = "not";
  template <typename T>
  static constexpr bool supports = std::is_same_v<T, BoolT>;
  template <typename T> static T apply(T x) { return T(x == 0); }
};

template <typename Op>
Status unaryKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = Op::name;
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  return dispatchNumeric(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    if constexpr (!Op::template supports<T>) {
      return unsupportedDType(op, x.dtype);
    } else {
      const T *px = x.as<T>();
      T *po = o.as<T>();
      const int64_t n = x.numElements();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i)
        po[i] = Op::apply(px[i]);
      return Status();
    }
  });
}

//===----------------------------------------------------------------------===//
// where, cast, identity
//===----------------------------------------------------------------------===//

Status whereKernel(const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "where";
  if (Status s = checkArity(op, inputs, 3, 3, outputs); !s)
    return s;
  const TensorRef &c = inputs[0], &x = inputs[1], &y = inputs[2],
                  &o = outputs[0];
  if (Status s = checkDType(op, "condition", c.dtype, DType::Bool); !s)
    return s;
  if (Status s = checkDType(op, "y", y.dtype, x.dtype); !s)
    return s;
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  if (Status s = checkBroadcast(op, {&c.shape, &x.shape, &y.shape}, o.shape);
      !s)
    return s;
  const int64_t n = o.numElements();
  if (n == 0)
    return Status();
  // Selection only moves bits: dispatch on the element size.
  return dispatchBySize(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    StridedLoop<4> loop =
        makeStridedLoop<4>(o.shape, {contiguousStrides(o.shape),
                                     broadcastStrides(c.shape, o.shape),
                                     broadcastStrides(x.shape, o.shape),
                                     broadcastStrides(y.shape, o.shape)});
    const BoolT *pc = c.as<BoolT>();
    const T *px = x.as<T>(), *py = y.as<T>();
    T *po = o.as<T>();
    const int64_t sc = loop.innerStride(1), sx = loop.innerStride(2),
                  sy = loop.innerStride(3);
    using Off = std::array<int64_t, 4>;
    if (sc == 1 && sx == 1 && sy == 1) {
      forEachRow(loop, n >= kParallelGrain, [&](const Off &off, int64_t len) {
        const BoolT *rc = pc + off[1];
        const T *rx = px + off[2], *ry = py + off[3];
        T *ro = po + off[0];
        for (int64_t i = 0; i < len; ++i)
          ro[i] = rc[i] ? rx[i] : ry[i];
      });
    } else {
      forEachRow(loop, n >= kParallelGrain, [&](const Off &off, int64_t len) {
        const BoolT *rc = pc + off[1];
        const T *rx = px + off[2], *ry = py + off[3];
        T *ro = po + off[0];
        for (int64_t i = 0; i < len; ++i)
          ro[i] = rc[i * sc] ? rx[i * sx] : ry[i * sy];
      });
    }
    return Status();
  });
}

Status castKernel(const std::vector<TensorRef> &inputs,
                  const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "cast";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  const int64_t n = x.numElements();
  if (x.dtype == o.dtype) {
    if (n)
      std::memcpy(o.data, x.data, x.bytes());
    return Status();
  }
  return dispatchAny(op, x.dtype, [&](auto fromTag) -> Status {
    using From = decltype(fromTag);
    return dispatchAny(op, o.dtype, [&](auto toTag) -> Status {
      using To = decltype(toTag);
      const From *px = x.as<From>();
      To *po = o.as<To>();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i)
        po[i] = convertScalar<To>(px[i]);
      return Status();
    });
  });
}

Status identityKernel(const std::vector<TensorRef> &inputs,
                      const std::vector<TensorRef> &outputs, const AttrMap &) {
  const char *op = "identity";
  if (Status s = checkArity(op, inputs, 1, 1, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &o = outputs[0];
  if (Status s = checkDType(op, "output", o.dtype, x.dtype); !s)
    return s;
  if (Status s = checkShape(op, "output", o.shape, x.shape); !s)
    return s;
  if (x.numElements() && o.data != x.data) // in place: nothing to move
    std::memcpy(o.data, x.data, x.bytes());
  return Status();
}

} // namespace

void addElementwiseKernels(KernelTable &table) {
  table.insert(table.end(), {
                                {"add", binaryKernel<AddOp>},
                                {"sub", binaryKernel<SubOp>},
                                {"mul", binaryKernel<MulOp>},
                                {"div", binaryKernel<DivOp>},
                                {"pow", binaryKernel<PowOp>},
                                {"max", binaryKernel<MaxOp>},
                                {"min", binaryKernel<MinOp>},
                                {"equal", binaryKernel<EqualOp>},
                                {"less", binaryKernel<LessOp>},
                                {"greater", binaryKernel<GreaterOp>},
                                {"and", binaryKernel<AndOp>},
                                {"or", binaryKernel<OrOp>},
                                {"neg", unaryKernel<NegOp>},
                                {"exp", unaryKernel<ExpOp>},
                                {"log", unaryKernel<LogOp>},
                                {"sqrt", unaryKernel<SqrtOp>},
                                {"reciprocal", unaryKernel<ReciprocalOp>},
                                {"tanh", unaryKernel<TanhOp>},
                                {"erf", unaryKernel<ErfOp>},
                                {"sigmoid", unaryKernel<SigmoidOp>},
                                {"softplus", unaryKernel<SoftplusOp>},
                                {"relu", unaryKernel<ReluOp>},
                                {"cos", unaryKernel<CosOp>},
                                {"sin", unaryKernel<SinOp>},
                                {"abs", unaryKernel<AbsOp>},
                                {"not", unaryKernel<NotOp>},
                                {"where", whereKernel},
                                {"cast", castKernel},
                                {"identity", identityKernel},
                            });
}

} // namespace cpu
} // namespace longctx
