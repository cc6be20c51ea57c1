//===- KernelAttributes.cpp - MLIR attributes -> runtime kernel attributes ===//
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"
#include "runtime/cuda/KernelWorkspace.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
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

std::optional<DType> runtimeDType(Type type) {
  if (type.isF32()) return DType::F32;
  if (type.isF64()) return DType::F64;
  if (type.isF16()) return DType::F16;
  if (type.isBF16()) return DType::BF16;
  if (type.isSignlessInteger(64)) return DType::I64;
  if (type.isSignlessInteger(32)) return DType::I32;
  if (type.isSignlessInteger(8)) return DType::I8;
  if (type.isSignlessInteger(1)) return DType::Bool;
  return std::nullopt;
}

bool compiledForCuda(Operation *op) {
  auto module = isa<ModuleOp>(op) ? cast<ModuleOp>(op) : op->getParentOfType<ModuleOp>();
  auto device = module ? module->getAttrOfType<StringAttr>(kDeviceAttr) : StringAttr();
  return device && device.getValue() == "cuda";
}

uint64_t cudaWorkspaceBytesOf(Operation *op) {
  // Shapes only: the sizing reads no data.
  auto refs = [](ValueRange values, std::vector<TensorRef> &out) {
    for (Value v : values) {
      auto type = dyn_cast<RankedTensorType>(v.getType());
      std::optional<DType> dtype = type ? runtimeDType(type.getElementType()) : std::nullopt;
      if (!type || !type.hasStaticShape() || !dtype)
        return false;
      out.push_back({*dtype, Shape(type.getShape().begin(), type.getShape().end()), nullptr});
    }
    return true;
  };
  std::vector<TensorRef> inputs, outputs;
  if (!refs(op->getOperands(), inputs) || !refs(op->getResults(), outputs))
    return 0;
  return cuda::cudaWorkspaceBytes(kernelName(op), inputs, outputs, kernelAttributes(op));
}

} // namespace longctx::lc
