//===- TokenData.cpp - Token streams for training --------------------------===//
#include "runtime/training/TokenData.h"
#include "runtime/Npy.h"

#include <algorithm>
#include <cstring>
#include <fstream>

namespace longctx {

Result<TokenData> TokenData::load(const std::string &path, TokenFormat format) {
  TokenData data;
  bool isNpy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (format == TokenFormat::Npy || (format == TokenFormat::Auto && isNpy)) {
    Result<Tensor> t = readNpy(path);
    if (!t)
      return t.status();
    int64_t n = t->numElements();
    data.tokens_.resize(size_t(n));
    switch (t->dtype()) {
    case DType::I64: std::copy_n(t->as<int64_t>(), n, data.tokens_.begin()); break;
    case DType::I32: std::copy_n(t->as<int32_t>(), n, data.tokens_.begin()); break;
    case DType::U8: std::copy_n(t->as<uint8_t>(), n, data.tokens_.begin()); break;
    default:
      return Status::error(path + ": token arrays must be int64, int32 or uint8, not " +
                           dtypeName(t->dtype()));
    }
  } else {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
      return Status::error(path + ": cannot open the data file");
    uint64_t bytes = uint64_t(in.tellg());
    in.seekg(0);
    size_t width = format == TokenFormat::U16 ? 2 : format == TokenFormat::U32 ? 4 : 1;
    if (bytes % width)
      return Status::error(path + ": size " + std::to_string(bytes) + " is not a multiple of " +
                           std::to_string(width) + "-byte tokens");
    std::vector<uint8_t> raw(bytes);
    if (!in.read(reinterpret_cast<char *>(raw.data()), std::streamsize(bytes)))
      return Status::error(path + ": cannot read the data file");
    data.tokens_.resize(bytes / width);
    for (size_t i = 0; i < data.tokens_.size(); ++i) {
      if (width == 1) {
        data.tokens_[i] = raw[i];
      } else if (width == 2) {
        uint16_t v;
        std::memcpy(&v, &raw[2 * i], 2);
        data.tokens_[i] = v;
      } else {
        uint32_t v;
        std::memcpy(&v, &raw[4 * i], 4);
        data.tokens_[i] = v;
      }
    }
  }
  for (int64_t t : data.tokens_) {
    if (t < 0)
      return Status::error(path + ": negative token id " + std::to_string(t));
    data.maxToken_ = std::max(data.maxToken_, t);
  }
  return data;
}

void TokenData::sample(std::mt19937_64 &rng, Tensor &batch) const {
  int64_t rows = batch.shape()[0], seq = batch.shape()[1];
  std::uniform_int_distribution<int64_t> start(0, size() - seq);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t s = start(rng);
    std::copy_n(tokens_.begin() + s, seq, batch.as<int64_t>() + r * seq);
  }
}

} // namespace longctx
