//===- LlamaModel.cpp - Llama-style decoder graph generator ---------------===//
//
// Pre-norm decoder: RMSNorm, grouped-query attention with rotary embeddings
// ("rotate half" form, as in Hugging Face Llama), SwiGLU MLP, untied LM head.
// Initializer names follow Meta's Llama state dict, with [in, out] layouts.
//
//===----------------------------------------------------------------------===//

#include "compiler/models/GraphBuilder.h"
#include "compiler/models/LlamaBlocks.h"
#include "compiler/models/Models.h"

#include <cmath>
#include <limits>
#include <utility>

namespace longctx {
namespace models {

using Scope = GraphBuilder::Scope;

std::string validateConfig(const LlamaConfig &c) {
  const std::pair<const char *, int64_t> fields[] = {
      {"--dim", c.dim},          {"--layers", c.layers}, {"--heads", c.heads},
      {"--kv-heads", c.kvHeads}, {"--ffn", c.ffn},       {"--vocab", c.vocab}};
  for (const auto &f : fields) {
    if (f.second <= 0)
      return std::string(f.first) + " must be a positive integer";
    if (f.second > std::numeric_limits<int32_t>::max())
      return std::string(f.first) + " is too large";
  }
  if (c.dim % c.heads != 0)
    return "--heads (" + std::to_string(c.heads) + ") must divide --dim (" +
           std::to_string(c.dim) + ")";
  if (c.heads % c.kvHeads != 0)
    return "--kv-heads (" + std::to_string(c.kvHeads) +
           ") must divide --heads (" + std::to_string(c.heads) + ")";
  if ((c.dim / c.heads) % 2 != 0)
    return "head dim --dim/--heads = " + std::to_string(c.dim / c.heads) +
           " must be even for rotary embeddings";
  // inv_freq is a Constant node of Dh/2 floats; keep it (and the file) small.
  if (c.dim / c.heads > 65536)
    return "head dim --dim/--heads = " + std::to_string(c.dim / c.heads) +
           " is too large (at most 65536)";
  if (c.opset < 13 || c.opset > 17)
    return "--opset must be between 13 and 17, got " + std::to_string(c.opset);
  return detail::checkModelSize(parameterCount(c), c.options);
}

uint64_t parameterCount(const LlamaConfig &c) {
  using detail::addSat;
  using detail::mulSat;
  uint64_t d = c.dim, f = c.ffn, v = c.vocab;
  uint64_t kvDim = c.heads > 0 ? d / c.heads * c.kvHeads : 0;
  uint64_t attn = addSat(mulSat(2 * d, d), mulSat(2 * d, kvDim));
  uint64_t mlp = mulSat(3 * d, f);
  uint64_t layer = addSat(addSat(attn, mlp), 2 * d);
  uint64_t total = mulSat(layer, c.layers);
  total = addSat(total, mulSat(2 * d, v)); // Embedding and LM head.
  return addSat(total, d);                 // Final norm.
}

namespace {

/// Sequence-dependent tensors shared by all layers.
struct SequenceTables {
  std::string cos, sin; // [S, Dh]
  std::string mask;     // bool [S, S], true where key <= query.
};

class LlamaEmitter {
public:
  LlamaEmitter(const LlamaConfig &c, GraphBuilder &b)
      : c(c), b(b), headDim(c.dim / c.heads) {}

  void emit();
  SequenceTables emitSequenceTables();
  std::string emitLayer(int64_t index, const std::string &h,
                        const SequenceTables &tables);

private:
  std::string emitAttention(const std::string &prefix, const std::string &x,
                            const SequenceTables &tables);
  std::string emitMlp(const std::string &prefix, const std::string &x);
  std::string applyRope(const std::string &x, const SequenceTables &tables);
  std::string splitHeads(const std::string &x, int64_t numHeads);
  std::string repeatKv(const std::string &x);
  std::string linear(const std::string &scope, const std::string &x,
                     const std::string &weight, int64_t in, int64_t out);

