//===- CpuKernelsTest.cpp - CPU kernels against naive reference loops -----===//
//
// Every expected value is hand-written or computed here by plain loops in
// double precision, independent of the kernels' broadcasting and iteration
// helpers.
//
//===----------------------------------------------------------------------===//
#include "KernelTestUtil.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace longctx;
using namespace longctx::kerneltest;

namespace {

template <typename T> class FloatKernels : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FloatKernels, FloatTypes);

//===----------------------------------------------------------------------===//
// Registry
//===----------------------------------------------------------------------===//

TEST(CumSum, InclusiveExclusiveReverseAlongAnyAxis) {
  // x = [[1, 2, 3], [4, 5, 6]]
  Tensor x = tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor out(DType::F32, {2, 3});
  AttrMap attrs;
  attrs.set("axis", int64_t(1));
  runOk("cumsum", {&x}, out, attrs);
  expectNear(out, {1, 3, 6, 4, 9, 15}, 0);
  attrs.set("exclusive", int64_t(1));
  runOk("cumsum", {&x}, out, attrs);
  expectNear(out, {0, 1, 3, 0, 4, 9}, 0);
  attrs.set("reverse", int64_t(1));
  runOk("cumsum", {&x}, out, attrs);
  expectNear(out, {5, 3, 0, 11, 6, 0}, 0);
  AttrMap down;
  down.set("axis", int64_t(0));
  Tensor xi = tensor<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor outi(DType::I64, {2, 3});
  runOk("cumsum", {&xi}, outi, down);
  expectNear(outi, {1, 2, 3, 5, 7, 9}, 0);
  down.set("axis", int64_t(2));
  EXPECT_FALSE(run("cumsum", {&xi}, outi, down).ok());
}

TEST(CpuKernelRegistry, NamesSortedUniqueAndComplete) {
  std::vector<std::string> names = cpuKernelNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_TRUE(std::adjacent_find(names.begin(), names.end()) == names.end());
  const char *expected[] = {
      "add",         "sub",        "mul",           "div",
      "pow",         "max",        "min",           "equal",
      "less",        "greater",    "and",           "or",
      "neg",         "exp",        "log",           "sqrt",
      "reciprocal",  "tanh",       "erf",           "sigmoid",
      "softplus",    "relu",       "cos",           "sin",
      "abs",         "not",        "identity",      "cast",
      "where",       "matmul",     "gemm",          "transpose",
      "reshape",     "expand",     "slice",         "concat",
      "gather",      "softmax",    "log_softmax",   "reduce_sum",
      "reduce_mean", "reduce_max", "trilu",         "range",
      "fill",        "layer_norm", "selective_scan", "cumsum",
      "slice_scatter", "scatter_add", "layer_norm_grad",
      "selective_scan_grad", "selective_scan_state", "selective_scan_state_grad",
      "selective_scan_carry", "selective_scan_carry_combine",
      "cross_entropy", "cross_entropy_grad", "cross_entropy_and_grad",
      "adamw_update", "sgd_update", "rms_norm", "rms_norm_grad", "gated_mlp", "gated_mlp_grad",
      "attention",   "attention_grad", "fused_elementwise"};
  EXPECT_EQ(names.size(), std::size(expected));
  for (const char *op : expected) {
    EXPECT_NE(lookupCpuKernel(op), nullptr) << op;
    EXPECT_TRUE(std::binary_search(names.begin(), names.end(), op)) << op;
  }
  EXPECT_EQ(lookupCpuKernel("nope"), nullptr);
  EXPECT_EQ(lookupCpuKernel(""), nullptr);
  EXPECT_EQ(lookupCpuKernel("ad"), nullptr);
}

TEST(CpuKernelRegistry, UnknownOpIsAnError) {
  Tensor x = tensor<float>({1}, {1});
  Status s = run("frobnicate", {&x}, x);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("frobnicate"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Binary ops
//===----------------------------------------------------------------------===//

struct BroadcastCase {
  Shape a, b, out;
};
const std::vector<BroadcastCase> kBroadcastCases = {
    {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}}, // same shape
    {{2, 3}, {}, {2, 3}},              // scalar b
    {{}, {2, 3}, {2, 3}},              // scalar a
    {{2, 3}, {3}, {2, 3}},             // row
    {{2, 3}, {2, 1}, {2, 3}},          // column
    {{2, 1}, {1, 3}, {2, 3}},          // outer product
    {{4, 1, 3}, {2, 1}, {4, 2, 3}},    // rank mismatch, both broadcast
    {{2, 3, 4, 5}, {3, 1, 5}, {2, 3, 4, 5}},
    {{1}, {5}, {5}},
    {{300, 257}, {257}, {300, 257}}, // trailing-dims operand, parallel
    {{300, 257}, {300, 1}, {300, 257}},
    {{70000}, {70000}, {70000}}, // one long row, parallel segments
    {{3, 40000}, {1}, {3, 40000}},
    {{0, 3}, {3}, {0, 3}}, // empty
};

template <typename T>
void checkBinary(const char *op,
                 const std::function<double(double, double)> &ref, double lo,
                 double hi, bool compare = false) {
  unsigned seed = 1;
  for (const BroadcastCase &c : kBroadcastCases) {
    Tensor a = randomTensor<T>(c.a, lo, hi, seed++);
    Tensor b = randomTensor<T>(c.b, lo, hi, seed++);
    // Make some elements equal so comparisons see ties.
    if (compare && a.numElements() && b.numElements())
      a.as<T>()[0] = b.as<T>()[0];
    Tensor out(compare ? DType::Bool : dtypeOf<T>(), c.out);
    runOk(op, {&a, &b}, out);
    std::vector<double> want(size_t(out.numElements()));
    for (int64_t i = 0; i < out.numElements(); ++i) {
      double va = double(a.as<T>()[broadcastIndex(c.a, c.out, i)]);
      double vb = double(b.as<T>()[broadcastIndex(c.b, c.out, i)]);
      want[i] = ref(va, vb);
    }
    expectNear(out, want, compare ? 0.0 : tolOf<T>(),
               std::string(op) + " " + shapeToString(c.a) + " " +
                   shapeToString(c.b));
  }
}

TYPED_TEST(FloatKernels, BinaryArithmeticBroadcasts) {
  using T = TypeParam;
  checkBinary<T>(
      "add", [](double a, double b) { return a + b; }, -2, 2);
  checkBinary<T>(
      "sub", [](double a, double b) { return a - b; }, -2, 2);
  checkBinary<T>(
      "mul", [](double a, double b) { return a * b; }, -2, 2);
  checkBinary<T>(
      "div", [](double a, double b) { return a / b; }, 0.5, 2);
  checkBinary<T>(
      "pow", [](double a, double b) { return std::pow(a, b); }, 0.5, 2);
  checkBinary<T>(
      "max", [](double a, double b) { return std::max(a, b); }, -2, 2);
  checkBinary<T>(
      "min", [](double a, double b) { return std::min(a, b); }, -2, 2);
}

TYPED_TEST(FloatKernels, CompareBroadcasts) {
  using T = TypeParam;
  checkBinary<T>(
      "equal", [](double a, double b) { return double(a == b); }, -2, 2, true);
  checkBinary<T>(
      "less", [](double a, double b) { return double(a < b); }, -2, 2, true);
  checkBinary<T>(
      "greater", [](double a, double b) { return double(a > b); }, -2, 2, true);
}

TYPED_TEST(FloatKernels, MaxMinPropagateNaN) {
  using T = TypeParam;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = tensor<T>({3}, {nan, 1, 2});
  Tensor b = tensor<T>({3}, {0, nan, 3});
  Tensor out(dtypeOf<T>(), {3});
  runOk("max", {&a, &b}, out);
  expectExact(out, {nan, nan, 3});
  runOk("min", {&a, &b}, out);
  expectExact(out, {nan, nan, 2});
}

template <typename I> void checkIntBinary() {
  Tensor a = tensor<I>({2, 3}, {7, -7, 9, 0, 5, -6});
  Tensor b = tensor<I>({3}, {2, 2, -4});
  Tensor out(dtypeOf<I>(), {2, 3});
  runOk("add", {&a, &b}, out);
  expectExact(out, {9, -5, 5, 2, 7, -10});
  runOk("sub", {&a, &b}, out);
  expectExact(out, {5, -9, 13, -2, 3, -2});
  runOk("mul", {&a, &b}, out);
  expectExact(out, {14, -14, -36, 0, 10, 24});
  runOk("div", {&a, &b}, out); // truncates toward zero
  expectExact(out, {3, -3, -2, 0, 2, 1});
  runOk("max", {&a, &b}, out);
  expectExact(out, {7, 2, 9, 2, 5, -4});
  runOk("min", {&a, &b}, out);
  expectExact(out, {2, -7, -4, 0, 2, -6});

  Tensor col = tensor<I>({2, 1}, {7, 0});
  Tensor cmp(DType::Bool, {2, 3});
  runOk("equal", {&a, &col}, cmp);
  expectExact(cmp, {1, 0, 0, 1, 0, 0});
  runOk("less", {&a, &col}, cmp);
  expectExact(cmp, {0, 1, 0, 0, 0, 1});
  runOk("greater", {&a, &col}, cmp);
  expectExact(cmp, {0, 0, 1, 0, 1, 0});

  Tensor zero = tensor<I>({3}, {1, 0, 1});
  Status s = run("div", {&a, &zero}, out);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("div:", 0), 0u) << s.message();

  // MIN / -1 must not trap.
  Tensor mn = tensor<I>({1}, {0});
  mn.as<I>()[0] = std::numeric_limits<I>::min();
  Tensor m1 = tensor<I>({1}, {-1});
  Tensor o1(dtypeOf<I>(), {1});
  runOk("div", {&mn, &m1}, o1);
  EXPECT_EQ(o1.as<I>()[0], std::numeric_limits<I>::min());
}

