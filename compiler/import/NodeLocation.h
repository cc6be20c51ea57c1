//===- NodeLocation.h - Which ONNX node an op came from ---------*- C++ -*-===//
#pragma once

#include "mlir/IR/Location.h"

#include <string>

namespace longctx {

/// The ONNX node (or initializer) name the importer attached to `loc`, or ""
/// when the location carries none.
std::string nodeName(mlir::Location loc);

/// nodeName, or "graph" when there is none: the `where` of `file:where: why`.
std::string describeNode(mlir::Location loc);

} // namespace longctx
