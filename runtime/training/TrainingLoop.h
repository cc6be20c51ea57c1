//===- TrainingLoop.h - The training loop of longctx-run -------------------===//
#pragma once

#include "runtime/Executor.h"
#include "runtime/training/TokenData.h"

#include <optional>
#include <string>

namespace longctx {

struct TrainingOptions {
  int64_t steps = 1;
  uint64_t seed = 0;
  /// Token stream to sample batches from; null: `fixedInputs` are used.
  const TokenData *data = nullptr;
  /// Overrides the compiled learning rate (0 leaves weights untouched).
  std::optional<double> lr;
  std::string logJson;     // one JSON object per step, when set
  std::string dumpGrads;   // the first step's gradients, when set
  bool progressBar = false; // redraw one line instead of printing one per step
  std::string savePath;     // safetensors checkpoint written at the end (and every saveEvery)
  int64_t saveEvery = 0;
  std::string resumePath;   // continue from this checkpoint: `steps` counts from step 0
};

struct TrainingSummary {
  int64_t steps = 0;      // steps run by this call
  int64_t startStep = 0;  // steps completed before it (from a checkpoint)
  double seconds = 0;
  double firstLoss = 0, lastLoss = 0;
  /// Mean loss of the last min(20, steps) steps.
  double tailLoss = 0;
};

/// Runs `options.steps` training steps of a "train" artifact: feeds
/// input_ids (sampled from the data, or as already set), lr and step, runs,
/// logs loss, lr, tokens/s and peak bytes per step.
Result<TrainingSummary> runTraining(Executor &executor, const TrainingOptions &options);

} // namespace longctx
