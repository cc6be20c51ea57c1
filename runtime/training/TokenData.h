//===- TokenData.h - Token streams for training, and batches from them -----===//
#pragma once

#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace longctx {

enum class TokenFormat { Auto, Bytes, Npy, U16, U32 };

/// A whole token stream in memory (int64 ids).
class TokenData {
public:
  /// Loads FILE: a .npy integer array (any shape, flattened), a flat binary
  /// of little-endian uint16/uint32 tokens, or raw bytes (byte-level tokens,
  /// ids 0..255). `Auto` picks .npy by extension and bytes otherwise.
  static Result<TokenData> load(const std::string &path, TokenFormat format);

  int64_t size() const { return int64_t(tokens_.size()); }
  int64_t maxToken() const { return maxToken_; }

  /// Fills `batch` ([B, S] int64) with B windows of S consecutive tokens at
  /// uniformly random starts drawn from `rng`: reproducible for a seed.
  void sample(std::mt19937_64 &rng, Tensor &batch) const;

private:
  std::vector<int64_t> tokens_;
  int64_t maxToken_ = 0;
};

} // namespace longctx
