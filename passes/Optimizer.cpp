//===- Optimizer.cpp - lc-optimizer: parameter updates after the backward --===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace longctx {
#define GEN_PASS_DEF_LCOPTIMIZER
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

struct OptimizerPass : impl::LcOptimizerBase<OptimizerPass> {
  using LcOptimizerBase::LcOptimizerBase;

  void runOnOperation() override {
    auto func = getOperation().lookupSymbol<func::FuncOp>("main");
    if (!func) {
      getOperation().emitError("no func.func @main to add an optimizer to");
      return signalPassFailure();
    }
    if (kind != "adamw" && kind != "sgd") {
      func.emitError("unknown optimizer '") << kind << "' (adamw or sgd)";
      return signalPassFailure();
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    SmallVector<std::pair<StringAttr, Value>> grads;
    for (unsigned i = 0; i < ret.getNumOperands(); ++i)
      if (auto of = func.getResultAttrOfType<StringAttr>(i, "lc.grad_of"))
        grads.push_back({of, ret.getOperand(i)});
    if (grads.empty()) {
      func.emitError("@main returns no gradients (run lc-autodiff first)");
      return signalPassFailure();
    }
    OpBuilder b(ret);
    Location loc = NameLoc::get(b.getStringAttr("optimizer"), ret.getLoc());
    Type element = cast<RankedTensorType>(grads.front().second.getType()).getElementType();
    auto scalarType = RankedTensorType::get({}, element);

    // The schedule lives in the runtime: lr and step are per-step inputs.
    auto addScalarInput = [&](StringRef name) {
      unsigned index = func.getNumArguments();
      (void)func.insertArgument(index, scalarType,
                                b.getDictionaryAttr({b.getNamedAttr("lc.name", b.getStringAttr(name))}),
                                loc);
      return func.getArgument(index);
    };
    Value lr = addScalarInput("lr");
    Value step = kind == "adamw" ? addScalarInput("step") : Value();

    auto scalar = [&](double v) -> Value {
      return b.create<lc::ConstantOp>(loc, scalarType,
                                      DenseElementsAttr::get(scalarType, b.getFloatAttr(element, v)));
    };
    Value scale = scalar(1.0);
    if (clipNorm > 0) {
      // scale = min(1, clip / (||g|| + 1e-6)) over all gradients at once.
      Value sumSquares;
      for (auto &[name, g] : grads) {
        auto type = cast<RankedTensorType>(g.getType());
        Value sq = b.create<lc::MulOp>(loc, g, g);
        SmallVector<int64_t> all = llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
        Value s = type.getRank() ? b.create<lc::ReduceSumOp>(loc, sq, b.getDenseI64ArrayAttr(all),
                                                             b.getBoolAttr(false))
                                       .getResult()
                                 : sq;
        sumSquares = sumSquares ? b.create<lc::AddOp>(loc, sumSquares, s).getResult() : s;
      }
      Value norm = b.create<lc::SqrtOp>(loc, scalarType, sumSquares);
      Value ratio = b.create<lc::DivOp>(loc, scalar(clipNorm), b.create<lc::AddOp>(loc, norm, scalar(1e-6)));
      scale = b.create<lc::MinOp>(loc, ratio, scalar(1.0));
    }
    for (auto &[name, g] : grads) {
      if (kind == "adamw")
        b.create<lc::AdamWUpdateOp>(loc, name, g, lr, step, scale, b.getF64FloatAttr(beta1),
                                    b.getF64FloatAttr(beta2), b.getF64FloatAttr(epsilon),
                                    b.getF64FloatAttr(weightDecay));
      else
        b.create<lc::SgdUpdateOp>(loc, name, g, lr, scale, b.getF64FloatAttr(momentum),
                                  b.getF64FloatAttr(weightDecay), b.getBoolAttr(nesterov));
    }
  }
};

} // namespace
} // namespace longctx
