//===- OnnxInitializers.h - Rewriting an ONNX model's initializer data -----===//
//
// A protobuf wire-format editor for exactly one job, so the runtime needs
// no protobuf library: replace the data of named initializers of a binary
// ModelProto. The compiler uses it to keep a weightless copy of the model in
// the artifact; `longctx-run --export-onnx` to write the trained weights back.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Status.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace longctx {

/// For each initializer (ModelProto.graph.initializer), `replacement(name)`
/// returns nullopt to keep it unchanged, or the new little-endian raw bytes:
/// its data fields (typed data, raw_data, external data) are then dropped
/// and raw_data set to those bytes (omitted when empty). Everything else is
/// copied byte for byte. Fails on malformed protobuf.
Result<std::string> rewriteOnnxInitializers(
    std::string_view model,
    const std::function<std::optional<std::string_view>(const std::string &)> &replacement);

} // namespace longctx
