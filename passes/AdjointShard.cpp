//===- AdjointShard.cpp - lc-adjoint-shard: SSM layers over time shards ---===//
//
// A Mamba-style layer is token-wise except for its scan, and the scan only
// passes a state [B, E, N] from step to step. Cutting the sequence into K
// shards and carrying that state makes each shard's forward and backward
// independent of the others' activations: the forward keeps the layer input
// and K states, the backward (autodiff of the carried loop) sweeps the
// shards in reverse, carrying the state's adjoint (Xu et al. 2025, with the
// layer-to-layer cotangent of plain backprop, so the result is exact).
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/AdjointAttributes.h"
#include "passes/MatchUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/SetVector.h"

namespace longctx {
#define GEN_PASS_DEF_LCADJOINTSHARD
#define GEN_PASS_DEF_LCADJOINTPAPER
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Whether `op` treats every token (dim 1 of [B, S, ...]) on its own.
bool isTokenWise(Operation *op) {
  if (isa<lc::AddOp, lc::SubOp, lc::MulOp, lc::DivOp, lc::MaxOp, lc::MinOp, lc::PowOp, lc::NegOp,
          lc::AbsOp, lc::ReluOp, lc::ExpOp, lc::LogOp, lc::SqrtOp, lc::ReciprocalOp, lc::TanhOp,
          lc::ErfOp, lc::SigmoidOp, lc::SoftplusOp, lc::CosOp, lc::SinOp, lc::IdentityOp,
          lc::CastOp, lc::RmsNormOp>(op)) {
    // Broadcasting an activation over tokens would mix them.
    auto result = tensorType(op->getResult(0));
    return llvm::all_of(op->getOperands(), [&](Value v) {
      return isWeightLike(v) || tensorType(v).getShape() == result.getShape();
    });
  }
  if (auto mm = dyn_cast<lc::MatMulOp>(op))
    return tensorType(mm.getRhs()).getRank() == 2 && isWeightLike(mm.getRhs());
  if (auto norm = dyn_cast<lc::LayerNormOp>(op))
    return norm.getAxis() == tensorType(norm.getInput()).getRank() - 1;
  if (auto slice = dyn_cast<lc::SliceOp>(op)) {
    auto type = tensorType(slice.getInput());
    return type.getRank() >= 2 && slice.getStarts()[1] == 0 && slice.getSteps()[1] == 1 &&
           slice.getSizes()[1] == type.getDimSize(1);
  }
  return false;
}

/// One residual SSM layer: output = x + f(x) with `ops` computing f.
struct SsmLayer {
  Value x;
  lc::AddOp output;
  lc::SelectiveScanOp scan;
  llvm::SetVector<Operation *> ops; // f's ops, the scan included
  llvm::SetVector<Value> weights;
};

/// The layer around `scan`, or the reason it cannot be sharded.
FailureOr<SsmLayer> findLayer(lc::SelectiveScanOp scan, std::string &why) {
  SsmLayer layer;
  layer.scan = scan;
  // The residual stream: the operands of the adds the scan reaches through
  // token-wise ops that do not come from the scan. The walk back from the
  // scan stops there, not in the layer before (an MLP block is token-wise).
  llvm::DenseSet<Value> residualStream;
  {
    llvm::DenseSet<Value> fromScan{scan.getResult()};
    SmallVector<Operation *> frontier{scan};
    llvm::DenseSet<Operation *> reached;
    while (!frontier.empty())
      for (Operation *user : frontier.pop_back_val()->getUsers())
        if (isTokenWise(user) && reached.insert(user).second) {
          fromScan.insert(user->result_begin(), user->result_end());
          frontier.push_back(user);
        }
    for (Operation *op : reached)
      if (auto add = dyn_cast<lc::AddOp>(op))
        for (Value operand : {add.getLhs(), add.getRhs()})
          if (!fromScan.contains(operand))
            residualStream.insert(operand);
  }
  // Its input: the one activation the scan's operands are computed from.
  SmallVector<Value> worklist(scan->getOperands());
  llvm::DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    if (!seen.insert(v).second || isWeightLike(v))
      continue;
    Operation *def = v.getDefiningOp();
    if (!def || !isTokenWise(def) || residualStream.contains(v)) {
      if (layer.x && layer.x != v) {
        why = "its inputs come from more than one activation (or through an op that mixes "
              "tokens: '" + (def ? def->getName().getStringRef().str() : "a graph input") + "')";
        return failure();
      }
      layer.x = v;
      continue;
    }
    for (Value operand : def->getOperands())
      worklist.push_back(operand);
  }
  if (!layer.x || tensorType(layer.x).getRank() != 3) {
    why = "its layer input is not a [batch, tokens, features] activation";
    return failure();
  }
  // Its output: the residual add of x reached from the scan through
  // token-wise ops.
  SmallVector<Operation *> frontier{scan};
  llvm::DenseSet<Operation *> visited;
  Operation *blocker = nullptr; // the first op on the way that mixes tokens
  while (!frontier.empty() && !layer.output) {
    Operation *op = frontier.pop_back_val();
    for (Operation *user : op->getUsers()) {
      if (!visited.insert(user).second)
        continue;
      if (auto add = dyn_cast<lc::AddOp>(user);
          add && (add.getLhs() == layer.x || add.getRhs() == layer.x)) {
        layer.output = add;
        break;
      }
      if (isTokenWise(user))
        frontier.push_back(user);
      else if (!blocker && isa_and_nonnull<lc::LcDialect>(user->getDialect()))
        blocker = user;
    }
  }
  if (!layer.output) {
    why = blocker ? "the layer mixes tokens outside its scan ('" +
                        blocker->getName().getStringRef().str() + "')"
                  : "no residual add of the layer input follows it through token-wise ops";
    return failure();
  }
  // f: everything the residual branch computes from x.
  Value branch = layer.output.getLhs() == layer.x ? layer.output.getRhs() : layer.output.getLhs();
  worklist.assign({branch});
  seen.clear();
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    if (v == layer.x || !seen.insert(v).second)
      continue;
    if (isWeightLike(v)) {
      layer.weights.insert(v);
      continue;
    }
    Operation *def = v.getDefiningOp();
    if (!def || (def != scan.getOperation() && !isTokenWise(def))) {
      why = "the layer mixes tokens outside its scan ('" +
            (def ? def->getName().getStringRef().str() : std::string("a graph input")) + "')";
      return failure();
    }
    if (isa<lc::SelectiveScanOp>(def) && def != scan.getOperation()) {
      why = "the layer holds a second scan";
      return failure();
    }
    layer.ops.insert(def);
    for (Value operand : def->getOperands())
      worklist.push_back(operand);
  }
  if (!layer.ops.contains(scan)) {
    why = "the scan does not feed its layer's residual branch";
    return failure();
  }
  for (Operation *op : layer.ops)
    for (Value r : op->getResults())
      for (Operation *user : r.getUsers())
        if (!layer.ops.contains(user) && user != layer.output.getOperation()) {
          why = "an intermediate of the layer ('" + op->getName().getStringRef().str() +
                "') is also read outside it (a state or activation escapes the shard)";
          return failure();
        }
  return layer;
}