TEST(IntKernels, BinaryI64) { checkIntBinary<int64_t>(); }
TEST(IntKernels, BinaryI32) { checkIntBinary<int32_t>(); }

TEST(IntKernels, LargeI64BroadcastParallel) {
  Shape as = {500, 100}, bs = {100};
  Tensor a(DType::I64, as), b(DType::I64, bs), out(DType::I64, as);
  for (int64_t i = 0; i < a.numElements(); ++i)
    a.as<int64_t>()[i] = i * 3 - 7;
  for (int64_t i = 0; i < b.numElements(); ++i)
    b.as<int64_t>()[i] = (int64_t(1) << 40) + i;
  runOk("mul", {&a, &b}, out);
  for (int64_t i = 0; i < out.numElements(); ++i)
    ASSERT_EQ(out.as<int64_t>()[i],
              (i * 3 - 7) * ((int64_t(1) << 40) + i % 100))
        << i;
}

TEST(BoolKernels, LogicAndEqual) {
  Tensor a = boolTensor({2, 2}, {0, 0, 1, 1});
  Tensor b = boolTensor({2}, {0, 1});
  Tensor out(DType::Bool, {2, 2});
  runOk("and", {&a, &b}, out);
  expectExact(out, {0, 0, 0, 1});
  runOk("or", {&a, &b}, out);
  expectExact(out, {0, 1, 1, 1});
  runOk("equal", {&a, &b}, out);
  expectExact(out, {1, 0, 0, 1});
  Tensor scalarTrue = boolTensor({}, {1});
  runOk("and", {&a, &scalarTrue}, out);
  expectExact(out, {0, 0, 1, 1});
  runOk("not", {&a}, out);
  expectExact(out, {1, 1, 0, 0});
}

//===----------------------------------------------------------------------===//
// Unary ops
//===----------------------------------------------------------------------===//

template <typename T>
void checkUnary(const char *op, const std::function<double(double)> &ref,
                double lo, double hi) {
  for (Shape shape : {Shape{2, 3, 5}, Shape{}, Shape{50000}}) {
    Tensor x = randomTensor<T>(shape, lo, hi, 7);
    Tensor out(dtypeOf<T>(), shape);
    runOk(op, {&x}, out);
    std::vector<double> want;
    for (double v : values(x))
      want.push_back(ref(v));
    expectNear(out, want, 4 * tolOf<T>(), op);
  }
}

TYPED_TEST(FloatKernels, UnaryMatchesLibm) {
  using T = TypeParam;
  checkUnary<T>(
      "neg", [](double x) { return -x; }, -3, 3);
  checkUnary<T>(
      "exp", [](double x) { return std::exp(x); }, -3, 3);
  checkUnary<T>(
      "log", [](double x) { return std::log(x); }, 0.1, 5);
  checkUnary<T>(
      "sqrt", [](double x) { return std::sqrt(x); }, 0, 5);
  checkUnary<T>(
      "reciprocal", [](double x) { return 1 / x; }, 0.5, 5);
  checkUnary<T>(
      "tanh", [](double x) { return std::tanh(x); }, -3, 3);
  checkUnary<T>(
      "erf", [](double x) { return std::erf(x); }, -3, 3);
  checkUnary<T>(
      "sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }, -6, 6);
  checkUnary<T>(
      "softplus", [](double x) { return std::log(1 + std::exp(x)); }, -6, 6);
  checkUnary<T>(
      "relu", [](double x) { return x > 0 ? x : 0; }, -3, 3);
  checkUnary<T>(
      "cos", [](double x) { return std::cos(x); }, -3, 3);
  checkUnary<T>(
      "sin", [](double x) { return std::sin(x); }, -3, 3);
  checkUnary<T>(
      "abs", [](double x) { return std::fabs(x); }, -3, 3);
  checkUnary<T>(
      "identity", [](double x) { return x; }, -3, 3);
}

TYPED_TEST(FloatKernels, SoftplusAndSigmoidDoNotOverflow) {
  using T = TypeParam;
  Tensor x = tensor<T>({4}, {100, -100, 1000, -1000});
  Tensor out(dtypeOf<T>(), {4});
  runOk("softplus", {&x}, out);
  std::vector<double> v = values(out);
  EXPECT_EQ(v[0], 100.0);
  EXPECT_EQ(v[2], 1000.0);
  EXPECT_EQ(v[3], 0.0);
  // log1p(exp(-100)) = 3.72e-44: a float denormal (few digits), a double
  // normal.
  ASSERT_TRUE(std::isfinite(v[1]));
  EXPECT_NEAR(v[1], std::exp(-100.0),
              std::exp(-100.0) * (std::is_same_v<T, float> ? 5e-2 : 1e-12));
  runOk("sigmoid", {&x}, out);
  v = values(out);
  EXPECT_EQ(v[0], 1.0);
  EXPECT_EQ(v[2], 1.0);
  EXPECT_EQ(v[3], 0.0);
  ASSERT_TRUE(std::isfinite(v[1]));
  EXPECT_NEAR(v[1], std::exp(-100.0),
              std::exp(-100.0) * (std::is_same_v<T, float> ? 5e-2 : 1e-12));
}

TEST(IntKernels, UnaryI64) {
  Tensor x = tensor<int64_t>({4}, {-3, 0, 5, -1});
  Tensor out(DType::I64, {4});
  runOk("neg", {&x}, out);
  expectExact(out, {3, 0, -5, 1});
  runOk("abs", {&x}, out);
  expectExact(out, {3, 0, 5, 1});
  runOk("relu", {&x}, out);
  expectExact(out, {0, 0, 5, 0});
  runOk("identity", {&x}, out);
  expectExact(out, {-3, 0, 5, -1});
}

//===----------------------------------------------------------------------===//
// cast, where, identity
//===----------------------------------------------------------------------===//

TEST(CastKernel, FloatToInt64Truncates) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = tensor<float>({7}, {-2.7, -0.5, 0, 1.9, 3e10, nan, 1e30});
  Tensor out(DType::I64, {7});
  runOk("cast", {&x}, out);
  const int64_t *o = out.as<int64_t>();
  EXPECT_EQ(o[0], -2);
  EXPECT_EQ(o[1], 0);
  EXPECT_EQ(o[2], 0);
  EXPECT_EQ(o[3], 1);
  EXPECT_EQ(o[4], int64_t(float(3e10)));
  EXPECT_EQ(o[5], 0);                                   // NaN
  EXPECT_EQ(o[6], std::numeric_limits<int64_t>::max()); // saturates
}

