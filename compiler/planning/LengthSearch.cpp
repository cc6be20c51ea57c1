//===- LengthSearch.cpp - The longest sequence whose plan fits ------------===//
#include "compiler/planning/LengthSearch.h"

#include <algorithm>
#include <cmath>

namespace longctx {

namespace {

/// A probed length and its peak (nullopt: no plan).
struct Probe {
  int64_t length;
  std::optional<uint64_t> peak;
};

/// Where the line through a and b reaches `budget`, or nullopt if the two
/// do not define a rising line.
std::optional<double> interpolate(const Probe &a, const Probe &b, uint64_t budget) {
  if (!a.peak || !b.peak || a.length == b.length || *b.peak <= *a.peak)
    return std::nullopt;
  double slope = (double(*b.peak) - double(*a.peak)) / double(b.length - a.length);
  return double(a.length) + (double(budget) - double(*a.peak)) / slope;
}

} // namespace

LengthSearchResult searchLongestFitting(const PeakAtLength &peakAt, uint64_t budget,
                                        int64_t hint, int64_t limit) {
  LengthSearchResult result;
  auto probe = [&](int64_t length) {
    ++result.probes;
    return Probe{length, peakAt(length)};
  };
  auto fits = [&](const Probe &p) { return p.peak && *p.peak <= budget; };

  Probe lo = probe(1);
  if (!fits(lo))
    return result;
  std::optional<Probe> hi; // the shortest known length that does not fit
  Probe previous = lo;     // a second point for extrapolating upwards
  int64_t next = std::clamp<int64_t>(hint, 2, limit);
  bool interpolating = true;
  while (lo.length < limit && (!hi || hi->length - lo.length > 1)) {
    if (next <= lo.length || (hi && next >= hi->length))
      next = hi ? lo.length + (hi->length - lo.length) / 2 : std::min(limit, lo.length * 2);
    const int64_t width = hi ? hi->length - lo.length : 0;
    Probe p = probe(next);
    if (fits(p)) {
      previous = lo;
      lo = p;
    } else {
      hi = p;
    }
    // Interpolation keeps its turn while it at least halves the bracket.
    if (hi && width)
      interpolating = 2 * (hi->length - lo.length) <= width;
    std::optional<double> target =
        !interpolating ? std::nullopt
        : hi           ? interpolate(lo, *hi, budget)
                       : interpolate(previous, lo, budget);
    if (!target) {
      next = 0; // bisect (or, with no bracket yet, double)
      interpolating = true;
      continue;
    }
    if (hi) {
      // The floor of the crossing fits if the line is right; the probe
      // after it (one above) then closes the bracket.
      next = int64_t(std::floor(std::min(*target, double(hi->length - 1))));
    } else {
      // Aim just past the crossing, so that the next probe brackets it.
      next = int64_t(std::ceil(std::min(*target * 1.01 + 1, double(lo.length) * 64)));
      next = std::max(next, lo.length + lo.length / 4 + 1); // a bent line must not make it crawl
    }
    next = std::clamp<int64_t>(next, lo.length + 1, limit);
  }
  result.length = lo.length;
  return result;
}

} // namespace longctx
