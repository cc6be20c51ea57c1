//===- ArenaPlannerTest.cpp - Property tests of the arena planner ----------===//
#include "compiler/planning/ArenaPlanner.h"

#include <gtest/gtest.h>

#include <random>

using namespace longctx;

namespace {

/// The property every plan must have: buffers live at the same step never
/// share a byte, every offset is aligned, and all fit in the arena.
void expectValid(const std::vector<BufferLifetime> &buffers, const ArenaPlan &plan,
                 uint64_t alignment) {
  ASSERT_EQ(plan.offsets.size(), buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_EQ(plan.offsets[i] % alignment, 0u);
    EXPECT_LE(plan.offsets[i] + buffers[i].bytes, plan.arenaBytes);
    for (size_t j = i + 1; j < buffers.size(); ++j) {
      bool liveTogether = buffers[i].first <= buffers[j].last && buffers[j].first <= buffers[i].last;
      bool shareBytes = plan.offsets[i] < plan.offsets[j] + buffers[j].bytes &&
                        plan.offsets[j] < plan.offsets[i] + buffers[i].bytes;
      EXPECT_FALSE(liveTogether && shareBytes && buffers[i].bytes && buffers[j].bytes)
          << "buffers " << i << " and " << j << " overlap";
    }
  }
  EXPECT_GE(plan.arenaBytes, plan.loadBytes);
}

TEST(ArenaPlanner, RandomIntervalsNeverOverlap) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    int n = 1 + int(rng() % 60);
    std::vector<BufferLifetime> buffers;
    for (int i = 0; i < n; ++i) {
      int64_t first = int64_t(rng() % 100);
      buffers.push_back({1 + rng() % 5000, first, first + int64_t(rng() % 30)});
    }
    ArenaPlan plan = planArena(buffers, 256);
    expectValid(buffers, plan, 256);
    // Best fit stays close to the LOAD bound on random inputs.
    EXPECT_LE(double(plan.arenaBytes), 2.0 * double(plan.loadBytes) + 256.0 * n);
  }
}

TEST(ArenaPlanner, DisjointLifetimesShareMemory) {
  std::vector<BufferLifetime> chain = {{1024, 0, 1}, {1024, 1, 2}, {1024, 2, 3}, {1024, 3, 4}};
  ArenaPlan plan = planArena(chain, 256);
  expectValid(chain, plan, 256);
  // Each buffer overlaps only its neighbours: two slots suffice.
  EXPECT_EQ(plan.arenaBytes, 2048u);
  EXPECT_EQ(plan.loadBytes, 2048u);
}

TEST(ArenaPlanner, ReusesTheBestFittingGap) {
  // A long-lived small buffer, then a big and a small short-lived pair; the
  // third small buffer must reuse the gap left by the freed one.
  std::vector<BufferLifetime> buffers = {{4096, 0, 10}, {256, 0, 2}, {8192, 1, 5}, {256, 3, 6}};
  ArenaPlan plan = planArena(buffers, 256);
  expectValid(buffers, plan, 256);
  EXPECT_EQ(plan.arenaBytes, 4096u + 8192u + 256u);
}

TEST(ArenaPlanner, InPlaceChainsShareOneSlot) {
  // b is written over a (which dies where b is made), c over b: one slot
  // holds the chain; d, live beside it, gets another.
  std::vector<BufferLifetime> buffers = {
      {1024, 0, 1, -1}, {1024, 1, 2, 0}, {1024, 2, 4, 1}, {512, 0, 4, -1}};
  ArenaPlan plan = planArena(buffers, 256);
  EXPECT_EQ(plan.offsets[0], plan.offsets[1]);
  EXPECT_EQ(plan.offsets[1], plan.offsets[2]);
  EXPECT_NE(plan.offsets[3], plan.offsets[0]);
  EXPECT_EQ(plan.arenaBytes, 1536u);
  EXPECT_EQ(plan.loadBytes, 1536u); // without reuse, LOAD would be 2560
}

TEST(ArenaPlanner, RandomInPlaceChainsNeverOverlapOthers) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<BufferLifetime> buffers;
    for (int i = 0; i < 40; ++i) {
      BufferLifetime b{256 * (1 + rng() % 8), int64_t(rng() % 60), 0, -1};
      b.last = b.first + int64_t(rng() % 10);
      // Continue an earlier buffer that dies where this one starts.
      for (int j = i - 1; j >= 0 && rng() % 2; --j)
        if (buffers[size_t(j)].last == b.first && buffers[size_t(j)].bytes == b.bytes) {
          b.reuses = j;
          break;
        }
      buffers.push_back(b);
    }
    ArenaPlan plan = planArena(buffers, 256);
    // A buffer continuing another shares its offset and owns its bytes only
    // from the step after the hand-over; with that, nothing overlaps.
    std::vector<BufferLifetime> owned;
    ArenaPlan ownedPlan = plan;
    ownedPlan.offsets.clear();
    for (size_t i = 0; i < buffers.size(); ++i) {
      BufferLifetime b = buffers[i];
      if (b.reuses >= 0) {
        EXPECT_EQ(plan.offsets[i], plan.offsets[size_t(b.reuses)]);
        b.first += 1;
      }
      b.reuses = -1;
      if (b.first <= b.last) {
        owned.push_back(b);
        ownedPlan.offsets.push_back(plan.offsets[i]);
      }
    }
    expectValid(owned, ownedPlan, 256);
  }
}

TEST(ArenaPlanner, Empty) {
  ArenaPlan plan = planArena({}, 256);
  EXPECT_EQ(plan.arenaBytes, 0u);
  EXPECT_EQ(plan.loadBytes, 0u);
}

} // namespace
