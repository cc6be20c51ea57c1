//===- AdjointStatePassing.cpp - lc-adjoint-state-passing -----------------===//
//
// A sharded SSM layer's backward (the reverse mini_sequence autodiff made of
// lc-adjoint-shard's loop) hands the state's cotangent from shard to shard.
// What a shard hands on is `carry + decay * incoming`, with carry and decay
// its own (lc.selective_scan_carry), so the sweep splits into independent
// shards computing those, K small combine steps, and independent shard
// backwards from their incoming cotangents (Mamba-2's state passing, run in
// reverse).
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "dialects/lc/ParallelLanes.h"
#include "passes/AdjointAttributes.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/SetVector.h"

namespace longctx {
#define GEN_PASS_DEF_LCADJOINTSTATEPASSING
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// The ops of `body` that `roots` are computed from.
llvm::SetVector<Operation *> backwardSlice(Block &body, ArrayRef<Value> roots) {
  llvm::SetVector<Operation *> slice;
  SmallVector<Value> worklist(roots);
  while (!worklist.empty()) {
    Operation *def = worklist.pop_back_val().getDefiningOp();
    if (!def || def->getBlock() != &body || !slice.insert(def))
      continue;
    worklist.append(def->operand_begin(), def->operand_end());
  }
  return slice;
}

LogicalResult passStates(lc::MiniSequenceOp loop, int64_t workers) {
  if (loop.getCarried() != 1)
    return loop.emitOpError("lc-adjoint-state-passing: expects one carried state cotangent, got ")
           << loop.getCarried() << " carried values";
  const unsigned numInputs = loop.getNumChunkInputs(), numResults = loop.getNumChunkResults();
  Block &body = loop.getBody().front();
  BlockArgument incoming = body.getArgument(numInputs);
  auto yield = cast<lc::YieldOp>(body.getTerminator());
  auto grad = incoming.hasOneUse()
                  ? dyn_cast<lc::SelectiveScanStateGradOp>(*incoming.getUsers().begin())
                  : lc::SelectiveScanStateGradOp();
  if (!grad || grad.getDfinalState() != incoming || grad.getTruncate() ||
      yield.getValues()[numResults] != grad.getDh0())
    return loop.emitOpError("lc-adjoint-state-passing: the carried cotangent must pass through "
                            "exactly one untruncated selective_scan_state_grad");
  if (!loop.getResult(numResults + 1).use_empty())
    return loop.emitOpError("lc-adjoint-state-passing: the history of the carried cotangent is "
                            "read, which independent shards do not produce");

  OpBuilder b(loop);
  Location loc = loop.getLoc();
  auto state = cast<RankedTensorType>(incoming.getType());
  const int64_t count = loop.getNumChunks();
  auto stacked = RankedTensorType::get(
      {count * state.getDimSize(0), state.getDimSize(1), state.getDimSize(2)},
      state.getElementType());
  SmallVector<Value> inputs(loop.getInputs().take_front(numInputs));
  SmallVector<bool> split(loop.getSplit().take_front(numInputs));
  const IntegerAttr workersAttr = b.getI64IntegerAttr(workers);

  // (1) Every shard's carry and decay, from its recomputed dy, delta and C.
  auto parts = b.create<lc::MiniSequenceOp>(
      loc, TypeRange{stacked, stacked}, inputs, loop.getChunksAttr(),
      b.getDenseBoolArrayAttr(split), b.getDenseBoolArrayAttr({false, false}),
      DenseI64ArrayAttr(), b.getI64IntegerAttr(0), UnitAttr());
  parts->setAttr(lc::kParallelWorkersAttr, workersAttr);
  Block *partsBody = new Block();
  parts.getBody().push_back(partsBody);
  IRMapping mapping;
  for (unsigned i = 0; i < numInputs; ++i)
    mapping.map(body.getArgument(i), partsBody->addArgument(body.getArgument(i).getType(), loc));
  llvm::SetVector<Operation *> needed =
      backwardSlice(body, {grad.getDy(), grad.getDelta(), grad.getA(), grad.getC()});
  OpBuilder inner = OpBuilder::atBlockEnd(partsBody);
  for (Operation &op : body.without_terminator())
    if (needed.contains(&op))
      inner.clone(op, mapping);
  auto part = inner.create<lc::SelectiveScanCarryOp>(
      grad.getLoc(), mapping.lookupOrDefault(grad.getDy()),
      mapping.lookupOrDefault(grad.getDelta()), mapping.lookupOrDefault(grad.getA()),
      mapping.lookupOrDefault(grad.getC()));
  inner.create<lc::YieldOp>(loc, ValueRange{part.getCarry(), part.getDecay()});

  // (2) Each shard's incoming cotangent, and the first shard's outgoing one.
  Value dfinal = loop.getInputs()[numInputs];
  auto combine = b.create<lc::SelectiveScanCarryCombineOp>(loc, parts.getResult(0),
                                                           parts.getResult(1), dfinal);

  // (3) The shards' backward, each from its incoming cotangent (a split
  // input in place of the carried one: the same block argument).
  inputs.push_back(combine.getDlast());
  split.push_back(true);
  auto shards = b.create<lc::MiniSequenceOp>(
      loc, TypeRange(loop.getResultTypes()).take_front(numResults), inputs, loop.getChunksAttr(),
      b.getDenseBoolArrayAttr(split), loop.getSumAttr(), DenseI64ArrayAttr(),
      b.getI64IntegerAttr(0), UnitAttr());
  for (NamedAttribute attr : loop->getDiscardableAttrs())
    shards->setAttr(attr.getName(), attr.getValue());
  shards->removeAttr(kAdjointParallelAttr);
  shards->setAttr(lc::kParallelWorkersAttr, workersAttr);
  shards.getBody().takeBody(loop.getBody());
  yield.getValuesMutable().erase(numResults);

  for (unsigned i = 0; i < numResults; ++i)
    loop.getResult(i).replaceAllUsesWith(shards.getResult(i));
  loop.getResult(numResults).replaceAllUsesWith(combine.getDinit());
  loop.erase();
  return success();
}

struct AdjointStatePassingPass : impl::LcAdjointStatePassingBase<AdjointStatePassingPass> {
  void runOnOperation() override {
    SmallVector<std::pair<lc::MiniSequenceOp, int64_t>> backwards;
    getOperation().walk([&](lc::MiniSequenceOp op) {
      auto workers = op->getAttrOfType<IntegerAttr>(kAdjointParallelAttr);
      if (workers && workers.getInt() > 1 && op.getReverse())
        backwards.push_back({op, workers.getInt()});
    });
    for (auto [loop, workers] : backwards)
      if (failed(passStates(loop, workers)))
        return signalPassFailure();
  }
};

} // namespace
} // namespace longctx