/// [B, S, d] <-> [S, B, d]: a reshape (no data moves) when B is 1.
Value transposeTokensFirst(OpBuilder &b, Location loc, Value v) {
  auto type = tensorType(v);
  if (type.getDimSize(0) == 1 || type.getDimSize(1) == 1)
    return b.create<lc::ReshapeOp>(
        loc,
        RankedTensorType::get({type.getDimSize(1), type.getDimSize(0), type.getDimSize(2)},
                              type.getElementType()),
        v);
  return b.create<lc::TransposeOp>(loc, v, b.getDenseI64ArrayAttr({1, 0, 2}));
}

/// How the layers are sharded.
struct ShardingOptions {
  int64_t shards;
  int64_t truncate; // 0: exact
  bool paper;
  int64_t parallel; // backward shards at once
};

/// Replaces the layer by a mini_sequence over time shards of x (tokens
/// first: [S, B, d]) carrying the scan state.
LogicalResult shardLayer(SsmLayer &layer, const ShardingOptions &options, int64_t index) {
  const int64_t shards = options.shards;
  OpBuilder b(layer.output);
  Location loc = layer.output.getLoc();
  auto xType = tensorType(layer.x);
  auto aType = tensorType(layer.scan.getA());
  Type element = xType.getElementType();
  auto stateType = RankedTensorType::get(
      {xType.getDimSize(0), aType.getDimSize(0), aType.getDimSize(1)}, element);
  Value zeros = b.create<lc::ConstantOp>(
      loc, stateType, DenseElementsAttr::get(stateType, b.getZeroAttr(element)));
  Value tokensFirst = transposeTokensFirst(b, loc, layer.x);
  SmallVector<Value> inputs{tokensFirst};
  SmallVector<bool> split{true};
  for (Value w : layer.weights) {
    inputs.push_back(w);
    split.push_back(false);
  }
  inputs.push_back(zeros);
  split.push_back(false);
  auto outType = tensorType(tokensFirst);
  const int64_t count = [&] {
    int64_t rows = outType.getDimSize(0), chunk = (rows + shards - 1) / shards;
    return (rows + chunk - 1) / chunk;
  }();
  auto historyType = RankedTensorType::get(
      {count * stateType.getDimSize(0), stateType.getDimSize(1), stateType.getDimSize(2)}, element);
  auto loop = b.create<lc::MiniSequenceOp>(
      loc, TypeRange{outType, stateType, historyType}, inputs, b.getI64IntegerAttr(shards),
      b.getDenseBoolArrayAttr(split), b.getDenseBoolArrayAttr({false}), DenseI64ArrayAttr(),
      b.getI64IntegerAttr(1), UnitAttr());
  loop->setAttr(kAdjointLayerAttr, b.getI64IntegerAttr(index));
  if (options.paper)
    loop->setAttr(kAdjointPaperAttr, b.getUnitAttr());
  if (options.parallel > 1)
    loop->setAttr(kAdjointParallelAttr, b.getI64IntegerAttr(options.parallel));
  Block *block = new Block();
  loop.getBody().push_back(block);
  OpBuilder inner = OpBuilder::atBlockEnd(block);
  int64_t chunk = loop.getChunkRows(0);
  Value xc = block->addArgument(
      RankedTensorType::get({chunk, outType.getDimSize(1), outType.getDimSize(2)}, element), loc);
  IRMapping mapping;
  mapping.map(layer.x, transposeTokensFirst(inner, loc, xc));
  for (Value w : layer.weights)
    mapping.map(w, block->addArgument(w.getType(), loc));
  Value state = block->addArgument(stateType, loc);
  SmallVector<Operation *> ordered(layer.ops.begin(), layer.ops.end());
  llvm::sort(ordered, [](Operation *x, Operation *y) { return x->isBeforeInBlock(y); });
  Value next;
  for (Operation *op : ordered) {
    if (op == layer.scan.getOperation()) {
      SmallVector<Value> operands;
      for (Value v : op->getOperands())
        operands.push_back(mapping.lookup(v));
      operands.push_back(state);
      auto sharded = inner.create<lc::SelectiveScanStateOp>(op->getLoc(), operands);
      // A window as long as the sequence truncates nothing.
      if (options.truncate > 0 && options.truncate < outType.getDimSize(0))
        sharded.setTruncate(options.truncate);
      mapping.map(op->getResult(0), sharded.getOutput());
      next = sharded.getFinalState();
      continue;
    }
    if (!lc::cloneWithInferredTypes(inner, *op, mapping)) {
      loop.erase();
      return op->emitOpError("lc-adjoint-shard: cannot re-type this op for a time shard");
    }
  }
  Value branch =
      mapping.lookup(layer.output.getLhs() == layer.x ? layer.output.getRhs() : layer.output.getLhs());
  Value out = inner.create<lc::AddOp>(loc, mapping.lookup(layer.x), branch);
  inner.create<lc::YieldOp>(loc, ValueRange{transposeTokensFirst(inner, loc, out), next});
  layer.output.getResult().replaceAllUsesWith(transposeTokensFirst(b, loc, loop.getResult(0)));
  layer.output.erase();
  for (Operation *op : llvm::reverse(ordered))
    if (op->use_empty())
      op->erase();
  return success();
}

