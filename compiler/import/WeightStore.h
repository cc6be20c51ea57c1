//===- WeightStore.h - Parameter data kept beside the IR --------*- C++ -*-===//
#pragma once

#include "runtime/Tensor.h"

#include <map>
#include <memory>
#include <string>

namespace longctx {

/// Payloads of `lc.param` ops by name. A null payload means the weights are
/// absent (a --no-weights model): such a graph can be planned, not run.
struct WeightStore {
  std::map<std::string, std::shared_ptr<Tensor>> payloads;
};

} // namespace longctx
