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

#include "llvm/ADT/SmallPtrSet.h"

namespace longctx {
#define GEN_PASS_DEF_LCFUSESCANRECOMPUTE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// The ops of `grad`'s block in [from, grad) that grad reads, directly or
/// through others, in block order.
SmallVector<Operation *> sliceSince(Operation *grad, Operation *from) {
  llvm::SmallPtrSet<Operation *, 32> inSlice;
  SmallVector<Operation *> worklist{grad};
  while (!worklist.empty()) {
    Operation *current = worklist.pop_back_val();
    for (Value operand : current->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def || def->getBlock() != grad->getBlock() || def->isBeforeInBlock(from))
        continue;
      if (inSlice.insert(def).second)
        worklist.push_back(def);
    }
  }
  SmallVector<Operation *> slice(inSlice.begin(), inSlice.end());
  llvm::sort(slice, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return slice;
}

/// Replaces `grad` by a copy that also returns y, for `scan`'s readers. The
/// copy goes before y's first reader, with what it reads from after there
/// moved up too (in order; none of it reads the scan, or it could not move);
/// everything else keeps its place, so the schedule barely changes.
template <typename GradOp>
void fuse(Operation *scan, GradOp grad, ArrayRef<Operation *> slice, Operation *firstReader) {
  for (Operation *op : slice)
    op->moveBefore(firstReader);
  NamedAttrList attrs(grad->getAttrDictionary());
  attrs.set(GradOp::getWithOutputAttrName(grad->getName()), UnitAttr::get(grad.getContext()));
  OpBuilder b(firstReader);
  Operation *fused = b.create<GradOp>(grad.getLoc(), grad->getOperands(), attrs.getAttrs());
  for (unsigned i = 0; i < grad->getNumResults(); ++i)
    grad->getResult(i).replaceAllUsesWith(fused->getResult(i));
  scan->getResult(0).replaceAllUsesWith(fused->getResults().back());
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
      if (!scan || scan->getResult(0).use_empty() || !scan->isBeforeInBlock(grad))
        return;
      Operation *firstReader = nullptr;
      for (Operation *user : scan->getResult(0).getUsers()) {
        Operation *inBlock = scan->getBlock()->findAncestorOpInBlock(*user);
        if (!firstReader || inBlock->isBeforeInBlock(firstReader))
          firstReader = inBlock;
      }
      if (firstReader->isBeforeInBlock(grad) || firstReader == grad) {
        // The gradient must come first: what it reads after firstReader
        // moves up, which is impossible if any of it reads the scan.
        SmallVector<Operation *> slice = sliceSince(grad, scan);
        if (llvm::is_contained(slice, scan))
          return;
        SmallVector<Operation *> moved;
        for (Operation *op : slice)
          if (!op->isBeforeInBlock(firstReader))
            moved.push_back(op);
        if (llvm::is_contained(moved, firstReader))
          return;
        if (auto g = dyn_cast<lc::SelectiveScanGradOp>(grad))
          fuse(scan, g, moved, firstReader);
        else
          fuse(scan, cast<lc::SelectiveScanStateGradOp>(grad), moved, firstReader);
        return;
      }
      // y is read only after the gradient: it can stay where it is.
      SmallVector<Operation *> none;
      if (auto g = dyn_cast<lc::SelectiveScanGradOp>(grad))
        fuse(scan, g, none, g);
      else
        fuse(scan, cast<lc::SelectiveScanStateGradOp>(grad), none, grad);
    });
  }
};

} // namespace
} // namespace longctx