struct AdjointShardPass : impl::LcAdjointShardBase<AdjointShardPass> {
  using LcAdjointShardBase::LcAdjointShardBase;

  void runOnOperation() override {
    if (shards < 1) {
      getOperation().emitError("lc-adjoint-shard: shards must be at least 1, got ") << int64_t(shards);
      return signalPassFailure();
    }
    if (truncate < 0) {
      getOperation().emitError("lc-adjoint-shard: truncate must be 0 (exact) or a number of "
                               "steps, got ")
          << int64_t(truncate);
      return signalPassFailure();
    }
    if (mode != "exact" && mode != "paper") {
      getOperation().emitError("lc-adjoint-shard: mode must be exact or paper, got '")
          << std::string(mode) << "'";
      return signalPassFailure();
    }
    if (parallel < 1) {
      getOperation().emitError("lc-adjoint-shard: parallel must be at least 1, got ")
          << int64_t(parallel);
      return signalPassFailure();
    }
    if (parallel > 1 && truncate > 0) {
      getOperation().emitError("lc-adjoint-shard: parallel shards need the exact backward; "
                               "truncate=")
          << int64_t(truncate) << " carries an adjoint window, which does not pass between "
          << "shards as a state does";
      return signalPassFailure();
    }
    const ShardingOptions options{shards, truncate, mode == "paper", parallel};
    SmallVector<lc::SelectiveScanOp> scans;
    getOperation().walk([&](lc::SelectiveScanOp op) {
      if (!op->getParentOfType<lc::MiniSequenceOp>())
        scans.push_back(op);
    });
    if (scans.empty()) {
      getOperation().emitWarning("lc-adjoint-shard: no selective scan to shard");
      return;
    }
    bool ok = true;
    int64_t index = 0;
    for (lc::SelectiveScanOp scan : scans) {
      std::string why;
      FailureOr<SsmLayer> layer = findLayer(scan, why);
      if (failed(layer)) {
        scan.emitError("lc-adjoint-shard: cannot shard this scan's layer: ") << why;
        ok = false;
        continue;
      }
      if (failed(shardLayer(*layer, options, index++)))
        ok = false;
    }
    if (!ok)
      return signalPassFailure();
    if (options.paper && index > 0)
      getOperation().emitWarning(
          "lc-adjoint-shard mode=paper: every SSM layer's backward is driven by the top layer's "
          "output cotangent (the paper's Proposition 3); gradients below the top layer are not "
          "those of backprop");
  }
};