TEST(CastKernel, ToBool) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = tensor<double>({5}, {0, -0.0, 0.5, -3, nan});
  Tensor out(DType::Bool, {5});
  runOk("cast", {&x}, out);
  expectExact(out, {0, 0, 1, 1, 1});
  Tensor xi = tensor<int64_t>({3}, {0, 7, -1});
  Tensor outi(DType::Bool, {3});
  runOk("cast", {&xi}, outi);
  expectExact(outi, {0, 1, 1});
}

TEST(CastKernel, BetweenTypes) {
  Tensor b = boolTensor({3}, {1, 0, 1});
  Tensor f(DType::F32, {3});
  runOk("cast", {&b}, f);
  expectExact(f, {1, 0, 1});
  Tensor i = tensor<int64_t>({3}, {-5, 0, 123456789});
  Tensor d(DType::F64, {3});
  runOk("cast", {&i}, d);
  expectExact(d, {-5, 0, 123456789});
  Tensor i32(DType::I32, {3});
  runOk("cast", {&i}, i32);
  expectExact(i32, {-5, 0, 123456789});
  Tensor ff = tensor<float>({2}, {0.25, -1.5});
  Tensor dd(DType::F64, {2});
  runOk("cast", {&ff}, dd);
  expectExact(dd, {0.25, -1.5});
}

TEST(CastKernel, HalfAndBFloat16RoundTrip) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = tensor<float>({7}, {1.0, -0.5, 65504, 70000, 5.960464477539063e-08,
                                 1.0009765625, 3.14159});
  Tensor h(DType::F16, {7}), back(DType::F32, {7});
  runOk("cast", {&x}, h);
  runOk("cast", {&h}, back);
  expectExact(back, {1.0, -0.5, 65504, inf, 5.960464477539063e-08, 1.0009765625,
                     3.140625});
  Tensor bf(DType::BF16, {7});
  runOk("cast", {&x}, bf);
  runOk("cast", {&bf}, back);
  std::vector<double> v = values(back);
  EXPECT_EQ(v[0], 1.0);
  EXPECT_EQ(v[1], -0.5);
  EXPECT_EQ(v[6], 3.140625);
  EXPECT_EQ(v[3], 70144.0); // 8 significant bits
}

TYPED_TEST(FloatKernels, WhereBroadcastsAllThree) {
  using T = TypeParam;
  Tensor c = boolTensor({2, 1}, {1, 0});
  Tensor x = tensor<T>({3}, {1, 2, 3});
  Tensor y = tensor<T>({}, {-1});
  Tensor out(dtypeOf<T>(), {2, 3});
  runOk("where", {&c, &x, &y}, out);
  expectExact(out, {1, 2, 3, -1, -1, -1});
  // Same shape, large enough to run in parallel.
  Shape s = {200, 300};
  Tensor cc(DType::Bool, s);
  for (int64_t i = 0; i < cc.numElements(); ++i)
    cc.as<uint8_t>()[i] = uint8_t(i % 3 == 0);
  Tensor xx = randomTensor<T>(s, -1, 1, 3), yy = randomTensor<T>(s, -1, 1, 4);
  Tensor oo(dtypeOf<T>(), s);
  runOk("where", {&cc, &xx, &yy}, oo);
  std::vector<double> want, vx = values(xx), vy = values(yy);
  for (int64_t i = 0; i < cc.numElements(); ++i)
    want.push_back(i % 3 == 0 ? vx[i] : vy[i]);
  expectExact(oo, want);
}

TEST(WhereKernel, Int64) {
  Tensor c = boolTensor({3}, {0, 1, 0});
  Tensor x = tensor<int64_t>({2, 1}, {10, 20});
  Tensor y = tensor<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor out(DType::I64, {2, 3});
  runOk("where", {&c, &x, &y}, out);
  expectExact(out, {1, 10, 3, 4, 20, 6});
}

//===----------------------------------------------------------------------===//
// matmul, gemm
//===----------------------------------------------------------------------===//

/// Naive batched matmul with numpy batch broadcasting on rank >= 2 operands.
template <typename T>
std::vector<double> naiveMatmul(const Tensor &a, const Tensor &b,
                                const Shape &out) {
  const Shape &as = a.shape(), &bs = b.shape();
  int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  Shape aBatch(as.begin(), as.end() - 2), bBatch(bs.begin(), bs.end() - 2);
  Shape batch(out.begin(), out.end() - 2);
  std::vector<double> r;
  for (int64_t bi = 0; bi < numElements(batch); ++bi) {
    int64_t ab = broadcastIndex(aBatch, batch, bi),
            bb = broadcastIndex(bBatch, batch, bi);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += double(a.as<T>()[ab * m * k + i * k + p]) *
               double(b.as<T>()[bb * k * n + p * n + j]);
        r.push_back(s);
      }
  }
  return r;
}

TYPED_TEST(FloatKernels, MatMulBatchBroadcast) {
  using T = TypeParam;
  struct Case {
    Shape a, b, out;
  };
  for (const Case &c : std::vector<Case>{
           {{3, 4}, {4, 5}, {3, 5}},
           {{2, 3, 4}, {4, 5}, {2, 3, 5}},          // folded into one GEMM
           {{3, 4}, {2, 4, 5}, {2, 3, 5}},          // b batched only
           {{2, 1, 3, 4}, {3, 4, 5}, {2, 3, 3, 5}}, // both broadcast
           {{2, 3, 4}, {2, 4, 5}, {2, 3, 5}},
           {{1, 3, 4}, {2, 1, 4, 5}, {2, 1, 3, 5}},
       }) {
    Tensor a = randomTensor<T>(c.a, -1, 1, 11),
           b = randomTensor<T>(c.b, -1, 1, 12);
    Tensor out(dtypeOf<T>(), c.out);
    runOk("matmul", {&a, &b}, out);
    expectNear(out, naiveMatmul<T>(a, b, c.out), tolOf<T>(),
               shapeToString(c.a) + " x " + shapeToString(c.b));
  }
}

TYPED_TEST(FloatKernels, MatMulVectorOperands) {
  using T = TypeParam;
  Tensor v = tensor<T>({2}, {1, 2});
  Tensor m = tensor<T>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor out(dtypeOf<T>(), {3});
  runOk("matmul", {&v, &m}, out);
  expectExact(out, {9, 12, 15});
  Tensor w = tensor<T>({3}, {1, 0, -1});
  Tensor out2(dtypeOf<T>(), {2});
  runOk("matmul", {&m, &w}, out2);
  expectExact(out2, {-2, -2});
}

