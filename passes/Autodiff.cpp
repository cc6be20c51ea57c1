//===- Autodiff.cpp - lc-autodiff: reverse-mode gradients of the loss ------===//
//
// Walks @main backwards from the loss, asking each op's GradientOpInterface
// for the cotangents of its operands and summing them where a value fans
// out. Only "active" values are differentiated: those a trainable parameter
// reaches (forward) and that reach the loss (backward, implicitly: only
// values with a cotangent are visited).
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "dialects/lc/VjpBuilder.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include "llvm/ADT/SetVector.h"

#include <map>
#include <set>

namespace longctx {
#define GEN_PASS_DEF_LCAUTODIFF
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

bool isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType());
}

struct AutodiffPass : impl::LcAutodiffBase<AutodiffPass> {
  using LcAutodiffBase::LcAutodiffBase;

  void runOnOperation() override;
};

void AutodiffPass::runOnOperation() {
  auto func = getOperation().lookupSymbol<func::FuncOp>("main");
  if (!func) {
    getOperation().emitError("no func.func @main to differentiate");
    return signalPassFailure();
  }
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() < 1 || !isFloatTensor(ret.getOperand(0)) ||
      cast<RankedTensorType>(ret.getOperand(0).getType()).getRank() != 0) {
    func.emitError("@main must return a scalar float loss first (run lc-append-loss)");
    return signalPassFailure();
  }
  Value loss = ret.getOperand(0);

  // Parameters by name, in first-use order; frozen names must exist.
  llvm::SetVector<StringRef> names;
  std::map<std::string, SmallVector<lc::ParamOp>> params;
  func.walk([&](lc::ParamOp p) {
    names.insert(p.getName());
    params[p.getName().str()].push_back(p);
  });
  std::set<std::string> frozen(freeze.begin(), freeze.end());
  bool ok = true;
  for (const std::string &f : frozen)
    if (!params.count(f)) {
      func.emitError("--freeze names '") << f << "', which is not a parameter of the model";
      ok = false;
    }
  if (!ok)
    return signalPassFailure();

  // Forward activity: values that depend on a trainable float parameter.
  llvm::DenseSet<Value> active;
  for (Operation &op : body) {
    if (auto p = dyn_cast<lc::ParamOp>(op)) {
      if (!frozen.count(p.getName().str()) && isFloatTensor(p.getResult()))
        active.insert(p.getResult());
      continue;
    }
    bool anyActive = llvm::any_of(op.getOperands(), [&](Value v) { return active.count(v); });
    if (anyActive)
      for (Value r : op.getResults())
        if (isFloatTensor(r))
          active.insert(r);
  }
  if (!active.count(loss)) {
    func.emitError("the loss does not depend on any trainable parameter: nothing to train");
    return signalPassFailure();
  }

  // Reverse sweep; backward ops go before the return.
  OpBuilder builder(ret);
  llvm::DenseMap<Value, Value> cotangents;
  auto accumulate = [&](Value v, Value g, Location loc) {
    auto [it, inserted] = cotangents.try_emplace(v, g);
    if (!inserted)
      it->second = builder.create<lc::AddOp>(loc, it->second, g);
  };
  {
    auto type = cast<RankedTensorType>(loss.getType());
    Value one = builder.create<lc::ConstantOp>(
        loss.getLoc(), type, DenseElementsAttr::get(type, builder.getFloatAttr(type.getElementType(), 1.0)));
    cotangents[loss] = one;
  }
  SmallVector<Operation *> forward;
  for (Operation &op : body)
    if (&op != ret.getOperation())
      forward.push_back(&op);
  // Values below an op without a rule: visited only to report every such op
  // in one run, not differentiated.
  llvm::DenseSet<Value> unreachable;
  bool missingRules = false;
  for (Operation *op : llvm::reverse(forward)) {
    if (isa<lc::ParamOp, lc::ConstantOp>(op))
      continue;
    SmallVector<Value> resultGrads;
    bool any = false, blocked = false;
    for (Value r : op->getResults()) {
      Value g = active.count(r) ? cotangents.lookup(r) : Value();
      resultGrads.push_back(g);
      any |= bool(g);
      blocked |= unreachable.count(r) != 0;
    }
    auto rule = dyn_cast<lc::GradientOpInterface>(op);
    if ((any || blocked) && !rule) {
      op->emitOpError("has no gradient rule, but lies between a parameter and the loss");
      missingRules = true;
    }
    if (!rule || (blocked && !any)) {
      if (any || blocked)
        for (Value operand : op->getOperands())
          if (active.count(operand))
            unreachable.insert(operand);
      continue;
    }
    if (!any)
      continue;
    // Null cotangents of unused results become zeros for rules that need all.
    for (unsigned i = 0; i < resultGrads.size(); ++i)
      if (!resultGrads[i]) {
        auto type = cast<RankedTensorType>(op->getResult(i).getType());
        resultGrads[i] = builder.create<lc::ConstantOp>(
            op->getLoc(), type,
            DenseElementsAttr::get(type, builder.getZeroAttr(type.getElementType())));
      }
    lc::VjpBuilder vjp(builder, op->getLoc());
    SmallVector<Value> operandGrads;
    if (failed(rule.buildVjp(vjp, resultGrads, operandGrads))) {
      ok = false;
      continue;
    }
    for (auto [operand, g] : llvm::zip(op->getOperands(), operandGrads))
      if (g && active.count(operand))
        accumulate(operand, g, op->getLoc());
  }
  if (missingRules || !ok)
    return signalPassFailure();

  // Loss first, then one gradient per trainable parameter that has one.
  SmallVector<Value> results{loss};
  SmallVector<DictionaryAttr> resultAttrs{
      builder.getDictionaryAttr({builder.getNamedAttr("lc.name", builder.getStringAttr("loss"))})};
  SmallVector<std::string> noPath;
  for (StringRef name : names) {
    if (frozen.count(name.str()))
      continue;
    Value total;
    for (lc::ParamOp p : params[name.str()])
      if (Value g = cotangents.lookup(p.getResult()))
        total = total ? builder.create<lc::AddOp>(p.getLoc(), total, g).getResult() : g;
    if (!total) {
      bool used = llvm::any_of(params[name.str()], [](lc::ParamOp p) { return !p->use_empty(); });
      if (used)
        noPath.push_back(name.str());
      continue;
    }
    results.push_back(total);
    resultAttrs.push_back(builder.getDictionaryAttr(
        {builder.getNamedAttr("lc.name", builder.getStringAttr("grad/" + name)),
         builder.getNamedAttr("lc.grad_of", builder.getStringAttr(name))}));
  }
  if (!noPath.empty()) {
    std::string list;
    for (const std::string &n : noPath)
      list += (list.empty() ? "'" : ", '") + n + "'";
    func.emitError("no differentiable path from parameter") << (noPath.size() > 1 ? "s " : " ")
        << list << " to the loss (freeze them with --freeze)";
    return signalPassFailure();
  }
  builder.create<func::ReturnOp>(ret.getLoc(), results);
  ret.erase();
  SmallVector<Type> types;
  for (Value v : results)
    types.push_back(v.getType());
  func.setType(FunctionType::get(&getContext(), func.getArgumentTypes(), types));
  func.setAllResultAttrs(resultAttrs);
}

} // namespace
} // namespace longctx
