//===- AdjointAttributes.h - How adjoint-sharding passes mark their loops -===//
#pragma once

#include "llvm/ADT/StringRef.h"

namespace longctx {

/// Marks a sharded layer's loop (its position among the layers, bottom up);
/// the loop's gradient keeps it, so later passes find the backwards.
constexpr llvm::StringLiteral kAdjointLayerAttr = "lc.adjoint_layer";
/// Marks the loops whose backward lc-adjoint-paper rewires (mode=paper).
constexpr llvm::StringLiteral kAdjointPaperAttr = "lc.adjoint_paper";
/// Marks the loops whose backward lc-adjoint-state-passing splits into
/// parallel shards: the number of shards that run at once.
constexpr llvm::StringLiteral kAdjointParallelAttr = "lc.adjoint_parallel";

} // namespace longctx