TYPED_TEST(FloatKernels, GemmTransposesAndBias) {
  using T = TypeParam;
  const int64_t m = 3, k = 4, n = 5;
  const double alpha = 0.5, beta = 2.0;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (Shape cShape :
           {Shape{}, Shape{n}, Shape{m, 1}, Shape{m, n}, Shape{1, n}}) {
        Tensor a = randomTensor<T>(ta ? Shape{k, m} : Shape{m, k}, -1, 1, 21);
        Tensor b = randomTensor<T>(tb ? Shape{n, k} : Shape{k, n}, -1, 1, 22);
        Tensor c = randomTensor<T>(cShape, -1, 1, 23);
        Tensor out(dtypeOf<T>(), {m, n});
        runOk("gemm", {&a, &b, &c}, out,
              attrs({{"alpha", alpha},
                     {"beta", beta},
                     {"trans_a", int64_t(ta)},
                     {"trans_b", int64_t(tb)}}));
        std::vector<double> want;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) {
              double va = a.as<T>()[ta ? p * m + i : i * k + p];
              double vb = b.as<T>()[tb ? j * k + p : p * n + j];
              s += va * vb;
            }
            double vc = c.as<T>()[broadcastIndex(cShape, {m, n}, i * n + j)];
            want.push_back(alpha * s + beta * vc);
          }
        expectNear(out, want, tolOf<T>(),
                   "ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
                       " c=" + shapeToString(cShape));
      }
}

TYPED_TEST(FloatKernels, GemmDefaultsAndNoBias) {
  using T = TypeParam;
  Tensor a = tensor<T>({2, 2}, {1, 2, 3, 4});
  Tensor b = tensor<T>({2, 2}, {5, 6, 7, 8});
  Tensor out(dtypeOf<T>(), {2, 2});
  runOk("gemm", {&a, &b}, out);
  expectExact(out, {19, 22, 43, 50});
  // alpha = beta = 1 by default.
  Tensor c = tensor<T>({2}, {1, -1});
  runOk("gemm", {&a, &b, &c}, out);
  expectExact(out, {20, 21, 44, 49});
  // beta = 0: c is not read, so NaN there does not leak.
  Tensor cn = tensor<T>({2}, {std::nan(""), 0});
  runOk("gemm", {&a, &b, &cn}, out, attrs({{"beta", 0.0}}));
  expectExact(out, {19, 22, 43, 50});
}

//===----------------------------------------------------------------------===//
// Layout kernels
//===----------------------------------------------------------------------===//

template <typename T>
void checkTranspose(const Shape &in, const std::vector<int64_t> &perm) {
  Tensor x = randomTensor<T>(in, -100, 100, 31);
  Shape outShape;
  for (int64_t p : perm)
    outShape.push_back(in[p]);
  Tensor out(dtypeOf<T>(), outShape);
  runOk("transpose", {&x}, out, attrs({{"perm", perm}}));
  std::vector<double> want, vx = values(x);
  for (int64_t i = 0; i < out.numElements(); ++i) {
    std::vector<int64_t> oi = unflatten(outShape, i), ii(in.size());
    for (size_t d = 0; d < perm.size(); ++d)
      ii[perm[d]] = oi[d];
    want.push_back(vx[flatten(in, ii)]);
  }
  expectExact(out, want, "transpose " + shapeToString(in));
}

TEST(LayoutKernels, Transpose) {
  checkTranspose<float>({2, 3, 4}, {2, 0, 1});
  checkTranspose<double>({2, 3, 4}, {1, 0, 2});
  checkTranspose<int64_t>({2, 3, 4, 5}, {0, 2, 3, 1});
  checkTranspose<float>({100, 70}, {1, 0});       // tiled path
  checkTranspose<double>({3, 64, 48}, {0, 2, 1}); // tiled, batched
  checkTranspose<int32_t>({2, 40, 3, 50}, {3, 1, 2, 0});
  checkTranspose<float>({300, 200}, {1, 0}); // tiled, parallel
  checkTranspose<float>({5}, {0});
  Tensor b = boolTensor({2, 3}, {1, 0, 0, 0, 1, 1});
  Tensor bt(DType::Bool, {3, 2});
  runOk("transpose", {&b}, bt, attrs({{"perm", std::vector<int64_t>{1, 0}}}));
  expectExact(bt, {1, 0, 0, 1, 0, 1});
}

TEST(LayoutKernels, ReshapeAndExpand) {
  Tensor x = tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r(DType::F32, {3, 2});
  runOk("reshape", {&x}, r);
  expectExact(r, {1, 2, 3, 4, 5, 6});
  Tensor bad(DType::F32, {4});
  EXPECT_FALSE(run("reshape", {&x}, bad).ok());

  Tensor col = tensor<int64_t>({3, 1}, {1, 2, 3});
  Tensor e(DType::I64, {2, 3, 4});
  runOk("expand", {&col}, e);
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        want.push_back(j + 1);
  expectExact(e, want);
  Tensor row = tensor<double>({3}, {1, 2, 3});
  Tensor e2(DType::F64, {2, 3});
  runOk("expand", {&row}, e2);
  expectExact(e2, {1, 2, 3, 1, 2, 3});
  Tensor e3(DType::F64, {2, 4});
  EXPECT_FALSE(run("expand", {&row}, e3).ok());
}

TEST(LayoutKernels, SliceWithNegativeSteps) {
  Tensor x(DType::F32, {4, 5});
  for (int i = 0; i < 20; ++i)
    x.as<float>()[i] = float(i);
  Tensor out(DType::F32, {4, 3});
  runOk("slice", {&x}, out,
        attrs({{"starts", std::vector<int64_t>{3, 4}},
               {"steps", std::vector<int64_t>{-1, -2}}}));
  expectExact(out, {19, 17, 15, 14, 12, 10, 9, 7, 5, 4, 2, 0});
  Tensor out2(DType::F32, {2, 2});
  runOk("slice", {&x}, out2,
        attrs({{"starts", std::vector<int64_t>{1, 1}},
               {"steps", std::vector<int64_t>{2, 3}}}));
  expectExact(out2, {6, 9, 16, 19});
  // `sizes`, when given, must agree with the output shape.
  EXPECT_FALSE(run("slice", {&x}, out2,
                   attrs({{"starts", std::vector<int64_t>{1, 1}},
                          {"steps", std::vector<int64_t>{2, 3}},
                          {"sizes", std::vector<int64_t>{2, 1}}}))
                   .ok());
  runOk("slice", {&x}, out2,
        attrs({{"starts", std::vector<int64_t>{1, 1}},
               {"steps", std::vector<int64_t>{2, 3}},
               {"sizes", std::vector<int64_t>{2, 2}}}));
  // Reading past either end is an error, not an out-of-bounds read.
  Tensor out3(DType::F32, {4, 3});
  EXPECT_FALSE(run("slice", {&x}, out3,
                   attrs({{"starts", std::vector<int64_t>{0, 4}},
                          {"steps", std::vector<int64_t>{1, -3}}}))
                   .ok());
  Status s = run("slice", {&x}, out3,
                 attrs({{"starts", std::vector<int64_t>{0, 0}},
                        {"steps", std::vector<int64_t>{1, 0}}}));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("slice:", 0), 0u);

  // Large reversed slice along the last dim (parallel, strided rows).
  Tensor big = randomTensor<double>({100, 400}, -1, 1, 41);
  Tensor rev(DType::F64, {100, 400});
  runOk("slice", {&big}, rev,
        attrs({{"starts", std::vector<int64_t>{0, 399}},
               {"steps", std::vector<int64_t>{1, -1}}}));
  std::vector<double> vb = values(big), want;
  for (int i = 0; i < 100; ++i)
    for (int j = 0; j < 400; ++j)
      want.push_back(vb[i * 400 + 399 - j]);
  expectExact(rev, want);
}

