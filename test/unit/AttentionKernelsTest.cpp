//===- AttentionKernelsTest.cpp - Fused attention and its gradient --------===//
//
// attention is checked against a naive double-precision reference that forms
// the whole score matrix (scores, mask, softmax, product with v), for causal
// and full masks, S == T and S != T, sequence lengths that are not multiples
// of the tile size, grouped-query heads and D != Dv. attention_grad is checked
// against central finite differences, in float64, of sum(w * attention(...))
// for a random w, and both kernels must give bitwise the same results for any
// thread count.
//
//===----------------------------------------------------------------------===//
#include "KernelTestUtil.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace longctx;
using namespace longctx::kerneltest;

namespace {

struct Config {
  int64_t b, h, hk, s, t, d, dv;
  int64_t causal;
  double scale = 0; // 0: the default 1/sqrt(D), attribute left out

  std::string name() const {
    return "B=" + std::to_string(b) + " H=" + std::to_string(h) +
           " Hk=" + std::to_string(hk) + " S=" + std::to_string(s) +
           " T=" + std::to_string(t) + " D=" + std::to_string(d) +
           " Dv=" + std::to_string(dv) + " causal=" + std::to_string(causal);
  }
  Shape qShape() const { return {b, h, s, d}; }
  Shape kShape() const { return {b, hk, t, d}; }
  Shape vShape() const { return {b, hk, t, dv}; }
  Shape oShape() const { return {b, h, s, dv}; }
  Shape lseShape() const { return {b, h, s}; }
  AttrMap attrMap() const {
    AttrMap am;
    am.set("causal", causal);
    if (scale != 0)
      am.set("scale", scale);
    return am;
  }
  double effectiveScale() const {
    return scale != 0 ? scale : 1.0 / std::sqrt(double(d));
  }
};

/// Naive attention in double: the full score row, the mask, softmax, o and
/// lse (-inf and o = 0 for a query that sees no key).
void referenceAttention(const Config &c, const std::vector<double> &q,
                        const std::vector<double> &k,
                        const std::vector<double> &v, std::vector<double> &o,
                        std::vector<double> &lse) {
  o.assign(size_t(c.b * c.h * c.s * c.dv), 0.0);
  lse.assign(size_t(c.b * c.h * c.s), 0.0);
  const double scale = c.effectiveScale();
  std::vector<double> scores(size_t(c.t));
  for (int64_t b = 0; b < c.b; ++b)
    for (int64_t h = 0; h < c.h; ++h) {
      const int64_t kvh = h / (c.h / c.hk);
      for (int64_t i = 0; i < c.s; ++i) {
        const double *qi = &q[size_t(((b * c.h + h) * c.s + i) * c.d)];
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c.t; ++j) {
          const double *kj = &k[size_t(((b * c.hk + kvh) * c.t + j) * c.d)];
          double dot = 0;
          for (int64_t e = 0; e < c.d; ++e)
            dot += qi[e] * kj[e];
          const bool seen = !c.causal || j <= i + (c.t - c.s);
          scores[j] =
              seen ? scale * dot : -std::numeric_limits<double>::infinity();
          mx = std::max(mx, scores[j]);
        }
        const size_t row = size_t((b * c.h + h) * c.s + i);
        if (mx == -std::numeric_limits<double>::infinity()) {
          lse[row] = mx;
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < c.t; ++j)
          sum += std::exp(scores[j] - mx);
        lse[row] = mx + std::log(sum);
        for (int64_t j = 0; j < c.t; ++j) {
          const double p = std::exp(scores[j] - mx) / sum;
          const double *vj = &v[size_t(((b * c.hk + kvh) * c.t + j) * c.dv)];
          for (int64_t e = 0; e < c.dv; ++e)
            o[row * size_t(c.dv) + size_t(e)] += p * vj[e];
        }
      }
    }
}

struct Inputs {
  Tensor q, k, v;
};

template <typename T> Inputs randomInputs(const Config &c, unsigned seed) {
  return {randomTensor<T>(c.qShape(), -1, 1, seed),
          randomTensor<T>(c.kShape(), -1, 1, seed + 1),
          randomTensor<T>(c.vShape(), -1, 1, seed + 2)};
}

template <typename T>
void runAttention(const Config &c, const Inputs &in, Tensor &o, Tensor &lse) {
  o = Tensor(dtypeOf<T>(), c.oShape());
  lse = Tensor(dtypeOf<T>(), c.lseShape());
  Status s = runMulti("attention", {&in.q, &in.k, &in.v}, {&o, &lse},
                      c.attrMap());
  ASSERT_TRUE(s.ok()) << c.name() << ": " << s.message();
}

