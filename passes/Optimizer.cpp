//===- Optimizer.cpp - lc-optimizer: parameter updates after the backward --===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "llvm/ADT/DenseMap.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include "llvm/ADT/StringMap.h"

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
    if (inBackward && clipNorm > 0) {
      func.emitError("--clip-norm needs every gradient before the first update, so it cannot be "
                     "combined with --optimizer-in-backward");
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
      OpBuilder::InsertionGuard guard(b);
      if (inBackward) // must dominate updates moved into the backward
        b.setInsertionPointToStart(&func.getBody().front());
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
    // The last op that reads each parameter (updates must come after it).
    llvm::StringMap<Operation *> lastReader;
    Block &body = func.getBody().front();
    // Positions in the body as it is now: the updates below move, but the
    // ops they are placed after do not, so this order stays valid (asking
    // the block instead would renumber it after every move: O(ops) each).
    llvm::DenseMap<Operation *, int64_t> position;
    for (Operation &op : body) {
      position[&op] = int64_t(position.size());
      for (Value operand : op.getOperands())
        if (auto param = operand.getDefiningOp<lc::ParamOp>())
          lastReader[param.getName()] = &op;
    }
    for (auto &[name, g] : grads) {
      Operation *update;
      if (kind == "adamw")
        update = b.create<lc::AdamWUpdateOp>(loc, name, g, lr, step, scale,
                                             b.getF64FloatAttr(beta1), b.getF64FloatAttr(beta2),
                                             b.getF64FloatAttr(epsilon),
                                             b.getF64FloatAttr(weightDecay));
      else
        update = b.create<lc::SgdUpdateOp>(loc, name, g, lr, scale, b.getF64FloatAttr(momentum),
                                           b.getF64FloatAttr(weightDecay),
                                           b.getBoolAttr(nesterov));
      if (!inBackward)
        continue;
      // As early as possible: after the gradient and the parameter's last reader.
      Operation *after = g.getDefiningOp();
      if (Operation *reader = lastReader.lookup(name.getValue()))
        if (!after || position.lookup(after) < position.lookup(reader))
          after = reader;
      if (after && after->getBlock() == &body && after != ret.getOperation())
        update->moveAfter(after);
    }
    if (inBackward) {
      // Only the loss remains a result: each gradient dies after its update.
      b.setInsertionPoint(ret);
      Value loss = ret.getOperand(0);
      DictionaryAttr lossAttrs = func.getResultAttrDict(0);
      b.create<func::ReturnOp>(ret.getLoc(), loss);
      ret.erase();
      func.setType(FunctionType::get(&getContext(), func.getArgumentTypes(), {loss.getType()}));
      func.setAllResultAttrs(ArrayRef<DictionaryAttr>{lossAttrs});
    }
  }
};

} // namespace
} // namespace longctx
