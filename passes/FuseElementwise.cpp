//===- FuseElementwise.cpp - lc-fuse-elementwise --------------------------===//
//
// A chain such as sigmoid(x) * x * dy writes and reads two full-size
// intermediates between three kernels; fused, the elements make one trip.
// The root of a group is an elementwise op; its operands join the group when
// they are elementwise ops of the same shape read by nothing else, so every
// value inside a group has exactly one reader, inside it.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/SetVector.h"

namespace longctx {
#define GEN_PASS_DEF_LCFUSEELEMENTWISE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// Whether `op` can join a group producing `shape`.
bool fusible(Operation *op, ArrayRef<int64_t> shape) {
  if (!op || !lc::FusedElementwiseOp::canFuse(op) || op->hasAttr("lc.recompute"))
    return false;
  auto result = cast<RankedTensorType>(op->getResult(0).getType());
  if (result.getShape() != shape)
    return false;
  return llvm::all_of(op->getOperandTypes(), [&](Type t) {
    auto type = cast<RankedTensorType>(t);
    return type.getRank() == 0 || type.getShape() == shape;
  });
}

/// The group rooted at `root`, in block order.
SmallVector<Operation *> growGroup(Operation *root) {
  auto shape = cast<RankedTensorType>(root->getResult(0).getType()).getShape();
  llvm::SetVector<Operation *> group;
  SmallVector<Operation *> worklist{root};
  group.insert(root);
  while (!worklist.empty()) {
    Operation *op = worklist.pop_back_val();
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (def && def->getBlock() == root->getBlock() && operand.hasOneUse() &&
          fusible(def, shape) && group.insert(def))
        worklist.push_back(def);
    }
  }
  SmallVector<Operation *> ordered(group.begin(), group.end());
  llvm::sort(ordered, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return ordered;
}

/// Replaces the group (root last) by one lc.fused_elementwise at the root.
void fuse(ArrayRef<Operation *> group) {
  Operation *root = group.back();
  llvm::SmallPtrSet<Operation *, 8> members(group.begin(), group.end());
  llvm::SetVector<Value> inputs;
  for (Operation *op : group)
    for (Value operand : op->getOperands())
      if (!members.contains(operand.getDefiningOp()))
        inputs.insert(operand);
  OpBuilder b(root);
  auto fused = b.create<lc::FusedElementwiseOp>(root->getLoc(), root->getResult(0).getType(),
                                                inputs.getArrayRef());
  Block *body = new Block();
  fused.getBody().push_back(body);
  IRMapping mapping;
  for (Value input : inputs)
    mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
  OpBuilder inner = OpBuilder::atBlockEnd(body);
  for (Operation *op : group)
    inner.clone(*op, mapping);
  inner.create<lc::YieldOp>(root->getLoc(), ValueRange{mapping.lookup(root->getResult(0))});
  root->getResult(0).replaceAllUsesWith(fused.getOutput());
  for (Operation *op : llvm::reverse(group))
    op->erase();
}

struct FuseElementwisePass : impl::LcFuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    // Roots: fusible ops whose result is not itself absorbed by a reader,
    // visited last to first so a root's group is complete when it fuses.
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (op->getParentOp() == getOperation().getOperation())
        ops.push_back(op);
    });
    llvm::SmallPtrSet<Operation *, 32> fused;
    for (Operation *op : llvm::reverse(ops)) {
      if (fused.contains(op))
        continue;
      auto shape = op->getNumResults() == 1
                       ? dyn_cast<RankedTensorType>(op->getResult(0).getType())
                       : RankedTensorType();
      if (!shape || !fusible(op, shape.getShape()))
        continue;
      SmallVector<Operation *> group = growGroup(op);
      if (group.size() < 2)
        continue;
      fused.insert(group.begin(), group.end());
      fuse(group);
    }
  }
};

} // namespace
} // namespace longctx
