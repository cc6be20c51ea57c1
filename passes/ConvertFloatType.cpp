//===- ConvertFloatType.cpp - lc-convert-float-type: f32 -> bf16/f16 --------===//
//
// Pure low-precision training (weights, activations, gradients, optimizer
// state in bf16, as in the Mini-Sequence Transformer paper's setup) for
// memory plans: every f32 tensor type in the module becomes the target type,
// constants are converted, and the ops' shape rules are unaffected.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace longctx {
#define GEN_PASS_DEF_LCCONVERTFLOATTYPE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

struct ConvertFloatTypePass : impl::LcConvertFloatTypeBase<ConvertFloatTypePass> {
  using LcConvertFloatTypeBase::LcConvertFloatTypeBase;

  void runOnOperation() override {
    Builder b(&getContext());
    FloatType target;
    if (to == "bf16")
      target = b.getBF16Type();
    else if (to == "f16")
      target = b.getF16Type();
    else if (to == "f32")
      return;
    else {
      getOperation().emitError("unknown float type '") << to << "' (bf16, f16 or f32)";
      return signalPassFailure();
    }
    auto convert = [&](Type type) -> Type {
      auto tensor = dyn_cast<RankedTensorType>(type);
      if (!tensor || !tensor.getElementType().isF32())
        return type;
      return RankedTensorType::get(tensor.getShape(), target);
    };
    getOperation().walk([&](Operation *op) {
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            arg.setType(convert(arg.getType()));
      for (OpResult result : op->getResults())
        result.setType(convert(result.getType()));
      if (auto constant = dyn_cast<lc::ConstantOp>(op)) {
        auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
        if (dense && dense.getElementType().isF32())
          constant.setValueAttr(dense.mapValues(target, [&](const APFloat &v) {
            APFloat converted = v;
            bool lost;
            converted.convert(target.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
            return converted.bitcastToAPInt();
          }));
      }
      if (auto func = dyn_cast<func::FuncOp>(op)) {
        SmallVector<Type> inputs, results;
        for (Type t : func.getArgumentTypes())
          inputs.push_back(convert(t));
        for (Type t : func.getResultTypes())
          results.push_back(convert(t));
        func.setType(FunctionType::get(&getContext(), inputs, results));
      }
    });
  }
};

} // namespace
} // namespace longctx
