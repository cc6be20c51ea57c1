//===- MambaModel.cpp - Mamba-style selective SSM graph generator ---------===//
//
// Mamba-1 blocks without the depthwise convolution: the recurrence itself is
// one longctx.SelectiveScan node, everything around it is standard ONNX.
// With `attentionEvery`, a hybrid (as Jamba): every so many layers is a
// Llama-style attention + MLP block instead.
// Initializer names follow the mamba_ssm state dict (without "backbone."),
// with [in, out] layouts; the LM head is tied to the embedding.
//
//===----------------------------------------------------------------------===//

#include "compiler/models/GraphBuilder.h"
#include "compiler/models/LlamaBlocks.h"
#include "compiler/models/Models.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

namespace longctx {
namespace models {

using Scope = GraphBuilder::Scope;

static int64_t effectiveDtRank(const MambaConfig &c) {
  return c.dtRank > 0 ? c.dtRank : (c.dim + 15) / 16;
}

/// The attention blocks of a hybrid, as a Llama config.
static LlamaConfig attentionConfig(const MambaConfig &c) {
  LlamaConfig l;
  l.dim = c.dim;
  l.layers = c.attentionEvery > 0 ? c.layers / c.attentionEvery : 0;
  l.heads = c.heads;
  l.kvHeads = c.kvHeads;
  l.ffn = c.ffn;
  l.vocab = c.vocab;
  l.normEps = c.normEps;
  l.options = c.options;
  return l;
}

static bool isAttentionLayer(const MambaConfig &c, int64_t i) {
  return c.attentionEvery > 0 && i % c.attentionEvery == c.attentionEvery - 1;
}

std::string validateConfig(const MambaConfig &c) {
  const std::pair<const char *, int64_t> fields[] = {{"--dim", c.dim},
                                                     {"--layers", c.layers},
                                                     {"--expand", c.expand},
                                                     {"--state", c.state},
                                                     {"--vocab", c.vocab}};
  for (const auto &f : fields) {
    if (f.second <= 0)
      return std::string(f.first) + " must be a positive integer";
    if (f.second > std::numeric_limits<int32_t>::max())
      return std::string(f.first) + " is too large";
  }
  if (c.dtRank < 0)
    return "--dt-rank must be a positive integer";
  if (c.dtRank > std::numeric_limits<int32_t>::max())
    return "--dt-rank is too large";
  if (c.expand * c.dim > std::numeric_limits<int32_t>::max())
    return "--expand * --dim is too large";
  if (c.attentionEvery < 0 || c.attentionEvery > c.layers)
    return "--attention-every must be between 1 and --layers";
  if (c.attentionEvery > 0) {
    LlamaConfig attention = attentionConfig(c);
    attention.layers = 1; // the attention settings alone
    if (std::string error = validateConfig(attention); !error.empty())
      return error;
  }
  return detail::checkModelSize(parameterCount(c), c.options);
}

uint64_t parameterCount(const MambaConfig &c) {
  using detail::addSat;
  using detail::mulSat;
  uint64_t d = c.dim, n = c.state, r = effectiveDtRank(c);
  uint64_t e = mulSat(c.expand, d);
  uint64_t layer = d;                                 // norm
  layer = addSat(layer, mulSat(mulSat(d, 2), e));     // in_proj
  layer = addSat(layer, mulSat(e, addSat(r, 2 * n))); // x_proj
  layer = addSat(layer, mulSat(addSat(r, 1), e));     // dt_proj + bias
  layer = addSat(layer, mulSat(e, addSat(n, 1)));     // A_log, D
  layer = addSat(layer, mulSat(e, d));                // out_proj
  LlamaConfig attention = attentionConfig(c);
  uint64_t total = mulSat(layer, c.layers - attention.layers);
  if (attention.layers > 0) // its blocks: Llama's count less embedding, head and norm
    total = addSat(total, parameterCount(attention) - mulSat(2 * d, c.vocab) - d);
  return addSat(addSat(total, mulSat(c.vocab, d)), d); // embedding, norm
}

namespace {

class MambaEmitter {
public:
  MambaEmitter(const MambaConfig &c, GraphBuilder &b)
      : c(c), b(b), inner(c.expand * c.dim), dtRank(effectiveDtRank(c)) {}

