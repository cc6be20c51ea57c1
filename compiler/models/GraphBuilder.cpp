//===- GraphBuilder.cpp - Small helper for emitting ONNX graphs -----------===//

#include "compiler/models/GraphBuilder.h"

#include <cmath>
#include <cstring>

namespace longctx {
namespace models {

//===----------------------------------------------------------------------===//
// WeightRng
//===----------------------------------------------------------------------===//

static uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

WeightRng WeightRng::forTensor(uint64_t seed, const std::string &name) {
  uint64_t hash = 0xCBF29CE484222325ull; // FNV-1a 64 offset basis.
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001B3ull;
  }
  uint64_t state = seed ^ hash;
  return WeightRng(splitmix64(state));
}

uint64_t WeightRng::next() { return splitmix64(state); }

double WeightRng::uniform() {
  return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
}

//===----------------------------------------------------------------------===//
// GraphBuilder
//===----------------------------------------------------------------------===//

void initModel(onnx::ModelProto &model, int64_t opset,
               const std::string &customDomain, int64_t customVersion) {
  // The IR version released together with each opset, so older readers that
  // check the pair accept the file.
  model.set_ir_version(opset <= 14 ? 7 : 8);
  model.set_producer_name("longctx-models");
#ifdef LONGCTX_VERSION
  model.set_producer_version(LONGCTX_VERSION);
#else
  model.set_producer_version("0.1.0");
#endif
  onnx::OperatorSetIdProto *def = model.add_opset_import();
  def->set_domain("");
  def->set_version(opset);
  onnx::OperatorSetIdProto *custom = model.add_opset_import();
  custom->set_domain(customDomain);
  custom->set_version(customVersion);
}

GraphBuilder::GraphBuilder(onnx::GraphProto &graph, int64_t opset,
                           uint64_t seed)
    : graph(graph), opset(opset), seed(seed) {}

GraphBuilder::Scope::Scope(GraphBuilder &builder, const std::string &name)
    : builder(builder) {
  builder.scopes.push_back(name);
}

GraphBuilder::Scope::~Scope() { builder.scopes.pop_back(); }

std::string GraphBuilder::scoped(const std::string &name) const {
  std::string result;
  for (const std::string &s : scopes)
    result += "/" + s;
  return result + "/" + name;
}

std::string GraphBuilder::uniqueName(const std::string &base) {
  if (usedNames.insert(base).second)
    return base;
  for (unsigned i = 1;; ++i) {
    std::string candidate = base + "_" + std::to_string(i);
    if (usedNames.insert(candidate).second)
      return candidate;
  }
}

onnx::NodeProto &GraphBuilder::addNode(const std::string &opType,
                                       const std::vector<std::string> &inputs,
                                       const std::string &name,
                                       unsigned numOutputs,
                                       const std::string &domain) {
  onnx::NodeProto *node = graph.add_node();
  std::string nodeName = uniqueName(scoped(name.empty() ? opType : name));
  node->set_name(nodeName);
  node->set_op_type(opType);
  if (!domain.empty())
    node->set_domain(domain);
  for (const std::string &input : inputs)
    node->add_input(input);
  for (unsigned i = 0; i < numOutputs; ++i)
    node->add_output(nodeName + "_output_" + std::to_string(i));
  return *node;
}

std::string GraphBuilder::op(const std::string &opType,
                             const std::vector<std::string> &inputs,
                             const std::string &name) {
  return addNode(opType, inputs, name).output(0);
}

static onnx::AttributeProto *newAttr(onnx::NodeProto &node,
                                     const std::string &name,
                                     onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto *attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(type);
  return attr;
}

void GraphBuilder::setAttrInt(onnx::NodeProto &node, const std::string &name,
                              int64_t value) {
  newAttr(node, name, onnx::AttributeProto::INT)->set_i(value);
}

void GraphBuilder::setAttrFloat(onnx::NodeProto &node, const std::string &name,
                                float value) {
  newAttr(node, name, onnx::AttributeProto::FLOAT)->set_f(value);
}

void GraphBuilder::setAttrInts(onnx::NodeProto &node, const std::string &name,
                               const std::vector<int64_t> &values) {
  onnx::AttributeProto *attr = newAttr(node, name, onnx::AttributeProto::INTS);
  for (int64_t v : values)
    attr->add_ints(v);
}

void GraphBuilder::setAttrString(onnx::NodeProto &node, const std::string &name,
                                 const std::string &value) {
  newAttr(node, name, onnx::AttributeProto::STRING)->set_s(value);
}

void GraphBuilder::setAttrTensor(onnx::NodeProto &node, const std::string &name,
                                 const onnx::TensorProto &value) {
  *newAttr(node, name, onnx::AttributeProto::TENSOR)->mutable_t() = value;
}

std::string GraphBuilder::constTensor(const std::string &name,
                                      onnx::TensorProto tensor) {
  onnx::NodeProto &node = addNode("Constant", {}, name);
  tensor.set_name(node.output(0));
  setAttrTensor(node, "value", tensor);
  return node.output(0);
}

std::string GraphBuilder::constInts(const std::string &name,
                                    const std::vector<int64_t> &values) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values)
    t.add_int64_data(v);
  return constTensor(name, std::move(t));
}

std::string GraphBuilder::constIntScalar(const std::string &name,
                                         int64_t value) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_int64_data(value);
  return constTensor(name, std::move(t));
}

std::string GraphBuilder::constFloats(const std::string &name,
                                      const std::vector<float> &values) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (float v : values)
    t.add_float_data(v);
  return constTensor(name, std::move(t));
}

std::string GraphBuilder::constFloatScalar(const std::string &name,
                                           float value) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_float_data(value);
  return constTensor(name, std::move(t));
}

