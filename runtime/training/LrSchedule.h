//===- LrSchedule.h - Learning rate per step --------------------------------===//
#pragma once

#include "runtime/AttrMap.h"

#include <cmath>
#include <cstdint>
#include <string>

namespace longctx {

/// Linear warmup to `lr`, then constant or cosine decay to min_lr_ratio*lr
/// at `totalSteps` (the manifest's "training" keys; see docs).
struct LrSchedule {
  double lr = 1e-3;
  int64_t warmup = 0;
  std::string kind = "constant";
  double minLrRatio = 0.1;
  int64_t totalSteps = 1;

  static LrSchedule fromManifest(const AttrMap &training, int64_t totalSteps) {
    LrSchedule s;
    s.lr = training.getFloat("lr", s.lr);
    s.warmup = training.getInt("warmup", 0);
    s.kind = training.getString("schedule", "constant");
    s.minLrRatio = training.getFloat("min_lr_ratio", 0.1);
    s.totalSteps = totalSteps;
    return s;
  }

  /// The rate for 0-based step `t`.
  double at(int64_t t) const {
    if (warmup > 0 && t < warmup)
      return lr * double(t + 1) / double(warmup);
    if (kind != "cosine")
      return lr;
    double span = double(std::max<int64_t>(1, totalSteps - warmup));
    double progress = std::min(1.0, double(t - warmup) / span);
    double minLr = lr * minLrRatio;
    return minLr + 0.5 * (lr - minLr) * (1.0 + std::cos(M_PI * progress));
  }
};

} // namespace longctx