TEST(LayoutKernels, Concat) {
  Tensor a = tensor<float>({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = tensor<float>({2, 2, 3},
                           {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21});
  Tensor out(DType::F32, {2, 3, 3});
  runOk("concat", {&a, &b}, out, attrs({{"axis", int64_t(1)}}));
  expectExact(
      out, {1, 2, 3, 10, 11, 12, 13, 14, 15, 4, 5, 6, 16, 17, 18, 19, 20, 21});
  Tensor c = tensor<int64_t>({1, 2}, {1, 2});
  Tensor d = tensor<int64_t>({2, 2}, {3, 4, 5, 6});
  Tensor out0(DType::I64, {3, 2});
  runOk("concat", {&c, &d}, out0, attrs({{"axis", int64_t(0)}}));
  expectExact(out0, {1, 2, 3, 4, 5, 6});
  Tensor bad(DType::I64, {4, 2});
  EXPECT_FALSE(
      run("concat", {&c, &d}, bad, attrs({{"axis", int64_t(0)}})).ok());
}

TEST(LayoutKernels, GatherNegativeIndexAndRange) {
  Tensor data =
      tensor<float>({3, 4}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  Tensor idx = tensor<int64_t>({2}, {-1, 0});
  Tensor out(DType::F32, {3, 2});
  runOk("gather", {&data, &idx}, out, attrs({{"axis", int64_t(1)}}));
  expectExact(out, {3, 0, 13, 10, 23, 20});
  Tensor idx32 = tensor<int32_t>({2, 2}, {2, -3, 1, 1});
  Tensor out0(DType::F32, {2, 2, 4});
  runOk("gather", {&data, &idx32}, out0, attrs({{"axis", int64_t(0)}}));
  expectExact(out0,
              {20, 21, 22, 23, 0, 1, 2, 3, 10, 11, 12, 13, 10, 11, 12, 13});
  for (int64_t bad : {4, -5}) {
    Tensor bi = tensor<int64_t>({2}, {0, double(bad)});
    Status s = run("gather", {&data, &bi}, out, attrs({{"axis", int64_t(1)}}));
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.message().rfind("gather:", 0), 0u) << s.message();
    EXPECT_NE(s.message().find("out of range"), std::string::npos)
        << s.message();
  }
  Tensor fidx = tensor<float>({2}, {0, 1});
  EXPECT_FALSE(
      run("gather", {&data, &fidx}, out, attrs({{"axis", int64_t(1)}})).ok());
}

TEST(LayoutKernels, TriluUpperLower) {
  Shape s = {2, 3, 4};
  Tensor x(DType::F64, s);
  for (int i = 0; i < 24; ++i)
    x.as<double>()[i] = i + 1;
  for (int upper = 0; upper < 2; ++upper)
    for (int64_t k : {-1, 0, 1}) {
      Tensor out(DType::F64, s);
      runOk("trilu", {&x}, out, attrs({{"upper", int64_t(upper)}, {"k", k}}));
      std::vector<double> want;
      for (int b = 0; b < 2; ++b)
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 4; ++j) {
            bool keep = upper ? j - i >= k : j - i <= k;
            want.push_back(keep ? x.as<double>()[b * 12 + i * 4 + j] : 0);
          }
      expectExact(out, want,
                  "upper=" + std::to_string(upper) + " k=" + std::to_string(k));
    }
  // Hand-checked: lower, k = -1 of a 3x3 of ones.
  Tensor ones = tensor<int64_t>({3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  Tensor lo(DType::I64, {3, 3});
  runOk("trilu", {&ones}, lo,
        attrs({{"upper", int64_t(0)}, {"k", int64_t(-1)}}));
  expectExact(lo, {0, 0, 0, 1, 0, 0, 1, 1, 0});
}

TEST(LayoutKernels, RangeAndFill) {
  Tensor r(DType::F32, {5});
  runOk("range", {}, r, attrs({{"start", 1.0}, {"delta", 0.5}}));
  expectExact(r, {1, 1.5, 2, 2.5, 3});
  Tensor ri(DType::I64, {4});
  runOk("range", {}, ri,
        attrs({{"start", int64_t(10)}, {"delta", int64_t(-3)}}));
  expectExact(ri, {10, 7, 4, 1});
  runOk("range", {}, ri,
        attrs({{"start", 10.0}, {"delta", -3.0}})); // F64Attr form
  expectExact(ri, {10, 7, 4, 1});
  Tensor rd(DType::F64, {3});
  runOk("range", {}, rd, attrs({{"start", int64_t(2)}, {"delta", 0.25}}));
  expectExact(rd, {2, 2.25, 2.5});

  Tensor f(DType::F32, {2, 3});
  runOk("fill", {}, f, attrs({{"value", -2.5}}));
  expectExact(f, {-2.5, -2.5, -2.5, -2.5, -2.5, -2.5});
  Tensor fi(DType::I64, {2});
  const int64_t big = (int64_t(1) << 60) + 1; // not representable as a double
  runOk("fill", {}, fi, attrs({{"value", big}}));
  EXPECT_EQ(fi.as<int64_t>()[0], big);
  EXPECT_EQ(fi.as<int64_t>()[1], big);
  Tensor fb(DType::Bool, {3});
  runOk("fill", {}, fb, attrs({{"value", 1.0}}));
  expectExact(fb, {1, 1, 1});
  Tensor x = tensor<float>({1}, {1});
  EXPECT_FALSE(run("fill", {&x}, f).ok()); // fill takes no inputs
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

enum class Red { Sum, Mean, Max };

template <typename T>
void checkReduce(const char *op, Red kind, const Shape &in,
                 const std::vector<int64_t> &axes, int64_t keepdims,
                 unsigned seed) {
  Tensor x = randomTensor<T>(in, -2, 2, seed);
  std::vector<int64_t> all = axes;
  if (all.empty())
    for (size_t d = 0; d < in.size(); ++d)
      all.push_back(int64_t(d));
  Shape kept = in, outShape;
  for (int64_t a : all)
    kept[a] = 1;
  for (size_t d = 0; d < in.size(); ++d)
    if (keepdims || std::find(all.begin(), all.end(), int64_t(d)) == all.end())
      outShape.push_back(kept[d]);
  Tensor out(dtypeOf<T>(), outShape);
  AttrMap am = attrs({{"keepdims", keepdims}});
  if (!axes.empty())
    am.set("axes", axes);
  runOk(op, {&x}, out, am);
  // Reference: visit every input element, accumulate into its kept slot.
  std::vector<double> acc(
      size_t(numElements(kept)),
      kind == Red::Max ? -std::numeric_limits<double>::infinity() : 0.0);
  std::vector<double> vx = values(x);
  for (int64_t i = 0; i < x.numElements(); ++i) {
    std::vector<int64_t> idx = unflatten(in, i);
    for (int64_t a : all)
      idx[a] = 0;
    double &slot = acc[flatten(kept, idx)];
    slot = kind == Red::Max ? std::max(slot, vx[i]) : slot + vx[i];
  }
  if (kind == Red::Mean)
    for (double &v : acc)
      v /= double(x.numElements() / numElements(kept));
  expectNear(out, acc, tolOf<T>(),
             std::string(op) + " " + shapeToString(in) +
                 " keepdims=" + std::to_string(keepdims));
}

TYPED_TEST(FloatKernels, Reductions) {
  using T = TypeParam;
  struct Case {
    Shape in;
    std::vector<int64_t> axes;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4}, {1}},       {{2, 3, 4}, {2}},       {{2, 3, 4}, {0}},
      {{2, 3, 4}, {0, 2}},    {{2, 3, 4}, {0, 1}},    {{2, 3, 4}, {1, 2}},
      {{2, 3, 4}, {0, 1, 2}}, {{2, 3, 4}, {}},        {{2, 1, 4}, {1}},
      {{2, 3, 4, 5}, {0, 2}}, {{2, 3, 4, 5}, {1, 3}}, {{3, 1, 5}, {0, 1}},
      {{1, 100000}, {1}},     // full reduction split over threads
      {{1000, 64}, {0}},      // column reduction, parallel
      {{64, 1000}, {1}},      // row reduction, parallel
      {{40, 30, 50}, {0, 2}}, // general path, parallel
  };
  unsigned seed = 100;
  for (const Case &c : cases)
    for (int64_t keepdims : {0, 1}) {
      checkReduce<T>("reduce_sum", Red::Sum, c.in, c.axes, keepdims, seed);
      checkReduce<T>("reduce_mean", Red::Mean, c.in, c.axes, keepdims, seed);
      checkReduce<T>("reduce_max", Red::Max, c.in, c.axes, keepdims, seed++);
    }
}

TYPED_TEST(FloatKernels, ReduceMaxPropagatesNaN) {
  using T = TypeParam;
  Tensor x = tensor<T>({2, 3}, {1, std::nan(""), 3, 4, 5, 6});
  Tensor out(dtypeOf<T>(), {2});
  runOk("reduce_max", {&x}, out,
        attrs({{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t(0)}}));
  std::vector<double> v = values(out);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 6);
}

TEST(IntKernels, Reductions) {
  Tensor x = tensor<int64_t>({2, 3}, {1, -2, 3, 4, 5, -6});
  Tensor o0(DType::I64, {3}), o1(DType::I64, {2, 1});
  runOk("reduce_sum", {&x}, o0,
        attrs({{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t(0)}}));
  expectExact(o0, {5, 3, -3});
  runOk("reduce_max", {&x}, o1,
        attrs({{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t(1)}}));
  expectExact(o1, {3, 5});
  Tensor x32 = tensor<int32_t>({4}, {7, 8, 9, 10});
  Tensor s32(DType::I32, {});
  runOk("reduce_sum", {&x32}, s32, attrs({{"keepdims", int64_t(0)}}));
  expectExact(s32, {34});
  Status s =
      run("reduce_mean", {&x}, o0, attrs({{"axes", std::vector<int64_t>{0}}}));
  EXPECT_FALSE(s.ok());
}

//===----------------------------------------------------------------------===//
// softmax, log_softmax
//===----------------------------------------------------------------------===//

template <typename T>
void checkSoftmax(const Shape &shape, int64_t axis, unsigned seed) {
  Tensor x = randomTensor<T>(shape, -5, 5, seed);
  Tensor y(dtypeOf<T>(), shape), ly(dtypeOf<T>(), shape);
  runOk("softmax", {&x}, y, attrs({{"axis", axis}}));
  runOk("log_softmax", {&x}, ly, attrs({{"axis", axis}}));
  std::vector<double> vx = values(x), want(vx.size()), wantLog(vx.size());
  for (int64_t i = 0; i < x.numElements(); ++i) {
    std::vector<int64_t> idx = unflatten(shape, i);
    double m = -INFINITY, s = 0;
    for (int64_t a = 0; a < shape[axis]; ++a) {
      idx[axis] = a;
      m = std::max(m, vx[flatten(shape, idx)]);
    }
    for (int64_t a = 0; a < shape[axis]; ++a) {
      idx[axis] = a;
      s += std::exp(vx[flatten(shape, idx)] - m);
    }
    want[i] = std::exp(vx[i] - m) / s;
    wantLog[i] = vx[i] - m - std::log(s);
  }
  std::string what = shapeToString(shape) + " axis " + std::to_string(axis);
  expectNear(y, want, tolOf<T>(), "softmax " + what);
  expectNear(ly, wantLog, 2 * tolOf<T>(), "log_softmax " + what);
}

TYPED_TEST(FloatKernels, SoftmaxAlongAnyAxis) {
  using T = TypeParam;
  for (int64_t axis = 0; axis < 3; ++axis)
    checkSoftmax<T>({3, 4, 5}, axis, 51 + unsigned(axis));
  checkSoftmax<T>({7}, 0, 55);
  checkSoftmax<T>({4, 300, 30}, 1, 56); // parallel, non-last axis
  checkSoftmax<T>({2, 3, 600}, 1, 57);  // several column blocks
  checkSoftmax<T>({200, 300}, 1, 58);   // parallel rows
  checkSoftmax<T>({200, 300}, 0, 59);
}

TYPED_TEST(FloatKernels, SoftmaxIsStableForLargeInputs) {
  using T = TypeParam;
  Tensor x = tensor<T>({3}, {1000, 1000, -1000});
  Tensor y(dtypeOf<T>(), {3});
  runOk("softmax", {&x}, y, attrs({{"axis", int64_t(0)}}));
  expectNear(y, {0.5, 0.5, 0}, tolOf<T>());
  runOk("log_softmax", {&x}, y, attrs({{"axis", int64_t(0)}}));
  expectNear(y, {-std::log(2.0), -std::log(2.0), -2000 - std::log(2.0)},
             tolOf<T>());
}

//===----------------------------------------------------------------------===//
// layer_norm
//===----------------------------------------------------------------------===//

template <typename T>
void checkLayerNorm(const Shape &shape, int64_t axis, bool withBias) {
  const double eps = 1e-5;
  Tensor x = randomTensor<T>(shape, -3, 3, 61);
  Shape norm(shape.begin() + axis, shape.end());
  Tensor g = randomTensor<T>(norm, 0.5, 1.5, 62),
         b = randomTensor<T>(norm, -1, 1, 63);
  Tensor y(dtypeOf<T>(), shape);
  std::vector<const Tensor *> ins = {&x, &g};
  if (withBias)
    ins.push_back(&b);
  runOk("layer_norm", ins, y, attrs({{"axis", axis}, {"epsilon", eps}}));
  int64_t n = numElements(norm), rows = x.numElements() / n;
  std::vector<double> vx = values(x), vg = values(g), vb = values(b), want;
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i)
      mean += vx[r * n + i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i)
      var += (vx[r * n + i] - mean) * (vx[r * n + i] - mean);
    var /= double(n);
    for (int64_t i = 0; i < n; ++i)
      want.push_back((vx[r * n + i] - mean) / std::sqrt(var + eps) * vg[i] +
                     (withBias ? vb[i] : 0));
  }
  expectNear(y, want, tolOf<T>(),
             "layer_norm " + shapeToString(shape) + " axis " +
                 std::to_string(axis));
}

