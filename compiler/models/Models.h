//===- Models.h - Synthetic ONNX language models for testing ----*- C++ -*-===//
//
// Generators for Llama-style and Mamba-style decoder graphs. Batch and
// sequence length are symbolic and nothing in a graph grows with the sequence
// length: positions, rotary tables and the causal mask are computed from
// Shape(input_ids) at run time, so one file serves every context length.
//
// Weights use the [in, out] layout (MatMul needs no transpose), i.e. the
// transpose of PyTorch nn.Linear.weight; names follow PyTorch state dicts.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

namespace longctx {
namespace models {

/// Settings shared by every generator.
struct ModelOptions {
  /// Seed for WeightRng; each tensor's stream also depends on its name.
  uint64_t seed = 0;
  /// Non-empty: emit every initializer as an external-data reference to this
  /// location (not written) so the model holds shapes only.
  std::string externalDataLocation;
  /// Stored as the graph doc_string (the generating command line).
  std::string docString;
};

struct LlamaConfig {
  int64_t dim = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  /// Default-domain opset, 13..17.
  int64_t opset = 17;
  double ropeTheta = 10000.0;
  float normEps = 1e-5f;
  ModelOptions options;
};

struct MambaConfig {
  int64_t dim = 0;
  int64_t layers = 0;
  int64_t expand = 0;
  int64_t state = 0;
  int64_t vocab = 0;
  /// Rank of the delta projection; 0 means ceil(dim / 16) as in Mamba.
  int64_t dtRank = 0;
  float normEps = 1e-5f;
  /// A hybrid (Jamba-style) when > 0: layer i is a Llama-style block
  /// (attention with `heads`/`kvHeads`, SwiGLU MLP of width `ffn`) where
  /// i % attentionEvery == attentionEvery - 1, a Mamba block elsewhere.
  int64_t attentionEvery = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t ffn = 0;
  ModelOptions options;
};

/// Empty when the config can be built; otherwise a one-line reason.
std::string validateConfig(const LlamaConfig &config);
std::string validateConfig(const MambaConfig &config);

/// Number of float parameters (initializer elements); saturates at UINT64_MAX.
uint64_t parameterCount(const LlamaConfig &config);
uint64_t parameterCount(const MambaConfig &config);

/// The config must pass validateConfig.
onnx::ModelProto buildLlama(const LlamaConfig &config);
onnx::ModelProto buildMamba(const MambaConfig &config);

namespace detail {
inline uint64_t mulSat(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
inline uint64_t addSat(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}
/// Shared size checks: external offsets must stay far from overflow, and a
/// protobuf message (so a model with embedded data) cannot exceed 2 GiB.
inline std::string checkModelSize(uint64_t params, const ModelOptions &opts) {
  if (params > (uint64_t(1) << 60))
    return "model too large (more than 2^60 parameters)";
  uint64_t bytes = params * 4;
  if (opts.externalDataLocation.empty() && bytes > (uint64_t(2047) << 20))
    return "weights take " + std::to_string(bytes >> 20) +
           " MiB, over the 2 GiB protobuf limit; use --no-weights";
  return "";
}
} // namespace detail

/// Domain and version of the custom ops (SelectiveScan) the generators emit.
constexpr const char *kCustomDomain = "longctx";
constexpr int64_t kCustomDomainVersion = 1;

} // namespace models
} // namespace longctx
