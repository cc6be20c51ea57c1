//===- AppendLoss.cpp - lc-append-loss: logits -> next-token loss ----------===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace longctx {
#define GEN_PASS_DEF_LCAPPENDLOSS
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

std::string argName(func::FuncOp func, unsigned i) {
  auto name = func.getArgAttrOfType<StringAttr>(i, "lc.name");
  return name ? name.str() : "";
}

struct AppendLossPass : impl::LcAppendLossBase<AppendLossPass> {
  using LcAppendLossBase::LcAppendLossBase;

  void runOnOperation() override {
    auto func = getOperation().lookupSymbol<func::FuncOp>("main");
    if (!func) {
      getOperation().emitError("no func.func @main to train");
      return signalPassFailure();
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    std::optional<unsigned> logitsIndex;
    for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, "lc.name");
      if (name && name.getValue() == logitsName)
        logitsIndex = i;
    }
    if (!logitsIndex && ret.getNumOperands() > 0)
      logitsIndex = 0;
    if (!logitsIndex) {
      func.emitError("@main returns nothing to compute a loss from");
      return signalPassFailure();
    }
    Value logits = ret.getOperand(*logitsIndex);
    auto logitsType = cast<RankedTensorType>(logits.getType());
    if (logitsType.getRank() != 3 || !isa<FloatType>(logitsType.getElementType())) {
      func.emitError("the logits must be a float [batch, seq, vocab] tensor, got ")
          << logitsType;
      return signalPassFailure();
    }

    // Targets: a `labels` input if the graph has one, else the input ids.
    Value targets;
    for (unsigned i = 0; i < func.getNumArguments() && !targets; ++i)
      if (argName(func, i) == "labels")
        targets = func.getArgument(i);
    for (unsigned i = 0; i < func.getNumArguments() && !targets; ++i)
      if (argName(func, i) == "input_ids")
        targets = func.getArgument(i);
    if (!targets) {
      func.emitError("no `labels` or `input_ids` input to take next-token targets from");
      return signalPassFailure();
    }
    auto targetType = cast<RankedTensorType>(targets.getType());
    if (!targetType.getElementType().isSignlessInteger(64) &&
        !targetType.getElementType().isSignlessInteger(32)) {
      func.emitError("targets must be int64 or int32 token ids, got ") << targetType;
      return signalPassFailure();
    }
    if (targetType.getShape() != logitsType.getShape().drop_back()) {
      func.emitError("targets ") << targetType << " do not match the logits " << logitsType;
      return signalPassFailure();
    }

    OpBuilder b(ret);
    Location loc = NameLoc::get(b.getStringAttr("loss"), ret.getLoc());
    Value loss = b.create<lc::CrossEntropyOp>(loc, logits, targets, b.getI64IntegerAttr(1),
                                              b.getI64IntegerAttr(-100), b.getI64IntegerAttr(0));
    b.create<func::ReturnOp>(ret.getLoc(), loss);
    ret.erase();
    func.setType(FunctionType::get(&getContext(), func.getArgumentTypes(), {loss.getType()}));
    func.setAllResultAttrs(ArrayRef<DictionaryAttr>{
        b.getDictionaryAttr({b.getNamedAttr("lc.name", b.getStringAttr("loss"))})});
  }
};

} // namespace
} // namespace longctx
