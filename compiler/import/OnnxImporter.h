//===- OnnxImporter.h - ONNX model -> `lc` dialect --------------*- C++ -*-===//
#pragma once

#include "compiler/import/WeightStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <map>
#include <string>
#include <vector>

namespace longctx::onnx_import {
struct Model;
}

namespace longctx {

struct ImportOptions {
  /// --shape NAME=1x4096: pins the dims of graph input NAME.
  std::map<std::string, std::vector<int64_t>> inputShapes;
};

/// Imports `model` into a module holding `func.func @main`: graph inputs are
/// arguments, float initializers `lc.param` ops (their data goes to
/// `weights`), and every node one or more `lc` ops with inferred static
/// shapes; shape subgraphs fold to constants as they are built. Returns null
/// after appending one `file:node: reason` line per problem to `errors`
/// (every unsupported op is listed at once).
mlir::OwningOpRef<mlir::ModuleOp> importOnnxModel(mlir::MLIRContext &context,
                                                  const onnx_import::Model &model,
                                                  const ImportOptions &options,
                                                  WeightStore &weights,
                                                  std::vector<std::string> &errors);

/// Parses "1x4096" (also "1,4096"); nullopt when malformed.
std::optional<std::vector<int64_t>> parseShapeSpec(const std::string &spec);

} // namespace longctx
