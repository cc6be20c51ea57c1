//===- LowerMiniSequence.cpp - lc-lower-mini-sequence: unroll the chunks --===//
#include "dialects/lc/LcOps.h"
#include "dialects/lc/ParallelLanes.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

namespace longctx {
#define GEN_PASS_DEF_LCLOWERMINISEQUENCE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// Rows [start, start + len) of `input` along dim 0.
Value sliceRows(OpBuilder &b, Location loc, Value input, int64_t start, int64_t len) {
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> starts(type.getRank(), 0), sizes(type.getShape()), steps(type.getRank(), 1);
  starts[0] = start;
  sizes[0] = len;
  return b.create<lc::SliceOp>(loc, input, b.getDenseI64ArrayAttr(starts),
                               b.getDenseI64ArrayAttr(sizes), b.getDenseI64ArrayAttr(steps));
}

Value concatRows(OpBuilder &b, Location loc, ArrayRef<Value> pieces) {
  if (pieces.size() == 1)
    return pieces.front();
  return b.create<lc::ConcatOp>(loc, pieces, b.getI64IntegerAttr(0));
}

/// The workers a loop's chunks run on: lc.parallel_workers (at most one per
/// chunk) for a loop without carried state, else 1.
int64_t workersOf(lc::MiniSequenceOp loop, int64_t count) {
  auto attr = loop->getAttrOfType<IntegerAttr>(lc::kParallelWorkersAttr);
  if (!attr || loop.getCarried() != 0)
    return 1;
  return std::clamp<int64_t>(attr.getInt(), 1, count);
}

/// Unrolls `loop`; with more than one worker its chunks become parallel
/// group `group`: contiguous runs of chunks per worker, sums per worker.
LogicalResult unroll(lc::MiniSequenceOp loop, int64_t group) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  const int64_t count = loop.getNumChunks();
  const unsigned numInputs = loop.getNumChunkInputs(), numResults = loop.getNumChunkResults();
  const unsigned carried = unsigned(loop.getCarried());
  Block &body = loop.getBody().front();
  auto yield = cast<lc::YieldOp>(body.getTerminator());
  std::vector<std::vector<Value>> pieces(numResults, std::vector<Value>(size_t(count)));
  const int64_t workers = workersOf(loop, count);
  // sums[w][i]: worker w's partial sum of result i.
  std::vector<std::vector<Value>> sums(static_cast<size_t>(workers), std::vector<Value>(numResults));
  std::vector<std::vector<Value>> history(carried, std::vector<Value>(size_t(count)));
  SmallVector<Value> state(loop.getInputs().drop_front(numInputs));
  for (int64_t step = 0; step < count; ++step) {
    const int64_t k = loop.getReverse() ? count - 1 - step : step;
    const int64_t worker = k * workers / count;
    Operation *before = loop->getPrevNode(); // the chunk's ops follow it
    IRMapping mapping;
    for (unsigned i = 0; i < numInputs; ++i) {
      Value input = loop.getInputs()[i];
      if (!loop.getSplit()[i]) {
        mapping.map(body.getArgument(i), input);
        continue;
      }
      const int64_t rows = cast<RankedTensorType>(input.getType()).getDimSize(0);
      const int64_t chunk = loop.getChunkRows(i), start = k * chunk;
      mapping.map(body.getArgument(i), sliceRows(b, loc, input, start, std::min(chunk, rows - start)));
    }
    for (unsigned j = 0; j < carried; ++j) {
      history[j][size_t(k)] = state[j];
      mapping.map(body.getArgument(numInputs + j), state[j]);
    }
    for (Operation &op : body.without_terminator())
      if (!lc::cloneWithInferredTypes(b, op, mapping))
        return op.emitOpError("cannot be re-typed for mini-sequence chunk ") << k;
    // Sums accumulate right after each chunk, so one partial lives at a time.
    for (unsigned i = 0; i < numResults; ++i) {
      Value piece = mapping.lookup(yield.getValues()[i]);
      Value &sum = sums[size_t(worker)][i];
      if (!loop.getSum()[i])
        pieces[i][size_t(k)] = piece;
      else
        sum = sum ? b.create<lc::AddOp>(loc, sum, piece).getResult() : piece;
    }
    if (workers > 1)
      for (Operation *op = before ? before->getNextNode() : &loop->getBlock()->front(); op != loop;
           op = op->getNextNode())
        lc::setLane(op, {group, worker});
    for (unsigned j = 0; j < carried; ++j)
      state[j] = mapping.lookup(yield.getValues()[numResults + j]);
  }
  for (unsigned i = 0; i < numResults; ++i) {
    if (!loop.getSum()[i]) {
      loop.getResult(i).replaceAllUsesWith(concatRows(b, loc, pieces[i]));
      continue;
    }
    Value total = sums[0][i];
    for (int64_t w = 1; w < workers; ++w)
      total = b.create<lc::AddOp>(loc, total, sums[size_t(w)][i]);
    loop.getResult(i).replaceAllUsesWith(total);
  }
  for (unsigned j = 0; j < carried; ++j) {
    loop.getResult(numResults + j).replaceAllUsesWith(state[j]);
    Value states = loop.getResult(numResults + carried + j);
    if (!states.use_empty())
      states.replaceAllUsesWith(concatRows(b, loc, history[j]));
  }
  loop.erase();
  return success();
}

struct LowerMiniSequencePass : impl::LcLowerMiniSequenceBase<LowerMiniSequencePass> {
  void runOnOperation() override {
    SmallVector<lc::MiniSequenceOp> loops;
    getOperation().walk([&](lc::MiniSequenceOp op) { loops.push_back(op); });
    int64_t groups = 0;
    for (lc::MiniSequenceOp loop : loops) {
      const bool parallel = workersOf(loop, loop.getNumChunks()) > 1;
      if (failed(unroll(loop, parallel ? groups : -1)))
        return signalPassFailure();
      groups += parallel;
    }
  }
};

} // namespace
} // namespace longctx
