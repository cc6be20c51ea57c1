//===- KernelTestUtil.h - Helpers of the CPU kernel tests -----------------===//
//
// Building tensors, running kernels by name and comparing their outputs with
// values computed by plain loops in double.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace longctx {
namespace kerneltest {

template <typename T> DType dtypeOf();
template <> inline DType dtypeOf<float>() { return DType::F32; }
template <> inline DType dtypeOf<double>() { return DType::F64; }
template <> inline DType dtypeOf<int64_t>() { return DType::I64; }
template <> inline DType dtypeOf<int32_t>() { return DType::I32; }

/// Tolerance relative to max(1, |expected|): f32 1e-6, f64 1e-12.
template <typename T> inline double tolOf() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-12;
}

template <typename T>
inline Tensor tensor(Shape shape, const std::vector<double> &values) {
  Tensor t(dtypeOf<T>(), shape);
  EXPECT_EQ(int64_t(values.size()), t.numElements());
  for (size_t i = 0; i < values.size(); ++i)
    t.as<T>()[i] = T(values[i]);
  return t;
}

inline Tensor boolTensor(Shape shape, const std::vector<int> &values) {
  Tensor t(DType::Bool, shape);
  EXPECT_EQ(int64_t(values.size()), t.numElements());
  for (size_t i = 0; i < values.size(); ++i)
    t.as<uint8_t>()[i] = uint8_t(values[i]);
  return t;
}

template <typename T>
inline Tensor randomTensor(Shape shape, double lo, double hi, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Tensor t(dtypeOf<T>(), shape);
  for (int64_t i = 0; i < t.numElements(); ++i)
    t.as<T>()[i] = T(dist(gen));
  return t;
}

inline std::vector<double> values(const Tensor &t) {
  std::vector<double> v(size_t(t.numElements()));
  for (int64_t i = 0; i < t.numElements(); ++i) {
    switch (t.dtype()) {
    case DType::F32:
      v[i] = t.as<float>()[i];
      break;
    case DType::F64:
      v[i] = t.as<double>()[i];
      break;
    case DType::I64:
      v[i] = double(t.as<int64_t>()[i]);
      break;
    case DType::I32:
      v[i] = t.as<int32_t>()[i];
      break;
    case DType::I8:
      v[i] = t.as<int8_t>()[i];
      break;
    case DType::U8:
    case DType::Bool:
      v[i] = t.as<uint8_t>()[i];
      break;
    default:
      ADD_FAILURE() << "no values() for " << dtypeName(t.dtype());
    }
  }
  return v;
}

inline Status run(const char *op, const std::vector<const Tensor *> &ins,
                  const Tensor &out, const AttrMap &attrs = {}) {
  std::vector<TensorRef> refs;
  for (const Tensor *t : ins)
    refs.push_back(t->ref());
  return runCpuKernel(op, refs, {out.ref()}, attrs);
}

/// Runs a kernel with several outputs.
inline Status runMulti(const char *op, const std::vector<const Tensor *> &ins,
                       const std::vector<const Tensor *> &outs,
                       const AttrMap &attrs = {}) {
  std::vector<TensorRef> in, out;
  for (const Tensor *t : ins)
    in.push_back(t->ref());
  for (const Tensor *t : outs)
    out.push_back(t->ref());
  return runCpuKernel(op, in, out, attrs);
}

/// Runs and expects success.
inline void runOk(const char *op, const std::vector<const Tensor *> &ins,
                  const Tensor &out, const AttrMap &attrs = {}) {
  Status s = run(op, ins, out, attrs);
  ASSERT_TRUE(s.ok()) << op << ": " << s.message();
}

inline void expectNear(const Tensor &got, const std::vector<double> &want,
                       double tol, const std::string &what = "") {
  std::vector<double> g = values(got);
  ASSERT_EQ(g.size(), want.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < g.size() && failures < 5; ++i) {
    bool ok =
        (std::isnan(want[i]) && std::isnan(g[i])) || g[i] == want[i] ||
        std::fabs(g[i] - want[i]) <= tol * std::max(1.0, std::fabs(want[i]));
    if (!ok) {
      ++failures;
      ADD_FAILURE() << what << " [" << i << "]: got " << g[i] << ", want "
                    << want[i];
    }
  }
}

inline void expectExact(const Tensor &got, const std::vector<double> &want,
                        const std::string &what = "") {
  expectNear(got, want, 0.0, what);
}

/// Flat index into `in` (right-aligned numpy broadcast) for flat output index.
inline int64_t broadcastIndex(const Shape &in, const Shape &out, int64_t flat) {
  std::vector<int64_t> idx(out.size());
  for (size_t d = out.size(); d-- > 0;) {
    idx[d] = flat % out[d];
    flat /= out[d];
  }
  int64_t r = 0;
  size_t off = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    r = r * in[d] + (in[d] == 1 ? 0 : idx[off + d]);
  return r;
}

inline std::vector<int64_t> unflatten(const Shape &shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

inline int64_t flatten(const Shape &shape, const std::vector<int64_t> &idx) {
  int64_t r = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    r = r * shape[d] + idx[d];
  return r;
}

inline AttrMap
attrs(std::initializer_list<std::pair<const char *, AttrValue>> kv) {
  AttrMap m;
  for (auto &p : kv)
    m.set(p.first, p.second);
  return m;
}

inline void expectError(const char *op, const std::vector<const Tensor *> &ins,
                        const Tensor &out, const AttrMap &am = {}) {
  Status s = run(op, ins, out, am);
  EXPECT_FALSE(s.ok()) << op;
  EXPECT_EQ(s.message().rfind(std::string(op) + ":", 0), 0u) << s.message();
}

/// Checks `grad` (the kernel's gradient of `loss` w.r.t. the f64 tensor x)
/// against central finite differences of `loss()` at every element of x, or
/// at maxChecks elements spread at random when there are more. Relative
/// tolerance 1e-6 of max(1, |finite difference|).
inline void checkFiniteDifferences(const Tensor &x, const Tensor &grad,
                                   const std::function<double()> &loss,
                                   const std::string &what, int64_t maxChecks,
                                   unsigned seed) {
  ASSERT_EQ(x.dtype(), DType::F64) << what;
  ASSERT_EQ(grad.shape(), x.shape()) << what;
  std::vector<double> g = values(grad);
  std::vector<int64_t> checks;
  const int64_t count = x.numElements();
  if (count <= maxChecks) {
    for (int64_t i = 0; i < count; ++i)
      checks.push_back(i);
  } else {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int64_t> pick(0, count - 1);
    for (int64_t k = 0; k < maxChecks; ++k)
      checks.push_back(pick(gen));
  }
  int failures = 0;
  for (int64_t i : checks) {
    double &xi = x.as<double>()[i];
    const double saved = xi, h = 1e-5 * std::max(1.0, std::fabs(saved));
    xi = saved + h;
    const double lp = loss();
    xi = saved - h;
    const double lm = loss();
    xi = saved;
    const double fd = (lp - lm) / (2 * h);
    if (std::fabs(fd - g[i]) > 1e-6 * std::max(1.0, std::fabs(fd)) && ++failures <= 5)
      ADD_FAILURE() << what << " [" << i << "]: kernel " << g[i] << ", finite differences " << fd;
  }
}

} // namespace kerneltest
} // namespace longctx