const Config kForwardConfigs[] = {
    // S == T, one tile.
    {2, 2, 2, 16, 16, 8, 8, 1},
    {2, 2, 2, 16, 16, 8, 8, 0},
    // S < T, bottom-right aligned causal mask; D != Dv.
    {1, 2, 2, 5, 9, 4, 6, 1},
    {1, 2, 2, 5, 9, 4, 6, 0},
    // S > T: the first S - T queries see no key.
    {1, 2, 1, 9, 5, 4, 4, 1},
    // Not multiples of the tile size; grouped-query heads.
    {1, 4, 2, 70, 70, 16, 8, 1},
    {1, 4, 2, 70, 70, 16, 8, 0},
    {1, 4, 1, 130, 130, 8, 12, 1},
    {2, 4, 1, 130, 130, 8, 12, 0},
    {1, 2, 2, 70, 130, 8, 8, 1},
    {1, 2, 2, 130, 70, 8, 8, 1},
    {1, 4, 2, 130, 200, 32, 16, 1, 0.3},
    {1, 3, 3, 1, 100, 8, 8, 1},
    {1, 2, 1, 100, 1, 8, 8, 1},
};

template <typename T> class AttentionForward : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(AttentionForward, FloatTypes);

TYPED_TEST(AttentionForward, MatchesNaiveReference) {
  using T = TypeParam;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  unsigned seed = 100;
  for (const Config &c : kForwardConfigs) {
    Inputs in = randomInputs<T>(c, seed += 10);
    Tensor o, lse;
    runAttention<T>(c, in, o, lse);
    std::vector<double> wantO, wantLse;
    referenceAttention(c, values(in.q), values(in.k), values(in.v), wantO,
                       wantLse);
    expectNear(o, wantO, tol, "o " + c.name());
    expectNear(lse, wantLse, tol, "lse " + c.name());
  }
}

TYPED_TEST(AttentionForward, LargeScoresStayFinite) {
  // Scores of several hundred: the online softmax must rescale, never
  // overflow.
  using T = TypeParam;
  const Config c{1, 1, 1, 150, 150, 4, 4, 1, 40.0};
  Inputs in = randomInputs<T>(c, 7);
  Tensor o, lse;
  runAttention<T>(c, in, o, lse);
  std::vector<double> wantO, wantLse;
  referenceAttention(c, values(in.q), values(in.k), values(in.v), wantO,
                     wantLse);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  expectNear(o, wantO, tol, "o");
  expectNear(lse, wantLse, tol, "lse");
}

TEST(Attention, DefaultAttributes) {
  // Default: causal, scale 1/sqrt(D).
  const Config c{1, 2, 2, 20, 20, 9, 5, 1};
  Inputs in = randomInputs<double>(c, 3);
  Tensor o(DType::F64, c.oShape()), lse(DType::F64, c.lseShape());
  ASSERT_TRUE(runMulti("attention", {&in.q, &in.k, &in.v}, {&o, &lse}).ok());
  std::vector<double> wantO, wantLse;
  referenceAttention(c, values(in.q), values(in.k), values(in.v), wantO,
                     wantLse);
  expectNear(o, wantO, 1e-12, "o");
  expectNear(lse, wantLse, 1e-12, "lse");
}

