//===- TruncatedScanTest.cpp - truncated selective-scan backward ----------===//
//
// selective_scan_state_grad with `truncate` = T against a direct evaluation
// of the truncated state adjoint, g_i = sum over t in [i, i+T-1] of
// dy_t C_t prod_{s=i+1}^{t} exp(delta_s A); time shards chained by their
// adjoint windows against the whole sequence; T >= S against the exact
// backward; the recomputed output y against the forward scan; and state
// passing (each shard's carry and decay, chained by the combine) against
// shards chained one after the other.
//
//===----------------------------------------------------------------------===//
#include "KernelTestUtil.h"

#include <cmath>

namespace longctx {
namespace {

using namespace kerneltest;

constexpr int64_t kBatch = 2, kSeq = 11, kE = 3, kN = 4;

struct Scan {
  Tensor u = randomTensor<double>({kBatch, kSeq, kE}, -1, 1, 11);
  Tensor delta = randomTensor<double>({kBatch, kSeq, kE}, 0.05, 0.6, 12);
  Tensor a = randomTensor<double>({kE, kN}, -1, -0.1, 13);
  Tensor b = randomTensor<double>({kBatch, kSeq, kN}, -1, 1, 14);
  Tensor c = randomTensor<double>({kBatch, kSeq, kN}, -1, 1, 15);
  Tensor dy = randomTensor<double>({kBatch, kSeq, kE}, -1, 1, 16);
};

/// du, ddelta, dA, dB, dC.
using Grads = std::vector<std::vector<double>>;

/// The truncated gradients from their definition, O(S^2) per channel.
Grads directTruncatedGrads(const Scan &s, int64_t window) {
  Grads g = {std::vector<double>(kBatch * kSeq * kE), std::vector<double>(kBatch * kSeq * kE),
             std::vector<double>(kE * kN), std::vector<double>(kBatch * kSeq * kN),
             std::vector<double>(kBatch * kSeq * kN)};
  auto at = [](const Tensor &t, int64_t i) { return t.as<double>()[i]; };
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t ch = 0; ch < kE; ++ch) {
      const int64_t x = b * kSeq * kE + ch; // (b, 0, ch)
      const int64_t r = b * kSeq * kN;      // (b, 0, 0)
      auto decay = [&](int64_t t, int64_t n) {
        return std::exp(at(s.delta, x + t * kE) * at(s.a, ch * kN + n));
      };
      std::vector<double> h(size_t(kSeq * kN)), prev(kN, 0.0);
      for (int64_t t = 0; t < kSeq; ++t)
        for (int64_t n = 0; n < kN; ++n) {
          double before = t ? h[size_t((t - 1) * kN + n)] : 0.0;
          h[size_t(t * kN + n)] = decay(t, n) * before + at(s.delta, x + t * kE) *
                                                             at(s.u, x + t * kE) *
                                                             at(s.b, r + t * kN + n);
        }
      for (int64_t i = 0; i < kSeq; ++i) {
        const double d = at(s.delta, x + i * kE), uv = at(s.u, x + i * kE);
        double sumGB = 0, sumAGa = 0;
        for (int64_t n = 0; n < kN; ++n) {
          double gi = 0;
          for (int64_t t = i; t < std::min(kSeq, i + window); ++t) {
            double path = at(s.dy, x + t * kE) * at(s.c, r + t * kN + n);
            for (int64_t q = i + 1; q <= t; ++q)
              path *= decay(q, n);
            gi += path;
          }
          const double hPrev = i ? h[size_t((i - 1) * kN + n)] : 0.0;
          const double ga = gi * decay(i, n) * hPrev;
          sumGB += gi * at(s.b, r + i * kN + n);
          sumAGa += at(s.a, ch * kN + n) * ga;
          g[2][size_t(ch * kN + n)] += d * ga;
          g[3][size_t(r + i * kN + n)] += gi * d * uv;
          g[4][size_t(r + i * kN + n)] += at(s.dy, x + i * kE) * h[size_t(i * kN + n)];
        }
        g[0][size_t(x + i * kE)] = d * sumGB;
        g[1][size_t(x + i * kE)] = sumAGa + uv * sumGB;
      }
    }
  return g;
}

/// Rows [from, from + count) of a [batch, seq, width] tensor.
Tensor rows(const Tensor &t, int64_t from, int64_t count) {
  const int64_t seq = t.shape()[1], width = t.shape()[2];
  Tensor out(t.dtype(), {t.shape()[0], count, width});
  for (int64_t b = 0; b < t.shape()[0]; ++b)
    std::copy(t.as<double>() + (b * seq + from) * width,
              t.as<double>() + (b * seq + from + count) * width,
              out.as<double>() + b * count * width);
  return out;
}

Tensor zeros(Shape shape) {
  Tensor t(DType::F64, shape);
  std::fill(t.as<double>(), t.as<double>() + t.numElements(), 0.0);
  return t;
}

/// One shard [from, from + count) of the state backward: du, ddelta, dA,
/// dB, dC, dh0 and y.
std::vector<Tensor> shardGrads(const Scan &s, int64_t from, int64_t count, const Tensor &carry,
                               const Tensor &h0, const AttrMap &attrs) {
  Tensor dy = rows(s.dy, from, count), u = rows(s.u, from, count),
         delta = rows(s.delta, from, count), b = rows(s.b, from, count),
         c = rows(s.c, from, count);
  std::vector<Tensor> g;
  g.emplace_back(DType::F64, Shape{kBatch, count, kE});
  g.emplace_back(DType::F64, Shape{kBatch, count, kE});
  g.emplace_back(DType::F64, Shape{kE, kN});
  g.emplace_back(DType::F64, Shape{kBatch, count, kN});
  g.emplace_back(DType::F64, Shape{kBatch, count, kN});
  g.emplace_back(DType::F64, carry.shape());
  g.emplace_back(DType::F64, Shape{kBatch, count, kE});
  Status st = runMulti("selective_scan_state_grad", {&dy, &carry, &u, &delta, &s.a, &b, &c, &h0},
                       {&g[0], &g[1], &g[2], &g[3], &g[4], &g[5], &g[6]}, attrs);
  EXPECT_TRUE(st.ok()) << st.message();
  return g;
}

AttrMap truncateAt(int64_t window) {
  AttrMap attrs;
  attrs.set("truncate", window);
  return attrs;
}

/// Expects `part` to equal rows [from, ...) of the [batch, seq, width] `whole`.
void expectRows(const std::vector<double> &whole, const Tensor &part, int64_t from,
                const char *what) {
  const int64_t count = part.shape()[1], width = part.shape()[2];
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t i = 0; i < count * width; ++i)
      ASSERT_NEAR(part.as<double>()[b * count * width + i],
                  whole[size_t((b * kSeq + from) * width + i)], 1e-10)
          << what << " batch " << b << " element " << i;
}

