//===- ArenaPlanner.cpp - Offsets for buffers with known lifetimes ---------===//
#include "compiler/planning/ArenaPlanner.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace longctx {
namespace {

uint64_t alignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

bool overlapInTime(const BufferLifetime &a, const BufferLifetime &b) {
  return a.first <= b.last && b.first <= a.last;
}

bool concurrent(const BufferLifetime &a, const BufferLifetime &b) {
  return a.group >= 0 && a.group == b.group && a.worker != b.worker;
}

/// Places buffers in `order`, each at the smallest gap it fits between the
/// already placed buffers whose lifetimes overlap its own. Placed buffers
/// are indexed by time bucket, so finding those costs what overlaps, not
/// everything placed so far.
ArenaPlan placeInOrder(const std::vector<BufferLifetime> &buffers,
                       const std::vector<size_t> &order, uint64_t alignment) {
  ArenaPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const BufferLifetime &b : buffers)
    if (b.first <= b.last) {
      lo = std::min(lo, b.first);
      hi = std::max(hi, b.last);
    }
  constexpr int64_t kBucketSteps = 16;
  const size_t numBuckets = lo <= hi ? size_t((hi - lo) / kBucketSteps + 1) : 0;
  std::vector<std::vector<size_t>> buckets(numBuckets);
  auto bucketRange = [&](const BufferLifetime &b) {
    return std::make_pair(size_t((b.first - lo) / kBucketSteps), size_t((b.last - lo) / kBucketSteps));
  };
  std::vector<size_t> stamp(buffers.size(), SIZE_MAX); // dedupes a query's hits
  std::map<int64_t, std::vector<size_t>> placedInGroup;
  // Buffers spanning many buckets go into coarse buckets of kCoarse buckets
  // each: a long query then meets a long-lived buffer once per coarse bucket,
  // not once per bucket (long-lived buffers overlap most queries).
  constexpr size_t kLongBuckets = 8, kCoarse = 64;
  std::vector<std::vector<size_t>> coarse(numBuckets / kCoarse + 1);
  for (size_t id : order) {
    const BufferLifetime &b = buffers[id];
    uint64_t size = alignUp(std::max<uint64_t>(b.bytes, 1), alignment);
    // Occupied ranges of overlapping live buffers, sorted by offset.
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    auto occupy = [&](size_t other) {
      stamp[other] = id;
      busy.push_back({plan.offsets[other],
                      plan.offsets[other] +
                          alignUp(std::max<uint64_t>(buffers[other].bytes, 1), alignment)});
    };
    if (b.first <= b.last) {
      auto [from, to] = bucketRange(b);
      for (size_t k = from; k <= to; ++k)
        for (size_t other : buckets[k])
          if (stamp[other] != id && overlapInTime(b, buffers[other]))
            occupy(other);
      for (size_t k = from / kCoarse; k <= to / kCoarse; ++k)
        for (size_t other : coarse[k])
          if (stamp[other] != id && overlapInTime(b, buffers[other]))
            occupy(other);
    }
    if (b.group >= 0)
      for (size_t other : placedInGroup[b.group])
        if (stamp[other] != id && concurrent(b, buffers[other]))
          occupy(other);
    std::sort(busy.begin(), busy.end());
    uint64_t bestOffset = UINT64_MAX, bestGap = UINT64_MAX, cursor = 0;
    for (const auto &[start, end] : busy) {
      if (start > cursor && start - cursor >= size && start - cursor < bestGap) {
        bestGap = start - cursor;
        bestOffset = cursor;
      }
      cursor = std::max(cursor, end);
    }
    if (bestOffset == UINT64_MAX)
      bestOffset = cursor;
    plan.offsets[id] = bestOffset;
    plan.arenaBytes = std::max(plan.arenaBytes, bestOffset + size);
    if (b.first <= b.last) {
      auto [from, to] = bucketRange(b);
      if (to - from >= kLongBuckets)
        for (size_t k = from / kCoarse; k <= to / kCoarse; ++k)
          coarse[k].push_back(id);
      else
        for (size_t k = from; k <= to; ++k)
          buckets[k].push_back(id);
    }
    if (b.group >= 0)
      placedInGroup[b.group].push_back(id);
  }
  return plan;
}

uint64_t loadBound(const std::vector<BufferLifetime> &buffers) {
  std::map<int64_t, int64_t> delta; // step -> change in live bytes
  for (const BufferLifetime &b : buffers) {
    delta[b.first] += int64_t(b.bytes);
    delta[b.last + 1] -= int64_t(b.bytes);
  }
  int64_t live = 0, peak = 0;
  for (const auto &[step, d] : delta) {
    live += d;
    peak = std::max(peak, live);
  }
  return uint64_t(peak);
}

/// Best fit of `buffers`, none of them sharing, in two orders; the smaller.
ArenaPlan planSlots(const std::vector<BufferLifetime> &buffers, uint64_t alignment);

} // namespace

/// Each chain of in-place reuses becomes one slot spanning the chain.
ArenaPlan planArena(const std::vector<BufferLifetime> &buffers, uint64_t alignment) {
  std::vector<size_t> slotOf(buffers.size());
  std::vector<BufferLifetime> slots;
  for (size_t i = 0; i < buffers.size(); ++i) {
    const BufferLifetime &b = buffers[i];
    if (b.reuses >= 0 && size_t(b.reuses) < i) {
      slotOf[i] = slotOf[size_t(b.reuses)];
      BufferLifetime &slot = slots[slotOf[i]];
      slot.last = std::max(slot.last, b.last);
      slot.bytes = std::max(slot.bytes, b.bytes);
      continue;
    }
    slotOf[i] = slots.size();
    slots.push_back({b.bytes, b.first, b.last, -1, b.group, b.worker});
  }
  ArenaPlan slotPlan = planSlots(slots, alignment);
  ArenaPlan plan = slotPlan;
  plan.offsets.resize(buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i)
    plan.offsets[i] = slotPlan.offsets[slotOf[i]];
  return plan;
}

namespace {

ArenaPlan planSlots(const std::vector<BufferLifetime> &buffers, uint64_t alignment) {
  std::vector<size_t> bySize(buffers.size());
  std::iota(bySize.begin(), bySize.end(), 0);
  std::vector<size_t> byLifetime = bySize;
  std::stable_sort(bySize.begin(), bySize.end(), [&](size_t a, size_t b) {
    return buffers[a].bytes > buffers[b].bytes;
  });
  std::stable_sort(byLifetime.begin(), byLifetime.end(), [&](size_t a, size_t b) {
    return buffers[a].last - buffers[a].first > buffers[b].last - buffers[b].first;
  });
  ArenaPlan a = placeInOrder(buffers, bySize, alignment);
  ArenaPlan b = placeInOrder(buffers, byLifetime, alignment);
  ArenaPlan &best = b.arenaBytes < a.arenaBytes ? b : a;
  best.loadBytes = loadBound(buffers);
  return best;
}

} // namespace
} // namespace longctx
