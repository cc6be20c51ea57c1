//===- Checkpoint.h - Parameters and optimizer state as safetensors --------===//
#pragma once

#include "runtime/Executor.h"

#include <string>

namespace longctx {

/// Writes every parameter (named like its ONNX initializer) and every
/// optimizer state tensor (`<name>.exp_avg`, `<name>.exp_avg_sq`,
/// `<name>.momentum_buffer`) of `exec` to `path` in the safetensors format,
/// with the number of completed steps in the metadata. Written to a
/// temporary file first and renamed, so a failed save never damages an
/// existing checkpoint.
Status saveCheckpoint(Executor &exec, const std::string &path, int64_t completedSteps);

/// Loads a checkpoint written by saveCheckpoint into `exec`: every tensor of
/// the file must exist in the artifact with the same dtype and shape, and
/// every parameter and state of the artifact must be in the file. Returns
/// the number of completed steps. Nothing is modified unless all checks pass.
Result<int64_t> loadCheckpoint(Executor &exec, const std::string &path);

} // namespace longctx
