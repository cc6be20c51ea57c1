//===- CheckKernels.cpp - lc-check-kernels: can every op run? --------------===//
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"
#include "runtime/cpu/Kernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace longctx {
#define GEN_PASS_DEF_LCCHECKKERNELS
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

bool runtimeCanHold(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return false;
  Type e = tensor.getElementType();
  return e.isF32() || e.isF64() || e.isF16() || e.isBF16() || e.isSignlessInteger(64) ||
         e.isSignlessInteger(32) || e.isSignlessInteger(8) || e.isSignlessInteger(1);
}

struct CheckKernelsPass : impl::LcCheckKernelsBase<CheckKernelsPass> {
  void runOnOperation() override {
    bool ok = true;
    getOperation().walk([&](Operation *op) {
      if (isa<ModuleOp, func::FuncOp, func::ReturnOp, lc::ParamOp, lc::ConstantOp>(op))
        return;
      // A fused body runs inside its op's kernel.
      if (op->getParentOfType<lc::FusedElementwiseOp>())
        return;
      if (!isa_and_nonnull<lc::LcDialect>(op->getDialect())) {
        op->emitOpError("is not an `lc` op and cannot run");
        ok = false;
        return;
      }
      if (!lookupCpuKernel(lc::kernelName(op))) {
        op->emitOpError("has no CPU kernel '") << lc::kernelName(op) << "'";
        ok = false;
      }
      for (Value v : op->getResults())
        if (!runtimeCanHold(v.getType())) {
          op->emitOpError("result type ") << v.getType() << " cannot be held by the runtime";
          ok = false;
        }
    });
    if (!ok)
      signalPassFailure();
  }
};

} // namespace
} // namespace longctx
