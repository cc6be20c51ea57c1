//===- ModelExport.h - Trained weights back into the source ONNX model -----===//
#pragma once

#include "runtime/Executor.h"

#include <string>

namespace longctx {

/// Writes the artifact's source model (kept without weights at compile time)
/// to `path` with every parameter's current (trained) values as raw_data.
Status exportOnnx(Executor &exec, const std::string &path);

} // namespace longctx