TEST(TruncatedScan, WholeSequenceMatchesTheDefinition) {
  Scan s;
  // Also with the states recomputed in chunks of 5 steps (rounded to whole
  // windows): blocks then start at chunk boundaries.
  for (auto [window, chunk] : {std::pair<int64_t, int64_t>{1, 0}, {3, 0}, {4, 0}, {10, 0},
                               {1, 5}, {2, 5}, {3, 5}, {4, 5}}) {
    AttrMap attrs = truncateAt(window);
    if (chunk)
      attrs.set("chunk", chunk);
    std::vector<Tensor> g = shardGrads(s, 0, kSeq, zeros({kBatch, window, kE, kN}),
                                       zeros({kBatch, kE, kN}), attrs);
    Grads want = directTruncatedGrads(s, window);
    expectRows(want[0], g[0], 0, "du");
    expectRows(want[1], g[1], 0, "ddelta");
    expectRows(want[3], g[3], 0, "dB");
    expectRows(want[4], g[4], 0, "dC");
    expectNear(g[2], want[2], 1e-10, "dA");
  }
}

TEST(TruncatedScan, ATruncationAsLongAsTheSequenceIsExact) {
  Scan s;
  std::vector<Tensor> exact =
      shardGrads(s, 0, kSeq, zeros({kBatch, kE, kN}), zeros({kBatch, kE, kN}), {});
  std::vector<Tensor> cut = shardGrads(s, 0, kSeq, zeros({kBatch, kSeq, kE, kN}),
                                       zeros({kBatch, kE, kN}), truncateAt(kSeq));
  for (size_t k = 0; k < 5; ++k)
    expectNear(cut[k], values(exact[k]), 1e-10, "result " + std::to_string(k));
  Grads unlimited = directTruncatedGrads(s, kSeq);
  expectRows(unlimited[0], exact[0], 0, "du (exact vs definition)");
}

/// Three shards, the middle one shorter than the window: each starts from
/// the window the later shards send back and the forward state before it.
TEST(TruncatedScan, ShardsChainedByTheirWindowsEqualTheWholeSequence) {
  Scan s;
  const int64_t window = 4;
  const int64_t cuts[] = {0, 4, 6, kSeq};
  // Forward states at the cuts.
  std::vector<Tensor> states{zeros({kBatch, kE, kN})};
  for (int i = 0; i < 2; ++i) {
    const int64_t from = cuts[i], count = cuts[i + 1] - cuts[i];
    Tensor u = rows(s.u, from, count), d = rows(s.delta, from, count), b = rows(s.b, from, count),
           c = rows(s.c, from, count);
    Tensor y(DType::F64, {kBatch, count, kE}), next(DType::F64, {kBatch, kE, kN});
    ASSERT_TRUE(runMulti("selective_scan_state", {&u, &d, &s.a, &b, &c, &states.back()},
                         {&y, &next})
                    .ok());
    states.push_back(std::move(next));
  }
  Grads want = directTruncatedGrads(s, window);
  Tensor forward(DType::F64, {kBatch, kSeq, kE});
  runOk("selective_scan", {&s.u, &s.delta, &s.a, &s.b, &s.c}, forward);
  Tensor carry = zeros({kBatch, window, kE, kN});
  std::vector<double> da(kE * kN, 0.0);
  for (int i = 2; i >= 0; --i) {
    const int64_t from = cuts[i], count = cuts[i + 1] - cuts[i];
    std::vector<Tensor> g = shardGrads(s, from, count, carry, states[size_t(i)], truncateAt(window));
    expectRows(want[0], g[0], from, "du");
    expectRows(want[1], g[1], from, "ddelta");
    expectRows(want[3], g[3], from, "dB");
    expectRows(want[4], g[4], from, "dC");
    expectRows(values(forward), g[6], from, "y");
    for (int64_t k = 0; k < kE * kN; ++k)
      da[size_t(k)] += g[2].as<double>()[k];
    carry = std::move(g[5]);
  }
  for (int64_t k = 0; k < kE * kN; ++k)
    EXPECT_NEAR(da[size_t(k)], want[2][size_t(k)], 1e-10) << k;
}

