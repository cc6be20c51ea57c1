//===- LowerMiniSequence.cpp - lc-lower-mini-sequence: unroll the chunks --===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

namespace longctx {
#define GEN_PASS_DEF_LCLOWERMINISEQUENCE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

LogicalResult unroll(lc::MiniSequenceOp loop) {
  OpBuilder b(loop);
  const int64_t rows = loop.getRows(), chunk = loop.getChunkRows();
  Block &body = loop.getBody().front();
  auto yield = cast<lc::YieldOp>(body.getTerminator());
  std::vector<SmallVector<Value>> pieces(loop.getNumResults());
  for (int64_t start = 0; start < rows; start += chunk) {
    const int64_t len = std::min(chunk, rows - start);
    IRMapping mapping;
    for (auto [i, input] : llvm::enumerate(loop.getInputs())) {
      Value arg = body.getArgument(unsigned(i));
      if (!loop.getSplit()[i]) {
        mapping.map(arg, input);
        continue;
      }
      auto type = cast<RankedTensorType>(input.getType());
      SmallVector<int64_t> starts(type.getRank(), 0), sizes(type.getShape()),
          steps(type.getRank(), 1);
      starts[0] = start;
      sizes[0] = len;
      mapping.map(arg, b.create<lc::SliceOp>(loop.getLoc(), input, b.getDenseI64ArrayAttr(starts),
                                             b.getDenseI64ArrayAttr(sizes),
                                             b.getDenseI64ArrayAttr(steps)));
    }
    for (Operation &op : body.without_terminator())
      if (!lc::cloneWithInferredTypes(b, op, mapping))
        return op.emitOpError("cannot be re-typed for a mini-sequence chunk of ")
               << len << " rows";
    // Sums accumulate right after each chunk, so one partial lives at a time.
    for (auto [i, value] : llvm::enumerate(yield.getValues())) {
      Value piece = mapping.lookup(value);
      if (loop.getSum()[i] && !pieces[i].empty())
        pieces[i].front() = b.create<lc::AddOp>(loop.getLoc(), pieces[i].front(), piece);
      else
        pieces[i].push_back(piece);
    }
  }
  for (auto [i, result] : llvm::enumerate(loop.getResults())) {
    Value combined = pieces[i].front();
    if (pieces[i].size() > 1)
      combined = b.create<lc::ConcatOp>(loop.getLoc(), pieces[i], b.getI64IntegerAttr(0));
    result.replaceAllUsesWith(combined);
  }
  loop.erase();
  return success();
}

struct LowerMiniSequencePass : impl::LcLowerMiniSequenceBase<LowerMiniSequencePass> {
  void runOnOperation() override {
    SmallVector<lc::MiniSequenceOp> loops;
    getOperation().walk([&](lc::MiniSequenceOp op) { loops.push_back(op); });
    for (lc::MiniSequenceOp loop : loops)
      if (failed(unroll(loop)))
        return signalPassFailure();
  }
};

} // namespace
} // namespace longctx
