//===- GraphBuilder.h - Small helper for emitting ONNX graphs ---*- C++ -*-===//
//
// The model generators write graphs node by node. This helper keeps the
// boilerplate (unique names, Constant nodes, opset-dependent operand forms,
// initializers with or without data) in one place so the model files read like
// the architecture they describe.
//
// Code here is built with -fno-exceptions, so nothing throws.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <onnx/onnx_pb.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

namespace longctx {
namespace models {

/// splitmix64 (Steele, Lea & Flood 2014). Chosen because it is tiny, has no
/// hidden state beyond 64 bits and is trivial to reproduce in Python, so tests
/// can regenerate any weight from (seed, tensor name) without this binary.
class WeightRng {
public:
  explicit WeightRng(uint64_t seed) : state(seed) {}

  /// The generator for one tensor: the stream depends only on the seed and the
  /// tensor's name, never on emission order, so adding a tensor elsewhere does
  /// not change existing weights. Seed = splitmix64(seed ^ fnv1a64(name)).
  static WeightRng forTensor(uint64_t seed, const std::string &name);

  uint64_t next();
  /// Uniform in [0, 1) from the top 53 bits of next().
  double uniform();
  /// Uniform in [-bound, bound).
  float uniformSym(float bound) {
    return static_cast<float>((2.0 * uniform() - 1.0) * bound);
  }

private:
  uint64_t state;
};

/// Fills `count` floats of one initializer; only called when data is emitted.
using WeightFill = std::function<void(float *data, size_t count, WeightRng &)>;

/// One dimension of a graph input/output: a fixed size or a symbolic name.
struct Dim {
  Dim(int64_t value) : value(value) {}
  Dim(const char *param) : param(param) {}
  int64_t value = -1;
  std::string param;
};

/// Fills the model-level fields: IR version matching `opset`, the default
/// domain import and the import of `customDomain` at `customVersion`.
void initModel(onnx::ModelProto &model, int64_t opset,
               const std::string &customDomain, int64_t customVersion);

class GraphBuilder {
public:
  /// `opset` is the default-domain version; it selects between the attribute
  /// and the input form of axes/split operands.
  GraphBuilder(onnx::GraphProto &graph, int64_t opset, uint64_t seed);

  int64_t getOpset() const { return opset; }

  /// Node names are "<scope>/<name>", mirroring the module paths the PyTorch
  /// exporter produces, so graphs dumped by either tool read the same.
  class Scope {
  public:
    Scope(GraphBuilder &builder, const std::string &name);
    ~Scope();
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;

  private:
    GraphBuilder &builder;
  };

  /// Adds a node named "<scope>/<name>" (name defaults to the op type, with a
  /// "_N" suffix when taken). Outputs are "<node name>_output_<i>".
  onnx::NodeProto &addNode(const std::string &opType,
                           const std::vector<std::string> &inputs,
                           const std::string &name = "",
                           unsigned numOutputs = 1,
                           const std::string &domain = "");
  /// addNode for the common single-output case; returns the output name.
  std::string op(const std::string &opType,
                 const std::vector<std::string> &inputs,
                 const std::string &name = "");

  static void setAttrInt(onnx::NodeProto &node, const std::string &name,
                         int64_t value);
  static void setAttrFloat(onnx::NodeProto &node, const std::string &name,
                           float value);
  static void setAttrInts(onnx::NodeProto &node, const std::string &name,
                          const std::vector<int64_t> &values);
  static void setAttrString(onnx::NodeProto &node, const std::string &name,
                            const std::string &value);
  static void setAttrTensor(onnx::NodeProto &node, const std::string &name,
                            const onnx::TensorProto &value);

  /// Constant nodes (not initializers): they are part of the graph structure,
  /// are never external, and keep --no-weights files self-describing.
  std::string constInts(const std::string &name,
                        const std::vector<int64_t> &values);
  std::string constIntScalar(const std::string &name, int64_t value);
  std::string constFloats(const std::string &name,
                          const std::vector<float> &values);
  std::string constFloatScalar(const std::string &name, float value);

  /// Ops whose operand form changed across opsets.
  std::string unsqueeze(const std::string &x, const std::vector<int64_t> &axes,
                        const std::string &name = "Unsqueeze");
  std::string squeeze(const std::string &x, const std::vector<int64_t> &axes,
                      const std::string &name = "Squeeze");
  std::vector<std::string> split(const std::string &x, int64_t axis,
                                 const std::vector<int64_t> &sizes,
                                 const std::string &name = "Split");
  std::string reduceMean(const std::string &x, const std::vector<int64_t> &axes,
                         bool keepDims, const std::string &name = "ReduceMean");

  /// When set, initializers carry no data: they reference `location` (a file
  /// that is not written) with offsets as if packed back to back, each tensor
  /// 64-byte aligned.
  void setExternalDataLocation(const std::string &location) {
    externalLocation = location;
  }

  /// Adds a float32 initializer; `fill` runs only when data is embedded.
  std::string addInitializer(const std::string &name,
                             const std::vector<int64_t> &dims,
                             const WeightFill &fill);
  /// Uniform in [-sqrt(3)*std, sqrt(3)*std), i.e. standard deviation `std`.
  std::string addUniform(const std::string &name,
                         const std::vector<int64_t> &dims, double std);
  std::string addFilled(const std::string &name,
                        const std::vector<int64_t> &dims, float value);

  /// RMSNorm spelled out in primitive ops (every ONNX opset has them):
  /// x * Reciprocal(Sqrt(ReduceMean(x * x, -1) + eps)) * weight.
  std::string rmsNorm(const std::string &x, const std::string &weight,
                      float eps);

  void addInput(const std::string &name, int32_t elemType,
                const std::vector<Dim> &dims);
  void addOutput(const std::string &name, int32_t elemType,
                 const std::vector<Dim> &dims);

private:
  std::string uniqueName(const std::string &base);
  std::string scoped(const std::string &name) const;
  std::string constTensor(const std::string &name, onnx::TensorProto tensor);

  onnx::GraphProto &graph;
  int64_t opset;
  uint64_t seed;
  std::vector<std::string> scopes;
  std::unordered_set<std::string> usedNames;
  std::string externalLocation;
  uint64_t externalOffset = 0;
};

} // namespace models
} // namespace longctx