TEST(StatePassing, CarriesCombinedEqualShardsChainedInOrder) {
  Scan s;
  const int64_t cuts[] = {0, 4, 6, kSeq}; // shards of 4, 2 and 5 steps
  Tensor dfinal = randomTensor<double>({kBatch, kE, kN}, -1, 1, 17);
  // Sequentially: each shard's dh0 is the previous shard's final cotangent.
  std::vector<Tensor> wantLast(3);
  Tensor carry = dfinal;
  for (int i = 2; i >= 0; --i) {
    wantLast[size_t(i)] = carry;
    std::vector<Tensor> g =
        shardGrads(s, cuts[i], cuts[i + 1] - cuts[i], carry, zeros({kBatch, kE, kN}), AttrMap());
    carry = std::move(g[5]);
  }
  // In parallel: per shard (carry, decay), then the combine.
  Tensor carries(DType::F64, {3 * kBatch, kE, kN}), decays(DType::F64, {3 * kBatch, kE, kN});
  const int64_t block = kBatch * kE * kN;
  for (int i = 0; i < 3; ++i) {
    const int64_t from = cuts[i], count = cuts[i + 1] - cuts[i];
    Tensor dy = rows(s.dy, from, count), d = rows(s.delta, from, count),
           c = rows(s.c, from, count);
    Tensor part(DType::F64, {kBatch, kE, kN}), decay(DType::F64, {kBatch, kE, kN});
    ASSERT_TRUE(runMulti("selective_scan_carry", {&dy, &d, &s.a, &c}, {&part, &decay}).ok());
    std::copy(part.as<double>(), part.as<double>() + block, carries.as<double>() + i * block);
    std::copy(decay.as<double>(), decay.as<double>() + block, decays.as<double>() + i * block);
  }
  Tensor dlast(DType::F64, {3 * kBatch, kE, kN}), dinit(DType::F64, {kBatch, kE, kN});
  ASSERT_TRUE(
      runMulti("selective_scan_carry_combine", {&carries, &decays, &dfinal}, {&dlast, &dinit}).ok());
  for (int i = 0; i < 3; ++i)
    for (int64_t k = 0; k < block; ++k)
      ASSERT_NEAR(dlast.as<double>()[i * block + k], wantLast[size_t(i)].as<double>()[k], 1e-12)
          << "shard " << i << " element " << k;
  for (int64_t k = 0; k < block; ++k)
    ASSERT_NEAR(dinit.as<double>()[k], carry.as<double>()[k], 1e-12) << k;
}

TEST(StatePassing, CombineRejectsMismatchedShapes) {
  Tensor carries = zeros({3 * kBatch, kE, kN}), decays = zeros({2 * kBatch, kE, kN}),
         dfinal = zeros({kBatch, kE, kN});
  Tensor dlast(DType::F64, {3 * kBatch, kE, kN}), dinit(DType::F64, {kBatch, kE, kN});
  Status st =
      runMulti("selective_scan_carry_combine", {&carries, &decays, &dfinal}, {&dlast, &dinit});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("decays"), std::string::npos) << st.message();
}

TEST(TruncatedScan, RejectsAWindowOfTheWrongShape) {
  Scan s;
  Tensor h0 = zeros({kBatch, kE, kN}), state = zeros({kBatch, kE, kN});
  std::vector<Tensor> g;
  for (Shape shape : {Shape{kBatch, kSeq, kE}, Shape{kBatch, kSeq, kE}, Shape{kE, kN},
                      Shape{kBatch, kSeq, kN}, Shape{kBatch, kSeq, kN}, Shape{kBatch, kE, kN}})
    g.emplace_back(DType::F64, shape);
  Status st = runMulti("selective_scan_state_grad",
                       {&s.dy, &state, &s.u, &s.delta, &s.a, &s.b, &s.c, &h0},
                       {&g[0], &g[1], &g[2], &g[3], &g[4], &g[5]}, truncateAt(3));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("d final state"), std::string::npos) << st.message();
}

} // namespace
} // namespace longctx