  const LlamaConfig &c;
  GraphBuilder &b;
  int64_t headDim;
};

} // namespace

std::string LlamaEmitter::linear(const std::string &scope, const std::string &x,
                                 const std::string &weight, int64_t in,
                                 int64_t out) {
  Scope s(b, scope);
  b.addUniform(weight, {in, out}, 1.0 / std::sqrt(static_cast<double>(in)));
  return b.op("MatMul", {x, weight});
}

SequenceTables LlamaEmitter::emitSequenceTables() {
  SequenceTables t;
  std::string seqLen1d, seqLen, positions;
  {
    Scope s(b, "seq_len");
    std::string shape = b.op("Shape", {"input_ids"});
    seqLen1d = b.op("Gather", {shape, b.constInts("seq_axis", {1})});
    seqLen = b.squeeze(seqLen1d, {0});
    positions = b.op("Range", {b.constIntScalar("start", 0), seqLen,
                               b.constIntScalar("delta", 1)});
  }
  {
    Scope s(b, "rotary_emb");
    onnx::NodeProto &cast = b.addNode("Cast", {positions});
    GraphBuilder::setAttrInt(cast, "to", onnx::TensorProto::FLOAT);
    std::string column = b.unsqueeze(cast.output(0), {1});
    // A Constant node rather than an initializer: it is part of the
    // architecture, so --no-weights files must still carry it.
    std::vector<float> invFreq(headDim / 2);
    for (int64_t i = 0; i < headDim / 2; ++i)
      invFreq[i] = static_cast<float>(
          1.0 / std::pow(c.ropeTheta, static_cast<double>(2 * i) / headDim));
    std::string freqs =
        b.op("Mul", {column, b.constFloats("inv_freq", invFreq)}, "Freqs");
    onnx::NodeProto &concat = b.addNode("Concat", {freqs, freqs});
    GraphBuilder::setAttrInt(concat, "axis", -1);
    t.cos = b.op("Cos", {concat.output(0)});
    t.sin = b.op("Sin", {concat.output(0)});
  }
  {
    Scope s(b, "causal_mask");
    if (c.opset >= 14) {
      onnx::NodeProto &shape = b.addNode("Concat", {seqLen1d, seqLen1d});
      GraphBuilder::setAttrInt(shape, "axis", 0);
      onnx::NodeProto &ones = b.addNode("ConstantOfShape", {shape.output(0)});
      onnx::TensorProto one;
      one.set_data_type(onnx::TensorProto::FLOAT);
      one.add_dims(1);
      one.add_float_data(1.0f);
      GraphBuilder::setAttrTensor(ones, "value", one);
      onnx::NodeProto &tril = b.addNode("Trilu", {ones.output(0)});
      GraphBuilder::setAttrInt(tril, "upper", 0);
      onnx::NodeProto &cast = b.addNode("Cast", {tril.output(0)});
      GraphBuilder::setAttrInt(cast, "to", onnx::TensorProto::BOOL);
      t.mask = cast.output(0);
    } else {
      // Trilu only exists from opset 14; compare positions instead.
      std::string query = b.unsqueeze(positions, {1}, "QueryPositions");
      std::string key = b.unsqueeze(positions, {0}, "KeyPositions");
      t.mask = b.op("LessOrEqual", {key, query});
    }
  }
  return t;
}

std::string LlamaEmitter::splitHeads(const std::string &x, int64_t numHeads) {
  std::string shaped =
      b.op("Reshape", {x, b.constInts("shape", {0, 0, numHeads, headDim})});
  onnx::NodeProto &t = b.addNode("Transpose", {shaped});
  GraphBuilder::setAttrInts(t, "perm", {0, 2, 1, 3});
  return t.output(0);
}

std::string LlamaEmitter::applyRope(const std::string &x,
                                    const SequenceTables &tables) {
  Scope s(b, "rope");
  std::vector<std::string> halves = b.split(x, -1, {headDim / 2, headDim / 2});
  std::string negHigh = b.op("Neg", {halves[1]});
  onnx::NodeProto &rotated = b.addNode("Concat", {negHigh, halves[0]});
  GraphBuilder::setAttrInt(rotated, "axis", -1);
  std::string xCos = b.op("Mul", {x, tables.cos}, "MulCos");
  std::string rotSin = b.op("Mul", {rotated.output(0), tables.sin}, "MulSin");
  return b.op("Add", {xCos, rotSin});
}

std::string LlamaEmitter::repeatKv(const std::string &x) {
  // [B, G, S, Dh] -> [B, G, H/G, S, Dh] -> [B, H, S, Dh]: head h reads kv
  // head h / (H/G), matching torch.repeat_interleave in Hugging Face Llama.
  Scope s(b, "repeat_kv");
  std::string expanded =
      b.op("Expand",
           {b.unsqueeze(x, {2}),
            b.constInts("expand_shape", {1, 1, c.heads / c.kvHeads, 1, 1})});
  return b.op("Reshape",
              {expanded, b.constInts("shape", {0, c.heads, -1, headDim})});
}

std::string LlamaEmitter::emitAttention(const std::string &prefix,
                                        const std::string &x,
                                        const SequenceTables &tables) {
  Scope s(b, "attention");
  int64_t qDim = c.heads * headDim, kvDim = c.kvHeads * headDim;
  std::string q = linear("wq", x, prefix + "wq.weight", c.dim, qDim);
  std::string k = linear("wk", x, prefix + "wk.weight", c.dim, kvDim);
  std::string v = linear("wv", x, prefix + "wv.weight", c.dim, kvDim);
  {
    Scope sq(b, "q");
    q = applyRope(splitHeads(q, c.heads), tables);
  }
  // RoPE and the head split run before repeat_kv so they touch G heads only.
  {
    Scope sk(b, "k");
    k = applyRope(splitHeads(k, c.kvHeads), tables);
    if (c.kvHeads != c.heads)
      k = repeatKv(k);
  }
  {
    Scope sv(b, "v");
    v = splitHeads(v, c.kvHeads);
    if (c.kvHeads != c.heads)
      v = repeatKv(v);
  }
  onnx::NodeProto &kT = b.addNode("Transpose", {k}, "TransposeK");
  GraphBuilder::setAttrInts(kT, "perm", {0, 1, 3, 2});
  std::string scores = b.op("MatMul", {q, kT.output(0)}, "Scores");
  scores =
      b.op("Mul",
           {scores, b.constFloatScalar(
                        "scale_value",
                        static_cast<float>(1.0 / std::sqrt(double(headDim))))},
           "Scale");
  // Where with the lowest float, not an additive -inf mask: adding would turn
  // fully masked rows into NaN and can overflow; lowest gives exp() == 0.
  scores = b.op(
      "Where",
      {tables.mask, scores,
       b.constFloatScalar("mask_value", std::numeric_limits<float>::lowest())},
      "Mask");
  onnx::NodeProto &softmax = b.addNode("Softmax", {scores});
  GraphBuilder::setAttrInt(softmax, "axis", -1);
  std::string context = b.op("MatMul", {softmax.output(0), v}, "Context");
  onnx::NodeProto &merged = b.addNode("Transpose", {context}, "MergeHeads");
  GraphBuilder::setAttrInts(merged, "perm", {0, 2, 1, 3});
  std::string flat = b.op(
      "Reshape", {merged.output(0), b.constInts("merged_shape", {0, 0, qDim})});
  return linear("wo", flat, prefix + "wo.weight", qDim, c.dim);
}

std::string LlamaEmitter::emitMlp(const std::string &prefix,
                                  const std::string &x) {
  Scope s(b, "feed_forward");
  std::string gate = linear("w1", x, prefix + "w1.weight", c.dim, c.ffn);
  std::string up = linear("w3", x, prefix + "w3.weight", c.dim, c.ffn);
  std::string silu = b.op("Mul", {gate, b.op("Sigmoid", {gate})}, "SiLU");
  std::string hidden = b.op("Mul", {silu, up}, "Gate");
  return linear("w2", hidden, prefix + "w2.weight", c.ffn, c.dim);
}

std::string LlamaEmitter::emitLayer(int64_t index, const std::string &h,
                                    const SequenceTables &tables) {
  std::string prefix = "layers." + std::to_string(index) + ".";
  Scope s(b, "layers." + std::to_string(index));
  std::string attnIn;
  {
    Scope sn(b, "attention_norm");
    attnIn = b.rmsNorm(
        h, b.addFilled(prefix + "attention_norm.weight", {c.dim}, 1.0f),
        c.normEps);
  }
  std::string attn = emitAttention(prefix + "attention.", attnIn, tables);
  std::string h1 = b.op("Add", {h, attn}, "AttentionResidual");
  std::string mlpIn;
  {
    Scope sn(b, "ffn_norm");
    mlpIn = b.rmsNorm(
        h1, b.addFilled(prefix + "ffn_norm.weight", {c.dim}, 1.0f), c.normEps);
  }
  std::string mlp = emitMlp(prefix + "feed_forward.", mlpIn);
  return b.op("Add", {h1, mlp}, "FeedForwardResidual");
}

void LlamaEmitter::emit() {
  b.addInput("input_ids", onnx::TensorProto::INT64, {"batch", "seq"});
  SequenceTables tables = emitSequenceTables();
  std::string h;
  {
    Scope s(b, "tok_embeddings");
    b.addUniform("tok_embeddings.weight", {c.vocab, c.dim},
                 1.0 / std::sqrt(static_cast<double>(c.dim)));
    h = b.op("Gather", {"tok_embeddings.weight", "input_ids"});
  }
  for (int64_t i = 0; i < c.layers; ++i)
    h = emitLayer(i, h, tables);
  {
    Scope s(b, "norm");
    h = b.rmsNorm(h, b.addFilled("norm.weight", {c.dim}, 1.0f), c.normEps);
  }
  {
    Scope s(b, "output");
    b.addUniform("output.weight", {c.dim, c.vocab},
                 1.0 / std::sqrt(static_cast<double>(c.dim)));
    onnx::NodeProto &head = b.addNode("MatMul", {h, "output.weight"});
    head.set_output(0, "logits");
  }
  b.addOutput("logits", onnx::TensorProto::FLOAT, {"batch", "seq", c.vocab});
}

struct LlamaBlocks::Impl {
  Impl(const LlamaConfig &c, GraphBuilder &b) : config(c), emitter(config, b) {}
  LlamaConfig config; // the emitter keeps a reference
  LlamaEmitter emitter;
  SequenceTables tables;
};

LlamaBlocks::LlamaBlocks(const LlamaConfig &config, GraphBuilder &builder)
    : impl_(std::make_unique<Impl>(config, builder)) {}
LlamaBlocks::~LlamaBlocks() = default;

void LlamaBlocks::emitSequenceTables() { impl_->tables = impl_->emitter.emitSequenceTables(); }

std::string LlamaBlocks::emitLayer(int64_t index, const std::string &h) {
  return impl_->emitter.emitLayer(index, h, impl_->tables);
}

onnx::ModelProto buildLlama(const LlamaConfig &config) {
  onnx::ModelProto model;
  initModel(model, config.opset, kCustomDomain, kCustomDomainVersion);
  auto addMeta = [&](const char *key, const std::string &value) {
    onnx::StringStringEntryProto *e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  };
  addMeta("longctx.architecture", "llama");
  addMeta("longctx.dim", std::to_string(config.dim));
  addMeta("longctx.layers", std::to_string(config.layers));
  addMeta("longctx.heads", std::to_string(config.heads));
  addMeta("longctx.kv_heads", std::to_string(config.kvHeads));
  addMeta("longctx.ffn", std::to_string(config.ffn));
  addMeta("longctx.vocab", std::to_string(config.vocab));
  addMeta("longctx.seed", std::to_string(config.options.seed));

  onnx::GraphProto *graph = model.mutable_graph();
  graph->set_name("llama");
  graph->set_doc_string(config.options.docString);
  GraphBuilder builder(*graph, config.opset, config.options.seed);
  if (!config.options.externalDataLocation.empty())
    builder.setExternalDataLocation(config.options.externalDataLocation);
  LlamaEmitter(config, builder).emit();
  return model;
}

} // namespace models
} // namespace longctx
