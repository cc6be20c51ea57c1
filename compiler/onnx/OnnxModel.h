//===- OnnxModel.h - An ONNX model as plain C++ data -----------------------===//
//
// The loader turns a ModelProto (binary or JSON) into these structs, so code
// built without exceptions (everything MLIR) never sees protobuf, ONNX or
// JSON types. Tensor payloads are decoded to little-endian bytes of `dtype`
// and checked against the declared shape.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/DType.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace longctx::onnx_import {

/// A dimension of a declared shape: a number, or a symbol such as "seq".
struct Dim {
  int64_t value = -1; // -1 when symbolic or unknown
  std::string symbol;
};

struct ValueInfo {
  std::string name;
  std::optional<DType> dtype; // nullopt: not declared
  std::optional<std::vector<Dim>> dims;
};

struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  /// Decoded payload; empty when `dataAvailable` is false.
  std::shared_ptr<Tensor> payload;
  /// False when the tensor lives in an external file that does not exist
  /// (weights written with --no-weights): shapes only.
  bool dataAvailable = true;
  std::string externalFile; // for error messages
};

struct Attribute {
  enum class Kind { Float, Int, String, Tensor, Floats, Ints, Strings, Other };
  std::string name;
  Kind kind = Kind::Other;
  double f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<double> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::shared_ptr<TensorData> t;
};

struct Node {
  std::string name;
  std::string opType;
  std::string domain; // "" for the default ONNX domain
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;
  bool hasSubgraph = false; // If/Loop/Scan bodies are not supported

  const Attribute *attribute(const std::string &attrName) const {
    for (const Attribute &a : attributes)
      if (a.name == attrName)
        return &a;
    return nullptr;
  }
};

struct Model {
  std::string path;
  int64_t irVersion = 0;
  std::map<std::string, int64_t> opsets; // domain -> version
  std::string producer;
  std::vector<ValueInfo> inputs;  // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> valueInfos;
  std::vector<TensorData> initializers;
  std::vector<Node> nodes;
  /// With LoadOptions::keepSerialized: the ModelProto as binary protobuf
  /// (also for .json inputs) without the float initializers' data, which
  /// the parameters already hold; the artifact keeps it for --export-onnx.
  std::string serialized;

  int64_t opsetFor(const std::string &domain) const {
    auto it = opsets.find(domain == "ai.onnx" ? "" : domain);
    return it == opsets.end() ? 0 : it->second;
  }
};

struct LoadOptions {
  /// Accept initializers whose external data file is missing (plan-only).
  bool allowMissingWeights = false;
  /// Fill Model::serialized (training artifacts keep it for --export-onnx).
  bool keepSerialized = false;
};

/// Loads `path` (`.onnx` binary protobuf or `.json` protobuf JSON mapping).
/// On failure returns nullopt and appends one message per problem to
/// `errors`, each starting with the file name.
std::optional<Model> loadModel(const std::string &path, const LoadOptions &options,
                               std::vector<std::string> &errors);

} // namespace longctx::onnx_import