/// Drives every sharded layer's backward with the top layer's output
/// cotangent (the paper's Proposition 3).
struct AdjointPaperPass : impl::LcAdjointPaperBase<AdjointPaperPass> {
  void runOnOperation() override {
    SmallVector<lc::MiniSequenceOp> backwards;
    getOperation().walk([&](lc::MiniSequenceOp op) {
      if (op->hasAttr(kAdjointLayerAttr) && op->hasAttr(kAdjointPaperAttr) && op.getReverse())
        backwards.push_back(op);
    });
    if (backwards.empty())
      return;
    auto layerOf = [](lc::MiniSequenceOp op) {
      return cast<IntegerAttr>(op->getAttr(kAdjointLayerAttr)).getInt();
    };
    lc::MiniSequenceOp top = *llvm::max_element(
        backwards, [&](lc::MiniSequenceOp a, lc::MiniSequenceOp b) { return layerOf(a) < layerOf(b); });
    // A layer's backward reads its output's cotangent second to last (the
    // final state's cotangent is last).
    auto cotangentIndex = [](lc::MiniSequenceOp op) { return op.getInputs().size() - 2; };
    Value topCotangent = top.getInputs()[cotangentIndex(top)];
    for (lc::MiniSequenceOp op : backwards)
      if (op != top)
        op->setOperand(unsigned(cotangentIndex(op)), topCotangent);
  }
};

} // namespace
} // namespace longctx