// Unsqueeze, Squeeze and Split moved axes/split from attributes to inputs in
// opset 13; ReduceMean did the same only in opset 18.
std::string GraphBuilder::unsqueeze(const std::string &x,
                                    const std::vector<int64_t> &axes,
                                    const std::string &name) {
  if (opset >= 13)
    return op("Unsqueeze", {x, constInts(name + "_axes", axes)}, name);
  onnx::NodeProto &node = addNode("Unsqueeze", {x}, name);
  setAttrInts(node, "axes", axes);
  return node.output(0);
}

std::string GraphBuilder::squeeze(const std::string &x,
                                  const std::vector<int64_t> &axes,
                                  const std::string &name) {
  if (opset >= 13)
    return op("Squeeze", {x, constInts(name + "_axes", axes)}, name);
  onnx::NodeProto &node = addNode("Squeeze", {x}, name);
  setAttrInts(node, "axes", axes);
  return node.output(0);
}

std::vector<std::string> GraphBuilder::split(const std::string &x, int64_t axis,
                                             const std::vector<int64_t> &sizes,
                                             const std::string &name) {
  std::vector<std::string> inputs = {x};
  if (opset >= 13)
    inputs.push_back(constInts(name + "_sizes", sizes));
  onnx::NodeProto &node =
      addNode("Split", inputs, name, static_cast<unsigned>(sizes.size()));
  setAttrInt(node, "axis", axis);
  if (opset < 13)
    setAttrInts(node, "split", sizes);
  return {node.output().begin(), node.output().end()};
}

std::string GraphBuilder::reduceMean(const std::string &x,
                                     const std::vector<int64_t> &axes,
                                     bool keepDims, const std::string &name) {
  onnx::NodeProto *node;
  if (opset >= 18) {
    node = &addNode("ReduceMean", {x, constInts(name + "_axes", axes)}, name);
  } else {
    node = &addNode("ReduceMean", {x}, name);
    setAttrInts(*node, "axes", axes);
  }
  setAttrInt(*node, "keepdims", keepDims ? 1 : 0);
  return node->output(0);
}

std::string GraphBuilder::addInitializer(const std::string &name,
                                         const std::vector<int64_t> &dims,
                                         const WeightFill &fill) {
  onnx::TensorProto *t = graph.add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  uint64_t count = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    count *= static_cast<uint64_t>(d);
  }
  uint64_t bytes = count * sizeof(float);

  if (!externalLocation.empty()) {
    // Offsets are what a packer writing the tensors in graph order would use,
    // so a later tool can materialize the file without renaming anything.
    externalOffset = (externalOffset + 63) / 64 * 64;
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto addEntry = [&](const char *key, const std::string &value) {
      onnx::StringStringEntryProto *e = t->add_external_data();
      e->set_key(key);
      e->set_value(value);
    };
    addEntry("location", externalLocation);
    addEntry("offset", std::to_string(externalOffset));
    addEntry("length", std::to_string(bytes));
    externalOffset += bytes;
    return name;
  }

  std::vector<float> data(count);
  WeightRng rng = WeightRng::forTensor(seed, name);
  fill(data.data(), data.size(), rng);
  // raw_data is little-endian by spec; every host we target is too.
  std::string *raw = t->mutable_raw_data();
  raw->resize(bytes);
  if (bytes)
    std::memcpy(&(*raw)[0], data.data(), bytes);
  return name;
}

std::string GraphBuilder::addUniform(const std::string &name,
                                     const std::vector<int64_t> &dims,
                                     double std) {
  float bound = static_cast<float>(std * std::sqrt(3.0));
  return addInitializer(name, dims,
                        [bound](float *data, size_t count, WeightRng &rng) {
                          for (size_t i = 0; i < count; ++i)
                            data[i] = rng.uniformSym(bound);
                        });
}

std::string GraphBuilder::addFilled(const std::string &name,
                                    const std::vector<int64_t> &dims,
                                    float value) {
  return addInitializer(name, dims,
                        [value](float *data, size_t count, WeightRng &) {
                          for (size_t i = 0; i < count; ++i)
                            data[i] = value;
                        });
}

std::string GraphBuilder::rmsNorm(const std::string &x,
                                  const std::string &weight, float eps) {
  std::string square = op("Mul", {x, x}, "Square");
  std::string meanSquare = reduceMean(square, {-1}, /*keepDims=*/true);
  std::string variance =
      op("Add", {meanSquare, constFloatScalar("eps", eps)}, "AddEps");
  std::string rms = op("Sqrt", {variance});
  std::string normed = op("Mul", {x, op("Reciprocal", {rms})}, "Normalize");
  return op("Mul", {normed, weight}, "Scale");
}

static void setValueInfo(onnx::ValueInfoProto *info, const std::string &name,
                         int32_t elemType, const std::vector<Dim> &dims) {
  info->set_name(name);
  onnx::TypeProto_Tensor *tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elemType);
  onnx::TensorShapeProto *shape = tensor->mutable_shape();
  for (const Dim &d : dims) {
    onnx::TensorShapeProto_Dimension *dim = shape->add_dim();
    if (d.param.empty())
      dim->set_dim_value(d.value);
    else
      dim->set_dim_param(d.param);
  }
}

void GraphBuilder::addInput(const std::string &name, int32_t elemType,
                            const std::vector<Dim> &dims) {
  setValueInfo(graph.add_input(), name, elemType, dims);
}

void GraphBuilder::addOutput(const std::string &name, int32_t elemType,
                             const std::vector<Dim> &dims) {
  setValueInfo(graph.add_output(), name, elemType, dims);
}

} // namespace models
} // namespace longctx