  void emit();

private:
  std::string emitMixer(const std::string &prefix, const std::string &x);
  std::string linear(const std::string &scope, const std::string &x,
                     const std::string &weight, int64_t in, int64_t out);

  const MambaConfig &c;
  GraphBuilder &b;
  int64_t inner;
  int64_t dtRank;
};

} // namespace

std::string MambaEmitter::linear(const std::string &scope, const std::string &x,
                                 const std::string &weight, int64_t in,
                                 int64_t out) {
  Scope s(b, scope);
  b.addUniform(weight, {in, out}, 1.0 / std::sqrt(static_cast<double>(in)));
  return b.op("MatMul", {x, weight});
}

std::string MambaEmitter::emitMixer(const std::string &prefix,
                                    const std::string &x) {
  Scope s(b, "mixer");
  int64_t n = c.state;
  std::string xz =
      linear("in_proj", x, prefix + "in_proj.weight", c.dim, 2 * inner);
  std::vector<std::string> uz = b.split(xz, -1, {inner, inner}, "SplitXZ");
  const std::string &u = uz[0], &z = uz[1];

  std::string xDbl =
      linear("x_proj", u, prefix + "x_proj.weight", inner, dtRank + 2 * n);
  std::vector<std::string> parts =
      b.split(xDbl, -1, {dtRank, n, n}, "SplitDtBC");

  std::string delta;
  {
    Scope sd(b, "dt_proj");
    // Mamba's "random" dt init: weight ~ U(-R^-0.5, R^-0.5); the bias is
    // softplus^-1 of dt log-uniform in [1e-3, 1e-1], so the initial step sizes
    // span two decades.
    float bound = static_cast<float>(1.0 / std::sqrt(double(dtRank)));
    std::string weight = prefix + "dt_proj.weight";
    b.addInitializer(weight, {dtRank, inner},
                     [bound](float *data, size_t count, WeightRng &rng) {
                       for (size_t i = 0; i < count; ++i)
                         data[i] = rng.uniformSym(bound);
                     });
    std::string bias = prefix + "dt_proj.bias";
    b.addInitializer(
        bias, {inner}, [](float *data, size_t count, WeightRng &rng) {
          const double lo = std::log(1e-3), hi = std::log(1e-1);
          for (size_t i = 0; i < count; ++i) {
            double dt =
                std::max(std::exp(lo + rng.uniform() * (hi - lo)), 1e-4);
            data[i] = static_cast<float>(dt + std::log(-std::expm1(-dt)));
          }
        });
    std::string projected = b.op("MatMul", {parts[0], weight});
    delta = b.op("Softplus", {b.op("Add", {projected, bias})});
  }

  // A = -exp(A_log) keeps A negative (a stable, decaying recurrence) whatever
  // the stored values; S4D-real init A_log[e, i] = log(i + 1).
  std::string aLog = prefix + "A_log";
  b.addInitializer(
      aLog, {inner, n}, [n](float *data, size_t count, WeightRng &) {
        for (size_t i = 0; i < count; ++i)
          data[i] =
              static_cast<float>(std::log(static_cast<double>(i % n + 1)));
      });
  std::string a = b.op("Neg", {b.op("Exp", {aLog}, "ExpA")}, "A");

  onnx::NodeProto &scan =
      b.addNode("SelectiveScan", {u, delta, a, parts[1], parts[2]},
                "SelectiveScan", 1, kCustomDomain);
  scan.set_doc_string(
      "inputs u[B,S,E], delta[B,S,E], A[E,N], B[B,S,N], C[B,S,N]; output "
      "y[B,S,E]. h[-1] = 0; h[t][e,n] = exp(delta[t][e] * A[e,n]) * "
      "h[t-1][e,n] + delta[t][e] * B[t][n] * u[t][e]; y[t][e] = "
      "sum_n h[t][e,n] * C[t][n]. No D skip, no gating (both are explicit "
      "nodes).");

  std::string dSkip = prefix + "D";
  b.addFilled(dSkip, {inner}, 1.0f);
  std::string y = b.op(
      "Add", {scan.output(0), b.op("Mul", {u, dSkip}, "SkipD")}, "AddSkip");
  std::string siluZ = b.op("Mul", {z, b.op("Sigmoid", {z})}, "SiLU");
  std::string gated = b.op("Mul", {y, siluZ}, "Gate");
  return linear("out_proj", gated, prefix + "out_proj.weight", inner, c.dim);
}

void MambaEmitter::emit() {
  b.addInput("input_ids", onnx::TensorProto::INT64, {"batch", "seq"});
  std::string h;
  {
    Scope s(b, "tok_embeddings");
    b.addUniform("tok_embeddings.weight", {c.vocab, c.dim},
                 1.0 / std::sqrt(static_cast<double>(c.dim)));
    h = b.op("Gather", {"tok_embeddings.weight", "input_ids"});
  }
  std::unique_ptr<LlamaBlocks> attention;
  if (c.attentionEvery > 0) {
    attention = std::make_unique<LlamaBlocks>(attentionConfig(c), b);
    attention->emitSequenceTables();
  }
  for (int64_t i = 0; i < c.layers; ++i) {
    if (isAttentionLayer(c, i)) {
      h = attention->emitLayer(i, h);
      continue;
    }
    std::string prefix = "layers." + std::to_string(i) + ".";
    Scope s(b, "layers." + std::to_string(i));
    std::string normed;
    {
      Scope sn(b, "norm");
      normed = b.rmsNorm(h, b.addFilled(prefix + "norm.weight", {c.dim}, 1.0f),
                         c.normEps);
    }
    std::string mixed = emitMixer(prefix + "mixer.", normed);
    h = b.op("Add", {h, mixed}, "Residual");
  }
  {
    Scope s(b, "norm");
    h = b.rmsNorm(h, b.addFilled("norm.weight", {c.dim}, 1.0f), c.normEps);
  }
  {
    Scope s(b, "lm_head");
    onnx::NodeProto &t = b.addNode("Transpose", {"tok_embeddings.weight"});
    GraphBuilder::setAttrInts(t, "perm", {1, 0});
    onnx::NodeProto &head = b.addNode("MatMul", {h, t.output(0)});
    head.set_output(0, "logits");
  }
  b.addOutput("logits", onnx::TensorProto::FLOAT, {"batch", "seq", c.vocab});
}

onnx::ModelProto buildMamba(const MambaConfig &config) {
  onnx::ModelProto model;
  initModel(model, /*opset=*/17, kCustomDomain, kCustomDomainVersion);
  auto addMeta = [&](const char *key, const std::string &value) {
    onnx::StringStringEntryProto *e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  };
  addMeta("longctx.architecture", config.attentionEvery > 0 ? "hybrid" : "mamba");
  if (config.attentionEvery > 0) {
    addMeta("longctx.attention_every", std::to_string(config.attentionEvery));
    addMeta("longctx.heads", std::to_string(config.heads));
    addMeta("longctx.kv_heads", std::to_string(config.kvHeads));
    addMeta("longctx.ffn", std::to_string(config.ffn));
  }
  addMeta("longctx.dim", std::to_string(config.dim));
  addMeta("longctx.layers", std::to_string(config.layers));
  addMeta("longctx.expand", std::to_string(config.expand));
  addMeta("longctx.state", std::to_string(config.state));
  addMeta("longctx.dt_rank", std::to_string(effectiveDtRank(config)));
  addMeta("longctx.vocab", std::to_string(config.vocab));
  addMeta("longctx.seed", std::to_string(config.options.seed));

  onnx::GraphProto *graph = model.mutable_graph();
  graph->set_name(config.attentionEvery > 0 ? "hybrid" : "mamba");
  graph->set_doc_string(config.options.docString);
  GraphBuilder builder(*graph, /*opset=*/17, config.options.seed);
  if (!config.options.externalDataLocation.empty())
    builder.setExternalDataLocation(config.options.externalDataLocation);
  MambaEmitter(config, builder).emit();
  return model;
}

} // namespace models
} // namespace longctx