TYPED_TEST(FloatKernels, LayerNorm) {
  using T = TypeParam;
  for (bool bias : {false, true}) {
    checkLayerNorm<T>({2, 3, 4}, 2, bias);
    checkLayerNorm<T>({2, 3, 4}, 1, bias);
    checkLayerNorm<T>({2, 3, 4}, 0, bias);
    checkLayerNorm<T>({256, 512}, 1, bias); // parallel rows
  }
}

//===----------------------------------------------------------------------===//
// selective_scan
//===----------------------------------------------------------------------===//

template <typename T>
void checkSelectiveScan(int64_t B, int64_t S, int64_t E, int64_t N) {
  Tensor u = randomTensor<T>({B, S, E}, -1, 1, 71);
  Tensor delta = randomTensor<T>({B, S, E}, 0.01, 0.5, 72);
  Tensor A = randomTensor<T>({E, N}, -2, -0.1, 73);
  Tensor Bm = randomTensor<T>({B, S, N}, -1, 1, 74);
  Tensor C = randomTensor<T>({B, S, N}, -1, 1, 75);
  Tensor y(dtypeOf<T>(), {B, S, E});
  runOk("selective_scan", {&u, &delta, &A, &Bm, &C}, y);
  std::vector<double> vu = values(u), vd = values(delta), va = values(A),
                      vb = values(Bm), vc = values(C), want(size_t(B * S * E));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t e = 0; e < E; ++e) {
      std::vector<double> h(size_t(N), 0.0);
      for (int64_t s = 0; s < S; ++s) {
        double d = vd[(b * S + s) * E + e], x = vu[(b * S + s) * E + e],
               acc = 0;
        for (int64_t n = 0; n < N; ++n) {
          h[n] = std::exp(d * va[e * N + n]) * h[n] +
                 d * x * vb[(b * S + s) * N + n];
          acc += h[n] * vc[(b * S + s) * N + n];
        }
        want[(b * S + s) * E + e] = acc;
      }
    }
  expectNear(y, want, tolOf<T>(),
             "selective_scan B=" + std::to_string(B) +
                 " S=" + std::to_string(S) + " E=" + std::to_string(E) +
                 " N=" + std::to_string(N));
}

