//===- LengthSearchTest.cpp - --max-seq-len's search ----------------------===//
#include "compiler/planning/LengthSearch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace longctx {
namespace {

/// The answer by walking up from 1.
int64_t bruteForce(const PeakAtLength &peakAt, uint64_t budget, int64_t limit) {
  int64_t best = 0;
  for (int64_t s = 1; s <= limit; ++s) {
    std::optional<uint64_t> p = peakAt(s);
    if (!p || *p > budget)
      break;
    best = s;
  }
  return best;
}

TEST(LengthSearch, AnAffinePeakTakesAFewPlans) {
  PeakAtLength affine = [](int64_t s) { return uint64_t(1000 + 37 * s); };
  for (int64_t hint : {1, 100, 123456, 1 << 20}) {
    LengthSearchResult r = searchLongestFitting(affine, 1000 + 37 * 123456 + 36, hint, 1 << 26);
    EXPECT_EQ(r.length, 123456) << hint;
    EXPECT_LE(r.probes, 7) << hint;
  }
}

TEST(LengthSearch, AlignedBuffersStillTakeAFewPlans) {
  // Buffers padded to 256 bytes: a staircase around a line.
  PeakAtLength padded = [](int64_t s) {
    return uint64_t(4096 + 256 * ((3 * 37 * s + 255) / 256) + 256 * ((11 * s + 255) / 256));
  };
  const uint64_t budget = 80ull << 20;
  LengthSearchResult r = searchLongestFitting(padded, budget, 2048, 1 << 26);
  EXPECT_EQ(r.length, bruteForce(padded, budget, 1 << 22));
  EXPECT_LE(r.probes, 12);
}

TEST(LengthSearch, CurvedAndSteppedPeaksGetTheExactAnswer) {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 50; ++trial) {
    // A random non-decreasing staircase with quadratic growth.
    const double a = std::uniform_real_distribution<double>(0.1, 3)(gen);
    const int64_t step = std::uniform_int_distribution<int64_t>(1, 500)(gen);
    PeakAtLength peak = [=](int64_t s) {
      int64_t q = (s + step - 1) / step * step;
      return uint64_t(a * double(q) * double(q) + 50.0 * double(q));
    };
    const uint64_t budget = std::uniform_int_distribution<uint64_t>(100, 4'000'000'000)(gen);
    const int64_t hint = std::uniform_int_distribution<int64_t>(1, 100000)(gen);
    LengthSearchResult r = searchLongestFitting(peak, budget, hint, 1 << 20);
    EXPECT_EQ(r.length, bruteForce(peak, budget, 1 << 20)) << "trial " << trial;
    EXPECT_LE(r.probes, 60) << "trial " << trial;
  }
}

TEST(LengthSearch, NoPlanCountsAsNotFitting) {
  PeakAtLength upTo5000 = [](int64_t s) -> std::optional<uint64_t> {
    if (s > 5000)
      return std::nullopt;
    return uint64_t(s);
  };
  LengthSearchResult r = searchLongestFitting(upTo5000, 1 << 30, 64, 1 << 26);
  EXPECT_EQ(r.length, 5000);
}

TEST(LengthSearch, NothingFitsAndTheLimitHolds) {
  PeakAtLength big = [](int64_t s) { return uint64_t(1000 + s); };
  EXPECT_EQ(searchLongestFitting(big, 999, 16, 1 << 26).length, 0);
  EXPECT_EQ(searchLongestFitting(big, 1 << 30, 16, 4096).length, 4096);
}

} // namespace
} // namespace longctx
