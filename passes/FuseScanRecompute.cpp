//===- FuseScanRecompute.cpp - lc-fuse-scan-recompute ---------------------===//
//
// The scan's gradient kernel recomputes every state to walk them backwards;
// y_t = <C_t, h_t> costs it one more dot product per step. A backward that
// also recomputes the forward scan only to read y (the gate's gradient
// needs it) does the scan's work twice; this pass lets the gradient return
// y instead.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/Analysis/TopologicalSortUtils.h"

#include "llvm/ADT/SmallPtrSet.h"

namespace longctx {
#define GEN_PASS_DEF_LCFUSESCANRECOMPUTE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// Whether `op` (in `scan`'s block, after it) reads, directly or through
/// other ops of the block, a result of `scan`.
bool dependsOn(Operation *op, Operation *scan) {
  SmallVector<Operation *> worklist{op};
  llvm::SmallPtrSet<Operation *, 32> seen;
  while (!worklist.empty()) {
    Operation *current = worklist.pop_back_val();
    for (Value operand : current->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def || def->getBlock() != scan->getBlock() || def->isBeforeInBlock(scan))
        continue;
      if (def == scan)
        return true;
      if (seen.insert(def).second)
        worklist.push_back(def);
    }
  }
  return false;
}

/// Replaces `grad` by a copy that also returns y, for `scan`'s readers.
template <typename GradOp>
void fuse(Operation *scan, GradOp grad) {
  OpBuilder b(grad);
  auto fused = cast<GradOp>(b.clone(*grad));
  fused.setWithOutput(true);
  SmallVector<Type> types;
  if (failed(fused.inferReturnTypes(fused->getContext(), fused.getLoc(), fused->getOperands(),
                                    fused->getAttrDictionary(), fused->getPropertiesStorage(),
                                    fused->getRegions(), types)))
    llvm_unreachable("adding the output cannot fail type inference");
  // Rebuild with the extra result (an op's result count is fixed).
  OperationState state(fused.getLoc(), fused->getName(), fused->getOperands(), types,
                       fused->getAttrs());
  Operation *withOutput = b.create(state);
  fused.erase();
  for (unsigned i = 0; i < grad->getNumResults(); ++i)
    grad->getResult(i).replaceAllUsesWith(withOutput->getResult(i));
  scan->getResult(0).replaceAllUsesWith(withOutput->getResults().back());
  grad.erase();
  if (scan->use_empty())
    scan->erase();
}

/// The scan's operands the gradient reads too: u, delta, A, B, C (and h0).
bool sameInputs(ValueRange scanOperands, ValueRange gradInputs) {
  return llvm::equal(scanOperands, gradInputs);
}

struct FuseScanRecomputePass : impl::LcFuseScanRecomputeBase<FuseScanRecomputePass> {
  void runOnOperation() override {
    llvm::SmallPtrSet<Block *, 4> changed;
    getOperation().walk([&](Operation *grad) {
      Operation *scan = nullptr;
      if (auto g = dyn_cast<lc::SelectiveScanGradOp>(grad); g && !g.getWithOutput()) {
        for (Operation *user : g.getU().getUsers())
          if (auto s = dyn_cast<lc::SelectiveScanOp>(user);
              s && s->getBlock() == g->getBlock() &&
              sameInputs(s->getOperands(), g->getOperands().drop_front(1)))
            scan = s;
      } else if (auto g = dyn_cast<lc::SelectiveScanStateGradOp>(grad); g && !g.getWithOutput()) {
        for (Operation *user : g.getU().getUsers())
          if (auto s = dyn_cast<lc::SelectiveScanStateOp>(user);
              s && s->getBlock() == g->getBlock() && s.getFinalState().use_empty() &&
              sameInputs(s->getOperands(), g->getOperands().drop_front(2)))
            scan = s;
      }
      if (!scan || scan->getResult(0).use_empty() || !scan->isBeforeInBlock(grad) ||
          dependsOn(grad, scan))
        return;
      changed.insert(grad->getBlock());
      if (auto g = dyn_cast<lc::SelectiveScanGradOp>(grad))
        fuse(scan, g);
      else
        fuse(scan, cast<lc::SelectiveScanStateGradOp>(grad));
    });
    // y's readers may precede the gradient: order the blocks by their uses.
    for (Block *block : changed)
      if (!sortTopologically(block))
        return signalPassFailure();
  }
};

} // namespace
} // namespace longctx
