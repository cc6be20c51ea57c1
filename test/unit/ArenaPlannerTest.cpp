//===- ArenaPlannerTest.cpp - Property tests of the arena planner ----------===//
#include "compiler/planning/ArenaPlanner.h"
#include "runtime/ConcurrentLifetimes.h"

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
      bool liveTogether = (buffers[i].first <= buffers[j].last && buffers[j].first <= buffers[i].last) ||
                          (buffers[i].group >= 0 && buffers[i].group == buffers[j].group &&
                           buffers[i].worker != buffers[j].worker);
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


// A schedule with a parallel group of 3 workers (steps [10, 40), each
// worker's steps contiguous) and random buffers: outside the group, private
// to a worker, or crossing into or out of it. Whatever the plan, no two
// buffers share bytes if some step of one's range may run at the same time
// as some step of the other's (the same step, or steps of different
// workers of the group).
TEST(ArenaPlanner, ConcurrentWorkersNeverShareBytes) {
  std::mt19937_64 rng(7);
  const int64_t steps = 50, groupBegin = 10, groupEnd = 40;
  for (int trial = 0; trial < 100; ++trial) {
    // Worker runs: [groupBegin, cut1), [cut1, cut2), [cut2, groupEnd).
    int64_t cut1 = groupBegin + 1 + int64_t(rng() % 14), cut2 = cut1 + 1 + int64_t(rng() % 14);
    std::vector<StepLane> lanes(static_cast<size_t>(steps));
    for (int64_t s = groupBegin; s < groupEnd; ++s)
      lanes[size_t(s)] = {0, s < cut1 ? 0 : s < cut2 ? 1 : 2};
    const int64_t runs[3][2] = {{groupBegin, cut1}, {cut1, cut2}, {cut2, groupEnd}};
    auto within = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo)); };
    ConcurrentLifetimes concurrent(lanes);
    std::vector<std::pair<int64_t, int64_t>> raw;
    const int n = 10 + int(rng() % 50);
    for (int i = 0; i < n; ++i) {
      int64_t first, last;
      switch (rng() % 4) {
      case 0: // outside
        first = within(0, steps - 1);
        last = first + int64_t(rng() % 5);
        if (first < groupEnd && last >= groupBegin) {
          first = groupEnd + int64_t(rng() % 5);
          last = first + int64_t(rng() % 5);
        }
        break;
      case 1: { // private to a worker
        const int64_t *run = runs[rng() % 3];
        first = within(run[0], run[1]);
        last = within(first, run[1]);
        break;
      }
      case 2: // made before the group, last read by a worker
        first = within(0, groupBegin);
        last = within(groupBegin, groupEnd);
        break;
      default: // made by a worker, read after the group
        first = within(groupBegin, groupEnd);
        last = within(groupEnd, steps);
        break;
      }
      last = std::min(last, steps - 1);
      raw.push_back({first, last});
      concurrent.touch(size_t(i), first);
      concurrent.touch(size_t(i), last);
    }
    std::vector<BufferLifetime> buffers;
    for (int i = 0; i < n; ++i) {
      BufferLifetime b{1 + rng() % 4000, raw[size_t(i)].first, raw[size_t(i)].second};
      StepLane lane = concurrent.finish(size_t(i), b.first, b.last);
      b.group = lane.group;
      b.worker = lane.worker;
      buffers.push_back(b);
    }
    ArenaPlan plan = planArena(buffers, 256);
    auto together = [&](int64_t s, int64_t t) {
      return s == t || (lanes[size_t(s)].group >= 0 && lanes[size_t(t)].group >= 0 &&
                        lanes[size_t(s)].worker != lanes[size_t(t)].worker);
    };
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) {
        bool mayOverlapInTime = false;
        for (int64_t s = raw[size_t(i)].first; s <= raw[size_t(i)].second && !mayOverlapInTime; ++s)
          for (int64_t t = raw[size_t(j)].first; t <= raw[size_t(j)].second; ++t)
            if (together(s, t)) {
              mayOverlapInTime = true;
              break;
            }
        bool shareBytes = plan.offsets[size_t(i)] < plan.offsets[size_t(j)] + buffers[size_t(j)].bytes &&
                          plan.offsets[size_t(j)] < plan.offsets[size_t(i)] + buffers[size_t(i)].bytes;
        ASSERT_FALSE(mayOverlapInTime && shareBytes)
            << "trial " << trial << ": buffers " << i << " [" << raw[size_t(i)].first << ", "
            << raw[size_t(i)].second << "] and " << j << " [" << raw[size_t(j)].first << ", "
            << raw[size_t(j)].second << "] share bytes";
      }
    expectValid(buffers, plan, 256);
  }
}

TEST(ConcurrentLifetimes, PrivateBuffersStayNarrowSharedOnesSpanTheGroup) {
  // Steps 0 and 5 outside; 1-2 worker 0, 3-4 worker 1 of group 0.
  std::vector<StepLane> lanes(6);
  lanes[1] = lanes[2] = {0, 0};
  lanes[3] = lanes[4] = {0, 1};
  ConcurrentLifetimes c(lanes);
  c.touch(0, 1); // private to worker 0
  c.touch(0, 2);
  c.touch(1, 3); // worker 1, read after the group
  c.touch(1, 5);
  c.touch(2, 0); // made before, read by worker 0
  c.touch(2, 1);
  c.touch(3, 3); // private to worker 1
  int64_t first = 1, last = 2;
  EXPECT_EQ(c.finish(0, first, last), (StepLane{0, 0}));
  EXPECT_EQ(std::make_pair(first, last), std::make_pair(int64_t(1), int64_t(2)));
  first = 3, last = 5;
  EXPECT_EQ(c.finish(1, first, last), StepLane());
  EXPECT_EQ(std::make_pair(first, last), std::make_pair(int64_t(1), int64_t(5)));
  first = 0, last = 1;
  EXPECT_EQ(c.finish(2, first, last), StepLane());
  EXPECT_EQ(std::make_pair(first, last), std::make_pair(int64_t(0), int64_t(4)));
  EXPECT_FALSE(c.mayShareInPlace(2, 0)); // crosses the group boundary
  EXPECT_FALSE(c.mayShareInPlace(0, 3)); // different workers
  EXPECT_TRUE(c.mayShareInPlace(3, 3));
}

} // namespace
