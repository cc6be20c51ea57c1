//===- ConcurrentLifetimes.cpp - Buffer lifetimes under parallel groups ---===//
#include "runtime/ConcurrentLifetimes.h"

#include <algorithm>
#include <optional>

namespace longctx {

ConcurrentLifetimes::ConcurrentLifetimes(std::vector<StepLane> stepLanes)
    : lanes_(std::move(stepLanes)) {
  for (int64_t s = 0; s < int64_t(lanes_.size()); ++s) {
    const int64_t g = lanes_[size_t(s)].group;
    if (g < 0)
      continue;
    if (size_t(g) >= spans_.size())
      spans_.resize(size_t(g) + 1, {INT64_MAX, INT64_MIN});
    spans_[size_t(g)].first = std::min(spans_[size_t(g)].first, s);
    spans_[size_t(g)].second = std::max(spans_[size_t(g)].second, s);
  }
}

void ConcurrentLifetimes::touch(size_t buffer, int64_t step) {
  if (buffer >= touches_.size()) {
    touches_.resize(buffer + 1);
    outside_.resize(buffer + 1, false);
  }
  Touches &t = touches_[buffer];
  if (step < 0 || step >= int64_t(lanes_.size()) || lanes_[size_t(step)].group < 0) {
    outside_[buffer] = true;
    return;
  }
  const StepLane &lane = lanes_[size_t(step)];
  if (t.any && !(t.lane == lane))
    t.shared = true;
  t.lane = lane;
  t.any = true;
  t.lo = std::min(t.lo, step);
  t.hi = std::max(t.hi, step);
}

StepLane ConcurrentLifetimes::finish(size_t buffer, int64_t &first, int64_t &last) const {
  if (buffer >= touches_.size() || !touches_[buffer].any)
    return {};
  const Touches &t = touches_[buffer];
  if (!t.shared && !outside_[buffer])
    return t.lane;
  first = std::min(first, spans_[size_t(lanes_[size_t(t.lo)].group)].first);
  last = std::max(last, spans_[size_t(lanes_[size_t(t.hi)].group)].second);
  return {};
}

bool ConcurrentLifetimes::mayShareInPlace(size_t input, size_t output) const {
  auto privateLane = [&](size_t b) -> std::optional<StepLane> {
    if (b >= touches_.size() || !touches_[b].any)
      return StepLane{};
    if (touches_[b].shared || outside_[b])
      return std::nullopt; // live across a group
    return touches_[b].lane;
  };
  std::optional<StepLane> in = privateLane(input), out = privateLane(output);
  return in && out && *in == *out;
}

} // namespace longctx
