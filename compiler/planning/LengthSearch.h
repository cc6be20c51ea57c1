//===- LengthSearch.h - The longest sequence whose plan fits ----*- C++ -*-===//
//
// --max-seq-len plans the step at trial lengths. A plan of a big model costs
// seconds (tens with adjoint shards), so the search must not bisect blindly:
// peak memory is close to affine in the sequence length, and interpolating
// between the longest length known to fit and the shortest known not to
// usually lands within one step of the answer.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

namespace longctx {

/// The planned peak at a length; nullopt when no plan exists there (it does
/// not compile), which counts as not fitting.
using PeakAtLength = std::function<std::optional<uint64_t>(int64_t length)>;

struct LengthSearchResult {
  int64_t length = 0; // the longest fitting length; 0: not even 1 fits
  int probes = 0;     // plans made
};

/// The longest length in [1, limit] whose peak is <= budget, assuming peaks
/// grow with the length. `hint` (e.g. the length given) is probed first.
/// Regula falsi on the bracket [fits, does not fit], falling back to
/// bisection whenever interpolation fails to halve the bracket.
LengthSearchResult searchLongestFitting(const PeakAtLength &peakAt, uint64_t budget,
                                        int64_t hint, int64_t limit);

} // namespace longctx