TYPED_TEST(FloatKernels, SelectiveScanMatchesNaiveLoop) {
  using T = TypeParam;
  checkSelectiveScan<T>(1, 1, 1, 1);
  checkSelectiveScan<T>(2, 7, 19, 5);   // E crosses a channel block
  checkSelectiveScan<T>(2, 64, 40, 16); // parallel
}

TEST(SelectiveScanKernel, HandComputed) {
  // E = N = 1: h1 = 0.5*1*2 = 1, y1 = 3; h2 = exp(-0.5)*1 + 0.5*2*2 = 2.6065,
  // y2 = 3*h2.
  Tensor u = tensor<double>({1, 2, 1}, {1, 2});
  Tensor d = tensor<double>({1, 2, 1}, {0.5, 0.5});
  Tensor A = tensor<double>({1, 1}, {-1});
  Tensor Bm = tensor<double>({1, 2, 1}, {2, 2});
  Tensor C = tensor<double>({1, 2, 1}, {3, 3});
  Tensor y(DType::F64, {1, 2, 1});
  runOk("selective_scan", {&u, &d, &A, &Bm, &C}, y);
  expectNear(y, {3, 3 * (std::exp(-0.5) + 2)}, 1e-12);
}

//===----------------------------------------------------------------------===//
// Error reporting
//===----------------------------------------------------------------------===//

TEST(KernelErrors, WrongInputCounts) {
  Tensor f = tensor<float>({2}, {1, 2});
  Tensor out(DType::F32, {2});
  expectError("add", {&f}, out);
  expectError("add", {&f, &f, &f}, out);
  expectError("exp", {}, out);
  expectError("where", {&f, &f}, out);
  expectError("selective_scan", {&f, &f, &f, &f}, out);
  expectError("gemm", {&f}, out);
  expectError("layer_norm", {&f}, out);
  expectError("range", {&f}, out);
  std::vector<TensorRef> noOutputs;
  Status s = runCpuKernel("add", {f.ref(), f.ref()}, noOutputs, {});
  EXPECT_FALSE(s.ok());
}

TEST(KernelErrors, WrongDTypes) {
  Tensor f = tensor<float>({2}, {1, 2});
  Tensor d = tensor<double>({2}, {1, 2});
  Tensor i = tensor<int64_t>({2}, {1, 2});
  Tensor b = boolTensor({2}, {1, 0});
  Tensor outF(DType::F32, {2}), outI(DType::I64, {2}), outB(DType::Bool, {2});
  expectError("add", {&f, &d}, outF);  // mixed input dtypes
  expectError("add", {&f, &f}, outI);  // wrong output dtype
  expectError("less", {&f, &f}, outF); // comparison must write bool
  expectError("and", {&f, &f}, outF);  // logic is bool only
  expectError("less", {&b, &b}, outB); // only equal takes bool
  expectError("pow", {&i, &i}, outI);  // pow is float only
  expectError("exp", {&i}, outI);
  expectError("not", {&f}, outF);
  expectError("softmax", {&i}, outI);
  expectError("where", {&f, &f, &f}, outF); // condition must be bool
  expectError("where", {&b, &f, &d}, outF);
  expectError("matmul", {&i, &i}, outI);
  expectError("selective_scan", {&f, &f, &f, &f, &f}, outF);
  Tensor sq = tensor<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor sqo(DType::I64, {2, 2});
  expectError("layer_norm", {&sq, &i}, sqo);
}

TEST(KernelErrors, WrongShapes) {
  Tensor a = tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = tensor<float>({4}, {1, 2, 3, 4});
  Tensor out(DType::F32, {2, 3});
  expectError("add", {&a, &b}, out); // does not broadcast
  Tensor wrongOut(DType::F32, {3, 2});
  expectError("add", {&a, &a}, wrongOut);
  Tensor bigOut(DType::F32,
                {4, 2, 3}); // larger than the broadcast of the inputs
  expectError("add", {&a, &a}, bigOut);
  Tensor m = tensor<float>({2, 2}, {1, 2, 3, 4});
  Tensor mo(DType::F32, {2, 2});
  expectError("matmul", {&a, &m}, mo); // K mismatch
  expectError("transpose", {&a}, out,
              attrs({{"perm", std::vector<int64_t>{0, 0}}}));
  expectError("softmax", {&a}, out, attrs({{"axis", int64_t(2)}}));
  Tensor r(DType::F32, {2});
  expectError("reduce_sum", {&a}, r,
              attrs({{"axes", std::vector<int64_t>{0}}}));
  expectError("reduce_sum", {&a}, out,
              attrs({{"axes", std::vector<int64_t>{1, 0}}}));
  expectError("trilu", {&b}, b);
}

} // namespace

namespace longctx {
namespace {

using namespace kerneltest;

/// Every kernel the planner may run in place gives the same bits when its
/// output is the buffer of an input of the same size (the first such input;
/// a broadcast operand beside it).
TEST(InPlaceKernels, SameResultWhenTheOutputIsAnInput) {
  const char *binary[] = {"add", "sub", "mul", "div", "pow", "max", "min"};
  const char *unary[] = {"neg", "exp", "log", "sqrt", "reciprocal", "tanh", "erf", "sigmoid",
                         "softplus", "relu", "cos", "sin", "abs", "identity"};
  Tensor a = randomTensor<float>({4, 8}, 0.5, 2.0, 1);
  Tensor b = randomTensor<float>({8}, 0.5, 2.0, 2);
  auto expectSame = [](const char *op, const Tensor &expected, const Tensor &actual) {
    EXPECT_EQ(std::memcmp(expected.data(), actual.data(), size_t(expected.bytes())), 0) << op;
  };
  for (const char *op : binary) {
    ASSERT_TRUE(cpuKernelAllowsInPlace(op)) << op;
    Tensor expected(DType::F32, {4, 8});
    runOk(op, {&a, &b}, expected);
    Tensor inPlace = a;
    runOk(op, {&inPlace, &b}, inPlace);
    expectSame(op, expected, inPlace);
  }
  for (const char *op : unary) {
    ASSERT_TRUE(cpuKernelAllowsInPlace(op)) << op;
    Tensor expected(DType::F32, {4, 8});
    runOk(op, {&a}, expected);
    Tensor inPlace = a;
    runOk(op, {&inPlace}, inPlace);
    expectSame(op, expected, inPlace);
  }
  Tensor cond = boolTensor({8}, {1, 0, 1, 1, 0, 0, 1, 0});
  Tensor expected(DType::F32, {4, 8});
  runOk("where", {&cond, &a, &b}, expected);
  Tensor inPlace = a;
  runOk("where", {&cond, &inPlace, &b}, inPlace);
  expectSame("where", expected, inPlace);
  // reshape: the same bytes under another shape.
  Tensor flat = a;
  TensorRef view = flat.ref();
  view.shape = {32};
  ASSERT_TRUE(runCpuKernel("reshape", {flat.ref()}, {view}, {}).ok());
  expectSame("reshape", a, flat);
  EXPECT_FALSE(cpuKernelAllowsInPlace("matmul"));
  EXPECT_FALSE(cpuKernelAllowsInPlace("softmax"));
}

} // namespace
} // namespace longctx

