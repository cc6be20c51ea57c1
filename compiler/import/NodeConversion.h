//===- NodeConversion.h - What an ONNX node converter sees ------*- C++ -*-===//
//
// Private to the importer: the driver (OnnxImporter.cpp) walks the graph and
// hands each node to its converter (OnnxOpConverters.cpp) through this
// interface.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "compiler/onnx/OnnxModel.h"
#include "dialects/lc/LcOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace longctx::onnx_import {

class NodeContext {
public:
  NodeContext(mlir::OpBuilder &builder, const Node &node, mlir::Location loc, int64_t opset,
              std::vector<mlir::Value> inputs)
      : builder(builder), node(node), loc(loc), opset(opset), inputs_(std::move(inputs)) {}

  mlir::OpBuilder &builder;
  const Node &node;
  mlir::Location loc;
  int64_t opset; // of the node's domain

  size_t numInputs() const { return inputs_.size(); }
  bool hasInput(size_t i) const { return i < inputs_.size() && inputs_[i]; }
  mlir::Value input(size_t i) const { return hasInput(i) ? inputs_[i] : mlir::Value(); }
  mlir::RankedTensorType inputType(size_t i) const {
    return mlir::cast<mlir::RankedTensorType>(input(i).getType());
  }
  /// Inputs beyond those present are an error reported by `requireInputs`.
  mlir::LogicalResult requireInputs(size_t min, size_t max = SIZE_MAX);

  /// The integer values of constant input `i` (shapes, axes, starts, ...).
  mlir::FailureOr<llvm::SmallVector<int64_t>> constantInts(size_t i, llvm::StringRef what);
  /// The value of a constant single-element input `i`.
  mlir::FailureOr<double> constantScalar(size_t i, llvm::StringRef what);

  int64_t intAttr(llvm::StringRef name, int64_t fallback) const;
  double floatAttr(llvm::StringRef name, double fallback) const;
  std::optional<std::vector<int64_t>> intsAttr(llvm::StringRef name) const;
  const Attribute *attr(llvm::StringRef name) const { return node.attribute(name.str()); }

  /// Normalises a possibly negative axis for `rank`, or reports the error.
  mlir::FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank);

  mlir::LogicalResult error(const llvm::Twine &message) {
    mlir::emitError(loc, message);
    return mlir::failure();
  }

  /// Builds an op whose result type the op infers; on an inference error
  /// (reported at the node) returns failure instead of aborting.
  template <typename OpTy, typename... Args>
  mlir::FailureOr<mlir::Value> create(Args &&...args) {
    mlir::OperationState state(loc, OpTy::getOperationName());
    OpTy::build(builder, state, builder.getNoneType(), std::forward<Args>(args)...);
    llvm::SmallVector<mlir::Type, 1> types;
    if (mlir::failed(OpTy::inferReturnTypes(
            builder.getContext(), loc, state.operands,
            state.attributes.getDictionary(builder.getContext()), state.getRawProperties(),
            state.regions, types)))
      return mlir::failure();
    state.types.assign(types.begin(), types.end());
    return finish(builder.create(state));
  }

  /// Builds an op with an explicit result type, verified at once.
  template <typename OpTy, typename... Args>
  mlir::FailureOr<mlir::Value> createTyped(mlir::Type type, Args &&...args) {
    auto op = builder.create<OpTy>(loc, type, std::forward<Args>(args)...);
    return finish(op.getOperation());
  }

  mlir::Value constant(mlir::DenseElementsAttr value) {
    return builder.create<lc::ConstantOp>(loc, value.getType(), value);
  }
  /// Reshape unless the type already matches.
  mlir::FailureOr<mlir::Value> reshape(mlir::Value v, llvm::ArrayRef<int64_t> shape);

  void setOutput(size_t i, mlir::Value v) {
    if (outputs.size() <= i)
      outputs.resize(i + 1);
    outputs[i] = v;
  }
  bool outputUsed(size_t i) const {
    return i < node.outputs.size() && !node.outputs[i].empty();
  }

  std::vector<mlir::Value> outputs;

private:
  /// Verifies the new op, then folds it (constant operands, identities).
  mlir::FailureOr<mlir::Value> finish(mlir::Operation *op);
  std::vector<mlir::Value> inputs_;
};

using NodeConverter = std::function<mlir::LogicalResult(NodeContext &)>;

/// Converters by "domain::OpType" ("" domain for ONNX: "::MatMul").
const std::map<std::string, NodeConverter> &nodeConverters();

inline std::string converterKey(const std::string &domain, const std::string &opType) {
  return domain + "::" + opType;
}

/// The MLIR element type for an ONNX dtype.
mlir::Type elementTypeFor(mlir::MLIRContext *context, DType dtype);

/// A constant attribute from decoded tensor data.
mlir::DenseElementsAttr toElementsAttr(mlir::MLIRContext *context, const TensorData &data);

} // namespace longctx::onnx_import