TEST(Attention, EmptySequences) {
  // T == 0: o = 0, lse = -inf; S == 0: nothing to write.
  const Config noKeys{1, 2, 1, 3, 0, 4, 5, 0};
  Inputs in = randomInputs<float>(noKeys, 1);
  Tensor o(DType::F32, noKeys.oShape()), lse(DType::F32, noKeys.lseShape());
  for (int64_t i = 0; i < o.numElements(); ++i)
    o.as<float>()[i] = 7;
  ASSERT_TRUE(runMulti("attention", {&in.q, &in.k, &in.v}, {&o, &lse},
                       noKeys.attrMap())
                  .ok());
  expectExact(o, std::vector<double>(size_t(o.numElements()), 0.0), "o");
  expectExact(lse,
              std::vector<double>(size_t(lse.numElements()),
                                  -std::numeric_limits<double>::infinity()),
              "lse");
  // Its gradient: dq = 0, dk and dv empty.
  Tensor dq(DType::F32, noKeys.qShape()), dk(DType::F32, noKeys.kShape()),
      dv(DType::F32, noKeys.vShape());
  for (int64_t i = 0; i < dq.numElements(); ++i)
    dq.as<float>()[i] = 7;
  ASSERT_TRUE(runMulti("attention_grad", {&o, &in.q, &in.k, &in.v, &o, &lse},
                       {&dq, &dk, &dv}, noKeys.attrMap())
                  .ok());
  expectExact(dq, std::vector<double>(size_t(dq.numElements()), 0.0), "dq");

  const Config noQueries{2, 2, 2, 0, 6, 4, 3, 1};
  Inputs in2 = randomInputs<double>(noQueries, 2);
  Tensor o2(DType::F64, noQueries.oShape()),
      lse2(DType::F64, noQueries.lseShape());
  ASSERT_TRUE(runMulti("attention", {&in2.q, &in2.k, &in2.v}, {&o2, &lse2},
                       noQueries.attrMap())
                  .ok());
  Tensor dq2(DType::F64, noQueries.qShape()),
      dk2(DType::F64, noQueries.kShape()), dv2(DType::F64, noQueries.vShape());
  for (Tensor *t : {&dk2, &dv2})
    for (int64_t i = 0; i < t->numElements(); ++i)
      t->as<double>()[i] = 7;
  ASSERT_TRUE(runMulti("attention_grad",
                       {&o2, &in2.q, &in2.k, &in2.v, &o2, &lse2},
                       {&dq2, &dk2, &dv2}, noQueries.attrMap())
                  .ok());
  expectExact(dk2, std::vector<double>(size_t(dk2.numElements()), 0.0), "dk");
  expectExact(dv2, std::vector<double>(size_t(dv2.numElements()), 0.0), "dv");
}

//===----------------------------------------------------------------------===//
// attention_grad against finite differences
//===----------------------------------------------------------------------===//

/// sum(w * attention(q, k, v).o) in double.
double weightedAttention(const Config &c, const Inputs &in, const Tensor &w) {
  Tensor o(DType::F64, c.oShape()), lse(DType::F64, c.lseShape());
  Status s = runMulti("attention", {&in.q, &in.k, &in.v}, {&o, &lse},
                      c.attrMap());
  EXPECT_TRUE(s.ok()) << s.message();
  double l = 0;
  for (int64_t i = 0; i < o.numElements(); ++i)
    l += w.as<double>()[i] * o.as<double>()[i];
  return l;
}

/// Central differences of weightedAttention with respect to x (one of in's
/// tensors) at up to maxChecks elements; relative tolerance 1e-6.
void checkFiniteDiff(const Config &c, const Inputs &in, const Tensor &w,
                     const Tensor &x, const Tensor &grad,
                     const std::string &what, int64_t maxChecks = 120) {
  checkFiniteDifferences(
      x, grad, [&] { return weightedAttention(c, in, w); }, what, maxChecks,
      unsigned(x.numElements() * 7 + what.size()));
}

void checkGrad(const Config &c, unsigned seed) {
  Inputs in = randomInputs<double>(c, seed);
  Tensor w = randomTensor<double>(c.oShape(), -1, 1, seed + 5);
  Tensor o, lse;
  runAttention<double>(c, in, o, lse);
  Tensor dq(DType::F64, c.qShape()), dk(DType::F64, c.kShape()),
      dv(DType::F64, c.vShape());
  Status s = runMulti("attention_grad", {&w, &in.q, &in.k, &in.v, &o, &lse},
                      {&dq, &dk, &dv}, c.attrMap());
  ASSERT_TRUE(s.ok()) << c.name() << ": " << s.message();
  checkFiniteDiff(c, in, w, in.q, dq, "dq " + c.name());
  checkFiniteDiff(c, in, w, in.k, dk, "dk " + c.name());
  checkFiniteDiff(c, in, w, in.v, dv, "dv " + c.name());
}

TEST(AttentionGrad, FiniteDifferencesSquareAndCausal) {
  checkGrad({1, 2, 2, 7, 7, 4, 4, 1}, 1);
  checkGrad({2, 2, 2, 7, 7, 4, 3, 0}, 2);
}

TEST(AttentionGrad, FiniteDifferencesBottomRightCausal) {
  checkGrad({1, 2, 2, 5, 9, 4, 6, 1}, 3); // S < T
  checkGrad({1, 2, 1, 9, 5, 3, 4, 1}, 4); // S > T: unseeing queries
}

TEST(AttentionGrad, FiniteDifferencesGroupedQuery) {
  checkGrad({1, 4, 2, 6, 11, 5, 7, 0}, 5);
  checkGrad({1, 4, 1, 11, 6, 5, 7, 1}, 6);
  checkGrad({2, 4, 2, 8, 8, 4, 4, 1, 0.7}, 7);
}

