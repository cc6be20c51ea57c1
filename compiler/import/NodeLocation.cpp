//===- NodeLocation.cpp - Which ONNX node an op came from ------------------===//
#include "compiler/import/NodeLocation.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;

namespace longctx {

std::string nodeName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (std::string n = nodeName(inner); !n.empty())
        return n;
  return {};
}

std::string describeNode(Location loc) {
  std::string name = nodeName(loc);
  return name.empty() ? "graph" : name;
}

} // namespace longctx
