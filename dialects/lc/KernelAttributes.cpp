//===- KernelAttributes.cpp - MLIR attributes -> runtime kernel attributes ===//
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"

using namespace mlir;

namespace longctx::lc {

std::string kernelName(Operation *op) {
  return op->getName().stripDialect().str();
}

AttrMap kernelAttributes(Operation *op) {
  AttrMap attrs;
  for (NamedAttribute named : op->getAttrs()) {
    std::string name = named.getName().str();
    if (name.rfind("lc.", 0) == 0) // the compiler's own annotations (plan, recompute)
      continue;
    Attribute value = named.getValue();
    if (auto b = dyn_cast<BoolAttr>(value))
      attrs.set(name, int64_t(b.getValue()));
    else if (auto i = dyn_cast<IntegerAttr>(value))
      attrs.set(name, i.getValue().getSExtValue());
    else if (auto f = dyn_cast<FloatAttr>(value))
      attrs.set(name, f.getValueAsDouble());
    else if (auto s = dyn_cast<StringAttr>(value))
      attrs.set(name, s.str());
    else if (auto a = dyn_cast<DenseI64ArrayAttr>(value))
      attrs.set(name, std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end()));
  }
  if (auto fused = dyn_cast<FusedElementwiseOp>(op))
    attrs.set("program", fused.getProgram());
  // Default-valued attributes that were never set are absent here; kernels
  // apply the same ONNX defaults as the op definitions.
  return attrs;
}

} // namespace longctx::lc