TEST(AttentionGrad, FiniteDifferencesSeveralTiles) {
  checkGrad({1, 4, 2, 70, 70, 8, 6, 1}, 8);
  checkGrad({1, 2, 1, 130, 70, 4, 5, 1}, 9);
  checkGrad({1, 2, 1, 67, 131, 4, 4, 1}, 10);
  checkGrad({1, 2, 1, 67, 132, 3, 3, 1}, 12); // T - S = 65: tile edges meet
  checkGrad({1, 2, 2, 70, 65, 4, 4, 0}, 11);
}

TEST(AttentionGrad, F32MatchesF64) {
  const Config c{1, 4, 2, 130, 150, 16, 8, 1};
  Inputs in = randomInputs<double>(c, 21);
  Tensor w = randomTensor<double>(c.oShape(), -1, 1, 22);
  Tensor o, lse;
  runAttention<double>(c, in, o, lse);
  Tensor dq(DType::F64, c.qShape()), dk(DType::F64, c.kShape()),
      dv(DType::F64, c.vShape());
  ASSERT_TRUE(runMulti("attention_grad", {&w, &in.q, &in.k, &in.v, &o, &lse},
                       {&dq, &dk, &dv}, c.attrMap())
                  .ok());

  auto toF32 = [](const Tensor &t) {
    Tensor r(DType::F32, t.shape());
    for (int64_t i = 0; i < t.numElements(); ++i)
      r.as<float>()[i] = float(t.as<double>()[i]);
    return r;
  };
  Inputs in32{toF32(in.q), toF32(in.k), toF32(in.v)};
  Tensor w32 = toF32(w);
  Tensor o32, lse32;
  runAttention<float>(c, in32, o32, lse32);
  Tensor dq32(DType::F32, c.qShape()), dk32(DType::F32, c.kShape()),
      dv32(DType::F32, c.vShape());
  ASSERT_TRUE(runMulti("attention_grad",
                       {&w32, &in32.q, &in32.k, &in32.v, &o32, &lse32},
                       {&dq32, &dk32, &dv32}, c.attrMap())
                  .ok());
  expectNear(dq32, values(dq), 1e-4, "dq");
  expectNear(dk32, values(dk), 1e-4, "dk");
  expectNear(dv32, values(dv), 1e-4, "dv");
}

//===----------------------------------------------------------------------===//
// Determinism
//===----------------------------------------------------------------------===//

