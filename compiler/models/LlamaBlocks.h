//===- LlamaBlocks.h - Llama-style blocks for other generators --*- C++ -*-===//
#pragma once

#include "compiler/models/GraphBuilder.h"
#include "compiler/models/Models.h"

#include <memory>
#include <string>

namespace longctx {
namespace models {

/// The Llama generator's decoder layer (pre-norm GQA attention with RoPE,
/// SwiGLU MLP, residuals) for a generator that mixes it with other blocks
/// (the hybrid): the sequence tables first, then any layers.
class LlamaBlocks {
public:
  LlamaBlocks(const LlamaConfig &config, GraphBuilder &builder);
  ~LlamaBlocks();

  /// Positions, rotary tables and causal mask from Shape(input_ids): once,
  /// after the input exists and before the first layer.
  void emitSequenceTables();
  /// Layer `index` ("layers.<index>." names) on the residual stream `h`.
  std::string emitLayer(int64_t index, const std::string &h);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace models
} // namespace longctx