namespace longctx {
namespace {

using namespace kerneltest;

/// cross_entropy_and_grad = cross_entropy{shift 0, reduction sum} and
/// cross_entropy_grad of it for dloss = 1, in one pass.
TEST(CrossEntropyAndGrad, EqualsLossAndGradient) {
  Tensor logits = randomTensor<double>({5, 7}, -3.0, 3.0, 11);
  Tensor targets(DType::I64, {5});
  const int64_t labels[] = {3, -100, 0, 6, 2};
  std::copy(std::begin(labels), std::end(labels), targets.as<int64_t>());
  AttrMap sum;
  sum.set("shift", int64_t(0));
  sum.set("reduction", int64_t(1));
  Tensor loss(DType::F64, {}), one(DType::F64, {}), grad(DType::F64, {5, 7});
  runOk("cross_entropy", {&logits, &targets}, loss, sum);
  *one.as<double>() = 1.0;
  runOk("cross_entropy_grad", {&logits, &targets, &one}, grad, sum);
  Tensor fusedLoss(DType::F64, {}), fusedGrad(DType::F64, {5, 7});
  ASSERT_TRUE(runMulti("cross_entropy_and_grad", {&logits, &targets}, {&fusedLoss, &fusedGrad}).ok());
  EXPECT_NEAR(*fusedLoss.as<double>(), *loss.as<double>(), 1e-12);
  for (int64_t i = 0; i < grad.numElements(); ++i)
    EXPECT_NEAR(fusedGrad.as<double>()[i], grad.as<double>()[i], 1e-12) << i;
  // The ignored row has no gradient.
  for (int64_t i = 7; i < 14; ++i)
    EXPECT_EQ(fusedGrad.as<double>()[i], 0.0);
}

} // namespace
} // namespace longctx

namespace longctx {
namespace {

using namespace kerneltest;

/// A scan cut into two time shards chained by their state equals the whole
/// scan, forward and backward: the second shard starts from the first's
/// final state, and the first shard's backward starts from the cotangent
/// the second shard gives its initial state.
TEST(SelectiveScanState, ShardsChainedByTheStateEqualTheWholeScan) {
  const int64_t batch = 2, seq = 7, e = 3, n = 4, cut = 3;
  Tensor u = randomTensor<double>({batch, seq, e}, -1, 1, 1);
  Tensor delta = randomTensor<double>({batch, seq, e}, 0.1, 0.9, 2);
  Tensor a = randomTensor<double>({e, n}, -1, -0.1, 3);
  Tensor bm = randomTensor<double>({batch, seq, n}, -1, 1, 4);
  Tensor c = randomTensor<double>({batch, seq, n}, -1, 1, 5);
  Tensor dy = randomTensor<double>({batch, seq, e}, -1, 1, 6);
  auto rows = [](const Tensor &t, int64_t from, int64_t count) {
    Tensor out(t.dtype(), {t.shape()[0], count, t.shape()[2]});
    const int64_t width = t.shape()[2];
    for (int64_t b = 0; b < t.shape()[0]; ++b)
      std::copy(t.as<double>() + (b * t.shape()[1] + from) * width,
                t.as<double>() + (b * t.shape()[1] + from + count) * width,
                out.as<double>() + b * count * width);
    return out;
  };
  Tensor whole(DType::F64, {batch, seq, e});
  runOk("selective_scan", {&u, &delta, &a, &bm, &c}, whole);
  Tensor zero(DType::F64, {batch, e, n});
  std::fill(zero.as<double>(), zero.as<double>() + zero.numElements(), 0.0);
  Tensor u1 = rows(u, 0, cut), d1 = rows(delta, 0, cut), b1 = rows(bm, 0, cut), c1 = rows(c, 0, cut);
  Tensor u2 = rows(u, cut, seq - cut), d2 = rows(delta, cut, seq - cut),
         b2 = rows(bm, cut, seq - cut), c2 = rows(c, cut, seq - cut);
  Tensor y1(DType::F64, {batch, cut, e}), h1(DType::F64, {batch, e, n});
  Tensor y2(DType::F64, {batch, seq - cut, e}), h2(DType::F64, {batch, e, n});
  ASSERT_TRUE(runMulti("selective_scan_state", {&u1, &d1, &a, &b1, &c1, &zero}, {&y1, &h1}).ok());
  ASSERT_TRUE(runMulti("selective_scan_state", {&u2, &d2, &a, &b2, &c2, &h1}, {&y2, &h2}).ok());
  Tensor wholeFirst = rows(whole, 0, cut), wholeSecond = rows(whole, cut, seq - cut);
  for (int64_t i = 0; i < y1.numElements(); ++i)
    EXPECT_NEAR(y1.as<double>()[i], wholeFirst.as<double>()[i], 1e-12);
  for (int64_t i = 0; i < y2.numElements(); ++i)
    EXPECT_NEAR(y2.as<double>()[i], wholeSecond.as<double>()[i], 1e-12);

  // Backward: the whole scan's gradients against the chained shards'.
  Tensor du(DType::F64, {batch, seq, e}), dd(DType::F64, {batch, seq, e}), da(DType::F64, {e, n}),
      db(DType::F64, {batch, seq, n}), dc(DType::F64, {batch, seq, n});
  ASSERT_TRUE(runMulti("selective_scan_grad", {&dy, &u, &delta, &a, &bm, &c},
                       {&du, &dd, &da, &db, &dc})
                  .ok());
  Tensor dy1 = rows(dy, 0, cut), dy2 = rows(dy, cut, seq - cut);
  auto shardGrads = [&](const Tensor &dyS, const Tensor &dfinal, const Tensor &uS,
                        const Tensor &dS, const Tensor &bS, const Tensor &cS, const Tensor &h0) {
    int64_t len = uS.shape()[1];
    std::vector<Tensor> g = {Tensor(DType::F64, {batch, len, e}), Tensor(DType::F64, {batch, len, e}),
                             Tensor(DType::F64, {e, n}), Tensor(DType::F64, {batch, len, n}),
                             Tensor(DType::F64, {batch, len, n}), Tensor(DType::F64, {batch, e, n})};
    EXPECT_TRUE(runMulti("selective_scan_state_grad", {&dyS, &dfinal, &uS, &dS, &a, &bS, &cS, &h0},
                         {&g[0], &g[1], &g[2], &g[3], &g[4], &g[5]})
                    .ok());
    return g;
  };
  std::vector<Tensor> g2 = shardGrads(dy2, zero, u2, d2, b2, c2, h1);
  std::vector<Tensor> g1 = shardGrads(dy1, g2[5], u1, d1, b1, c1, zero);
  auto expectRows = [&](const Tensor &whole, const Tensor &part, int64_t from) {
    Tensor expected = rows(whole, from, part.shape()[1]);
    for (int64_t i = 0; i < part.numElements(); ++i)
      EXPECT_NEAR(part.as<double>()[i], expected.as<double>()[i], 1e-10);
  };
  expectRows(du, g1[0], 0);
  expectRows(du, g2[0], cut);
  expectRows(dd, g1[1], 0);
  expectRows(dd, g2[1], cut);
  expectRows(db, g1[3], 0);
  expectRows(db, g2[3], cut);
  expectRows(dc, g1[4], 0);
  expectRows(dc, g2[4], cut);
  for (int64_t i = 0; i < da.numElements(); ++i)
    EXPECT_NEAR(g1[2].as<double>()[i] + g2[2].as<double>()[i], da.as<double>()[i], 1e-10);

  // The same with the states recomputed from checkpoints every 2 steps.
  AttrMap chunked;
  chunked.set("chunk", int64_t(2));
  std::vector<Tensor> r = {Tensor(DType::F64, {batch, seq - cut, e}),
                           Tensor(DType::F64, {batch, seq - cut, e}), Tensor(DType::F64, {e, n}),
                           Tensor(DType::F64, {batch, seq - cut, n}),
                           Tensor(DType::F64, {batch, seq - cut, n}), Tensor(DType::F64, {batch, e, n})};
  ASSERT_TRUE(runMulti("selective_scan_state_grad", {&dy2, &zero, &u2, &d2, &a, &b2, &c2, &h1},
                       {&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]}, chunked)
                  .ok());
  for (size_t k = 0; k < r.size(); ++k)
    for (int64_t i = 0; i < r[k].numElements(); ++i)
      EXPECT_NEAR(r[k].as<double>()[i], g2[k].as<double>()[i], 1e-10) << k;
}

} // namespace
} // namespace longctx