TEST(Attention, BitwiseSameForAnyThreadCount) {
#ifdef _OPENMP
  const Config c{2, 4, 2, 200, 200, 32, 32, 1};
  Inputs in = randomInputs<float>(c, 31);
  Tensor w = randomTensor<float>(c.oShape(), -1, 1, 32);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<double>> first;
  for (int threads : {1, 2, 3, 4}) {
    omp_set_num_threads(threads);
    Tensor o, lse;
    runAttention<float>(c, in, o, lse);
    Tensor dq(DType::F32, c.qShape()), dk(DType::F32, c.kShape()),
        dv(DType::F32, c.vShape());
    ASSERT_TRUE(runMulti("attention_grad",
                         {&w, &in.q, &in.k, &in.v, &o, &lse}, {&dq, &dk, &dv},
                         c.attrMap())
                    .ok());
    std::vector<std::vector<double>> got = {values(o), values(lse), values(dq),
                                            values(dk), values(dv)};
    if (first.empty()) {
      first = got;
      continue;
    }
    const char *names[] = {"o", "lse", "dq", "dk", "dv"};
    for (size_t n = 0; n < got.size(); ++n)
      EXPECT_TRUE(got[n] == first[n])
          << names[n] << " differs with " << threads << " threads";
  }
  omp_set_num_threads(saved);
#else
  GTEST_SKIP() << "built without OpenMP";
#endif
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

void expectAttentionError(const char *op, const std::vector<const Tensor *> &ins,
                          const std::vector<const Tensor *> &outs,
                          const std::string &mentions, const AttrMap &am = {}) {
  Status s = runMulti(op, ins, outs, am);
  ASSERT_FALSE(s.ok()) << op << " " << mentions;
  EXPECT_EQ(s.message().rfind(std::string(op) + ":", 0), 0u) << s.message();
  EXPECT_NE(s.message().find(mentions), std::string::npos) << s.message();
}

TEST(Attention, Errors) {
  const Config c{1, 4, 2, 6, 8, 4, 3, 1};
  Inputs in = randomInputs<float>(c, 41);
  Tensor o(DType::F32, c.oShape()), lse(DType::F32, c.lseShape());
  const char *op = "attention";
  // Ranks.
  Tensor q3(DType::F32, {4, 6, 4});
  expectAttentionError(op, {&q3, &in.k, &in.v}, {&o, &lse}, "q [B,H,S,D]");
  Tensor k5(DType::F32, {1, 2, 8, 4, 1});
  expectAttentionError(op, {&in.q, &k5, &in.v}, {&o, &lse}, "k [B,Hk,T,D]");
  // k's D, v's T, batch.
  Tensor kBadD(DType::F32, {1, 2, 8, 5});
  expectAttentionError(op, {&in.q, &kBadD, &in.v}, {&o, &lse}, "k has shape");
  Tensor vBadT(DType::F32, {1, 2, 7, 3});
  expectAttentionError(op, {&in.q, &in.k, &vBadT}, {&o, &lse}, "v has shape");
  Tensor kBadB(DType::F32, {2, 2, 8, 4});
  expectAttentionError(op, {&in.q, &kBadB, &in.v}, {&o, &lse}, "k has shape");
  // H not a multiple of Hk.
  Tensor k3(DType::F32, {1, 3, 8, 4}), v3(DType::F32, {1, 3, 8, 3});
  expectAttentionError(op, {&in.q, &k3, &v3}, {&o, &lse}, "not a multiple");
  // Dtypes.
  Tensor kF64(DType::F64, c.kShape());
  expectAttentionError(op, {&in.q, &kF64, &in.v}, {&o, &lse}, "k has dtype");
  Tensor lseF64(DType::F64, c.lseShape());
  expectAttentionError(op, {&in.q, &in.k, &in.v}, {&o, &lseF64},
                       "lse has dtype");
  Tensor qI64(DType::I64, c.qShape()), kI64(DType::I64, c.kShape()),
      vI64(DType::I64, c.vShape()), oI64(DType::I64, c.oShape()),
      lseI64(DType::I64, c.lseShape());
  expectAttentionError(op, {&qI64, &kI64, &vI64}, {&oI64, &lseI64},
                       "unsupported dtype");
  // Output shapes.
  Tensor oBad(DType::F32, {1, 4, 6, 4});
  expectAttentionError(op, {&in.q, &in.k, &in.v}, {&oBad, &lse}, "o has shape");
  Tensor lseBad(DType::F32, {1, 4, 6, 1});
  expectAttentionError(op, {&in.q, &in.k, &in.v}, {&o, &lseBad},
                       "lse has shape");
  // Arity and attributes.
  expectAttentionError(op, {&in.q, &in.k}, {&o, &lse}, "inputs");
  expectAttentionError(op, {&in.q, &in.k, &in.v}, {&o}, "outputs");
  expectAttentionError(op, {&in.q, &in.k, &in.v}, {&o, &lse}, "causal",
                       attrs({{"causal", int64_t(2)}}));

  // attention_grad: the extra operands.
  const char *gop = "attention_grad";
  Tensor dq(DType::F32, c.qShape()), dk(DType::F32, c.kShape()),
      dv(DType::F32, c.vShape());
  ASSERT_TRUE(runMulti(op, {&in.q, &in.k, &in.v}, {&o, &lse}).ok());
  ASSERT_TRUE(runMulti(gop, {&o, &in.q, &in.k, &in.v, &o, &lse},
                       {&dq, &dk, &dv})
                  .ok());
  Tensor doBad(DType::F32, {1, 4, 6, 4});
  expectAttentionError(gop, {&doBad, &in.q, &in.k, &in.v, &o, &lse},
                       {&dq, &dk, &dv}, "do has shape");
  expectAttentionError(gop, {&o, &in.q, &in.k, &in.v, &oBad, &lse},
                       {&dq, &dk, &dv}, "o has shape");
  expectAttentionError(gop, {&o, &in.q, &in.k, &in.v, &o, &lseBad},
                       {&dq, &dk, &dv}, "lse has shape");
  expectAttentionError(gop, {&o, &in.q, &in.k, &in.v, &o, &lseF64},
                       {&dq, &dk, &dv}, "lse has dtype");
  Tensor dkBad(DType::F32, {1, 4, 8, 4});
  expectAttentionError(gop, {&o, &in.q, &in.k, &in.v, &o, &lse},
                       {&dq, &dkBad, &dv}, "dk has shape");
  Tensor dvF64(DType::F64, c.vShape());
  expectAttentionError(gop, {&o, &in.q, &in.k, &in.v, &o, &lse},
                       {&dq, &dk, &dvF64}, "dv has dtype");
  expectAttentionError(gop, {&o, &in.q, &in.k, &in.v, &o, &lse}, {&dq, &dk},
                       "outputs");
  expectAttentionError(gop, {&o, &in.q, &k3, &v3, &o, &lse}, {&dq, &dk, &dv},
                       "not a multiple");
}

} // namespace
