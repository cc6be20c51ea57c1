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

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <memory>

namespace longctx {
#define GEN_PASS_DEF_LCFUSESCANRECOMPUTE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// The order of one block's ops, kept up to date across this pass's moves.
/// Asking MLIR (isBeforeInBlock) after every move renumbers the whole block
/// each time: with thousands of shards that was most of a compile.
/// Positions are spaced so an insertion usually finds a gap.
class BlockOrder {
public:
  explicit BlockOrder(Block &block) : block_(block) { renumber(); }

  bool before(Operation *a, Operation *b) const { return pos_.lookup(a) < pos_.lookup(b); }
  /// `op` now sits right before `next`.
  void placedBefore(Operation *op, Operation *next) {
    Operation *prev = op->getPrevNode();
    const uint64_t lo = prev ? pos_.lookup(prev) : 0, hi = pos_.lookup(next);
    if (hi <= lo + 1)
      return renumber();
    pos_[op] = lo + (hi - lo) / 2;
  }
  void erased(Operation *op) { pos_.erase(op); }

private:
  void renumber() {
    pos_.clear();
    uint64_t p = 0;
    for (Operation &op : block_)
      pos_[&op] = p += kStride;
  }
  static constexpr uint64_t kStride = uint64_t(1) << 20;
  Block &block_;
  llvm::DenseMap<Operation *, uint64_t> pos_;
};

/// The ops of `grad`'s block in [from, grad) that grad reads, directly or
/// through others, in block order.
SmallVector<Operation *> sliceSince(Operation *grad, Operation *from, const BlockOrder &order) {
  llvm::SmallPtrSet<Operation *, 32> inSlice;
  SmallVector<Operation *> worklist{grad};
  while (!worklist.empty()) {
    Operation *current = worklist.pop_back_val();
    for (Value operand : current->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def || def->getBlock() != grad->getBlock() || order.before(def, from))
        continue;
      if (inSlice.insert(def).second)
        worklist.push_back(def);
    }
  }
  SmallVector<Operation *> slice(inSlice.begin(), inSlice.end());
  llvm::sort(slice, [&](Operation *a, Operation *b) { return order.before(a, b); });
  return slice;
}

/// Replaces `grad` by a copy that also returns y, for `scan`'s readers. The
/// copy goes before y's first reader, with what it reads from after there
/// moved up too (in order; none of it reads the scan, or it could not move);
/// everything else keeps its place, so the schedule barely changes.
template <typename GradOp>
void fuse(Operation *scan, GradOp grad, ArrayRef<Operation *> slice, Operation *firstReader,
          BlockOrder &order) {
  for (Operation *op : slice) {
    op->moveBefore(firstReader);
    order.placedBefore(op, firstReader);
  }
  NamedAttrList attrs(grad->getAttrDictionary());
  attrs.set(GradOp::getWithOutputAttrName(grad->getName()), UnitAttr::get(grad.getContext()));
  OpBuilder b(firstReader);
  Operation *fused = b.create<GradOp>(grad.getLoc(), grad->getOperands(), attrs.getAttrs());
  order.placedBefore(fused, firstReader);
  for (unsigned i = 0; i < grad->getNumResults(); ++i)
    grad->getResult(i).replaceAllUsesWith(fused->getResult(i));
  scan->getResult(0).replaceAllUsesWith(fused->getResults().back());
  order.erased(grad);
  grad.erase();
  if (scan->use_empty()) {
    order.erased(scan);
    scan->erase();
  }
}

/// The scan's operands the gradient reads too: u, delta, A, B, C (and h0).
bool sameInputs(ValueRange scanOperands, ValueRange gradInputs) {
  return llvm::equal(scanOperands, gradInputs);
}

struct FuseScanRecomputePass : impl::LcFuseScanRecomputeBase<FuseScanRecomputePass> {
  void runOnOperation() override {
    SmallVector<Operation *> grads;
    getOperation().walk([&](Operation *op) {
      if (isa<lc::SelectiveScanGradOp, lc::SelectiveScanStateGradOp>(op))
        grads.push_back(op);
    });
    llvm::DenseMap<Block *, std::unique_ptr<BlockOrder>> orders;
    for (Operation *grad : grads) {
      std::unique_ptr<BlockOrder> &order = orders[grad->getBlock()];
      if (!order)
        order = std::make_unique<BlockOrder>(*grad->getBlock());
      fuseOne(grad, *order);
    }
  }

  static void fuseOne(Operation *grad, BlockOrder &order) {
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
    if (!scan || scan->getResult(0).use_empty() || !order.before(scan, grad))
      return;
    Operation *firstReader = nullptr;
    for (Operation *user : scan->getResult(0).getUsers()) {
      Operation *inBlock = scan->getBlock()->findAncestorOpInBlock(*user);
      if (!firstReader || order.before(inBlock, firstReader))
        firstReader = inBlock;
    }
    if (order.before(firstReader, grad) || firstReader == grad) {
      // The gradient must come first: what it reads after firstReader
      // moves up, which is impossible if any of it reads the scan.
      SmallVector<Operation *> slice = sliceSince(grad, scan, order);
      if (llvm::is_contained(slice, scan))
        return;
      SmallVector<Operation *> moved;
      for (Operation *op : slice)
        if (!order.before(op, firstReader))
          moved.push_back(op);
      if (llvm::is_contained(moved, firstReader))
        return;
      if (auto g = dyn_cast<lc::SelectiveScanGradOp>(grad))
        fuse(scan, g, moved, firstReader, order);
      else
        fuse(scan, cast<lc::SelectiveScanStateGradOp>(grad), moved, firstReader, order);
      return;
    }
    // y is read only after the gradient: it can stay where it is.
    SmallVector<Operation *> none;
    if (auto g = dyn_cast<lc::SelectiveScanGradOp>(grad))
      fuse(scan, g, none, g, order);
    else
      fuse(scan, cast<lc::SelectiveScanStateGradOp>(grad), none, grad, order);
  }
};

} // namespace
} // namespace longctx
