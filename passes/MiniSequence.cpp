//===- MiniSequence.cpp - lc-mini-sequence: chunk MLPs and the LM head ----===//
//
// The Mini-Sequence Transformer (Luo et al. 2024) as a rewrite: the two
// largest intermediates of a transformer step, the S x 4d MLP hidden and the
// S x V logits, are only ever made for one chunk of tokens at a time. Both
// computations are row-wise (each token's output depends on its own row), so
// they are wrapped, flattened to [tokens, features], in lc.mini_sequence.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/MatchUtils.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/SetVector.h"

namespace longctx {
#define GEN_PASS_DEF_LCMINISEQUENCE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

/// A row-wise computation to wrap: `ops` (program order) map the rows of
/// `x` to `output`; `weights` are the weight-like values they read.
struct RowWiseRegion {
  Value x, output;
  llvm::SetVector<Operation *> ops;
  llvm::SetVector<Value> weights;
};

/// Collects the ops computing `root` from a single activation `x` through
/// projections by weights and elementwise ops. Fails with the reason.
FailureOr<RowWiseRegion> collectRowWise(Value root, Operation *top, std::string &why) {
  RowWiseRegion region;
  SmallVector<Value> worklist{root};
  llvm::DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    if (!seen.insert(v).second)
      continue;
    if (isWeightLike(v)) {
      region.weights.insert(v);
      continue;
    }
    Operation *def = v.getDefiningOp();
    auto mm = dyn_cast_or_null<lc::MatMulOp>(def);
    if (mm && tensorType(mm.getRhs()).getRank() == 2 && isWeightLike(mm.getRhs())) {
      region.ops.insert(def);
      region.weights.insert(mm.getRhs());
      if (region.x && region.x != mm.getLhs()) {
        why = "its projections read two different activations";
        return failure();
      }
      region.x = mm.getLhs();
      continue;
    }
    bool elementwise =
        def && isa<lc::AddOp, lc::SubOp, lc::MulOp, lc::DivOp, lc::MaxOp, lc::MinOp, lc::PowOp,
                   lc::NegOp, lc::AbsOp, lc::ReluOp, lc::ExpOp, lc::LogOp, lc::SqrtOp,
                   lc::ReciprocalOp, lc::TanhOp, lc::ErfOp, lc::SigmoidOp, lc::SoftplusOp,
                   lc::CosOp, lc::SinOp, lc::IdentityOp, lc::CastOp>(def);
    if (!elementwise) {
      why = def ? "its hidden activation passes through '" + def->getName().getStringRef().str() +
                      "', which is not a projection by a weight or an elementwise op"
                : "its hidden activation is a graph input";
      return failure();
    }
    for (Value operand : def->getOperands())
      if (!isWeightLike(operand) && tensorType(operand).getShape() != tensorType(v).getShape()) {
        why = "'" + def->getName().getStringRef().str() + "' broadcasts an activation across rows";
        return failure();
      }
    region.ops.insert(def);
    for (Value operand : def->getOperands())
      worklist.push_back(operand);
  }
  if (!region.x) {
    why = "no projection by a weight feeds it";
    return failure();
  }
  // Nothing but the region itself may read its intermediates.
  for (Operation *op : region.ops)
    for (Operation *user : op->getResult(0).getUsers())
      if (!region.ops.contains(user) && user != top) {
        why = "an intermediate ('" + op->getName().getStringRef().str() +
              "') is also read outside it";
        return failure();
      }
  return region;
}

/// Orders `ops` as they appear in the block.
SmallVector<Operation *> inProgramOrder(const llvm::SetVector<Operation *> &ops) {
  SmallVector<Operation *> ordered(ops.begin(), ops.end());
  llvm::sort(ordered, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return ordered;
}

Value reshapeTo(OpBuilder &b, Location loc, Value v, ArrayRef<int64_t> shape) {
  if (tensorType(v).getShape() == shape)
    return v;
  return b.create<lc::ReshapeOp>(loc, RankedTensorType::get(shape, tensorType(v).getElementType()),
                                 v);
}

/// Builds `lc.mini_sequence` over `inputs` whose body clones `ops` with
/// `bodyInputs` mapped to the block arguments and yields what `yieldOf`
/// returns.
lc::MiniSequenceOp buildLoop(OpBuilder &b, Location loc, int64_t chunks, ArrayRef<Value> inputs,
                             ArrayRef<bool> split, ArrayRef<Value> bodyInputs,
                             ArrayRef<Operation *> ops, TypeRange resultTypes,
                             ArrayRef<bool> sum, DenseI64ArrayAttr gradients,
                             llvm::function_ref<SmallVector<Value>(OpBuilder &, IRMapping &)> yieldOf) {
  auto loop = b.create<lc::MiniSequenceOp>(loc, resultTypes, inputs, b.getI64IntegerAttr(chunks),
                                           b.getDenseBoolArrayAttr(split),
                                           b.getDenseBoolArrayAttr(sum), gradients,
                                           b.getI64IntegerAttr(0), UnitAttr());
  Block *block = new Block();
  loop.getBody().push_back(block);
  int64_t chunkRows = loop.getChunkRows(0);
  OpBuilder inner = OpBuilder::atBlockEnd(block);
  IRMapping mapping;
  for (auto [input, s, original] : llvm::zip(inputs, split, bodyInputs)) {
    auto type = tensorType(input);
    SmallVector<int64_t> shape(type.getShape());
    if (s)
      shape[0] = chunkRows;
    Value arg = block->addArgument(RankedTensorType::get(shape, type.getElementType()), loc);
    mapping.map(original, arg);
  }
  for (Operation *op : ops)
    if (!lc::cloneWithInferredTypes(inner, *op, mapping)) {
      loop.erase();
      return {};
    }
  inner.create<lc::YieldOp>(loc, yieldOf(inner, mapping));
  return loop;
}

struct MiniSequencePass : impl::LcMiniSequenceBase<MiniSequencePass> {
  using LcMiniSequenceBase::LcMiniSequenceBase;

  void runOnOperation() override;
  void remark(Operation *op, const Twine &what) {
    if (remarks)
      op->emitRemark("lc-mini-sequence: ") << what;
  }
  LogicalResult chunkLossHead(lc::CrossEntropyOp loss);
  LogicalResult chunkMlp(lc::MatMulOp down);
  LogicalResult chunkFusedMlp(lc::GatedMlpOp mlp);
  LogicalResult wrapRowWise(RowWiseRegion &region, Operation *top);

  /// Ops a wrap erased (candidates collected before it must skip them).
  llvm::DenseSet<Operation *> erased;
};

/// cross_entropy(h W, targets) -> sum over chunks of the chunk's summed token
/// losses, divided by the number of counted targets in the whole batch.
LogicalResult MiniSequencePass::chunkLossHead(lc::CrossEntropyOp loss) {
  if (loss.getReduction() != 0)
    return failure(); // already a chunk's loss
  Value logits = loss.getLogits();
  auto reshape = logits.getDefiningOp<lc::ReshapeOp>();
  Value projected = reshape ? reshape.getInput() : logits;
  auto head = projected.getDefiningOp<lc::MatMulOp>();
  if (!head || tensorType(head.getRhs()).getRank() != 2 || !isWeightLike(head.getRhs())) {
    remark(loss, "the loss's logits are not a projection by a weight matrix");
    return failure();
  }
  if (!projected.hasOneUse() || (reshape && !logits.hasOneUse())) {
    remark(loss, "the logits are also read elsewhere, so they must exist whole");
    return failure();
  }
  auto logitsType = tensorType(logits);
  int64_t vocab = logitsType.getShape().back();
  if (tensorType(projected).getShape().back() != vocab) {
    remark(loss, "the logits' reshape changes the vocabulary dim");
    return failure();
  }
  Value h = head.getLhs();
  int64_t d = tensorType(h).getShape().back();
  int64_t rows = tensorType(h).getNumElements() / std::max<int64_t>(d, 1);
  Value targets = loss.getTargets();
  auto targetType = tensorType(targets);
  if (targetType.getNumElements() != rows) {
    remark(loss, "the targets do not match the logits' rows");
    return failure();
  }
  OpBuilder b(loss);
  Location loc = loss.getLoc();
  int64_t ignore = loss.getIgnoreIndex();
  // Next-token targets as a per-row label: row (b, s) is scored against
  // targets[b, s+1]; each sequence's last row against nothing.
  if (loss.getShift() == 1) {
    ArrayRef<int64_t> shape = targetType.getShape();
    SmallVector<int64_t> starts(shape.size(), 0), sizes(shape), steps(shape.size(), 1),
        lastShape(shape);
    starts.back() = 1;
    sizes.back() -= 1;
    lastShape.back() = 1;
    Value next = b.create<lc::SliceOp>(loc, targets, b.getDenseI64ArrayAttr(starts),
                                       b.getDenseI64ArrayAttr(sizes),
                                       b.getDenseI64ArrayAttr(steps));
    auto padType = RankedTensorType::get(lastShape, targetType.getElementType());
    Value pad = b.create<lc::ConstantOp>(
        loc, padType,
        DenseElementsAttr::get(padType, b.getIntegerAttr(targetType.getElementType(), ignore)));
    targets = b.create<lc::ConcatOp>(loc, ValueRange{next, pad},
                                     b.getI64IntegerAttr(int64_t(shape.size()) - 1));
  }
  Value labels = reshapeTo(b, loc, targets, {rows});
  // The global count of counted rows (at least 1: an empty batch's loss is 0).
  Type floatType = logitsType.getElementType();
  auto scalarInt = RankedTensorType::get({}, targetType.getElementType());
  auto scalarFloat = RankedTensorType::get({}, floatType);
  Value ignoreValue = b.create<lc::ConstantOp>(
      loc, scalarInt, DenseElementsAttr::get(scalarInt, b.getIntegerAttr(scalarInt.getElementType(), ignore)));
  Value isIgnored = b.create<lc::EqualOp>(loc, labels, ignoreValue);
  Value counted = b.create<lc::NotOp>(loc, isIgnored);
  Value ones = b.create<lc::CastOp>(loc, RankedTensorType::get({rows}, floatType), counted);
  Value count = b.create<lc::ReduceSumOp>(loc, ones, b.getDenseI64ArrayAttr({0}), b.getBoolAttr(false));
  Value one = b.create<lc::ConstantOp>(loc, scalarFloat,
                                       DenseElementsAttr::get(scalarFloat, b.getFloatAttr(floatType, 1.0)));
  Value denominator = b.create<lc::MaxOp>(loc, count, one);

  Value x = reshapeTo(b, loc, h, {rows, d});
  Value weight = head.getRhs();
  // Each chunk makes its logits, its summed loss and, while the logits
  // exist, their gradient for upstream 1 and what it gives x and the
  // weight: the backward only scales those, the logits are never recomputed.
  lc::MiniSequenceOp loop = buildLoop(
      b, loc, chunks, {x, weight, labels}, {true, false, true}, {x, weight, labels}, {},
      TypeRange{scalarFloat, x.getType(), weight.getType()}, {true, false, true},
      b.getDenseI64ArrayAttr({1, 2, -1}), [&](OpBuilder &inner, IRMapping &m) {
        Value xc = m.lookup(x), w = m.lookup(weight);
        Value chunkLogits = inner.create<lc::MatMulOp>(head.getLoc(), xc, w);
        auto lossAndGrad = inner.create<lc::CrossEntropyAndGradOp>(
            loss.getLoc(), chunkLogits, m.lookup(labels), inner.getI64IntegerAttr(ignore));
        Value dlogits = lossAndGrad.getDlogits();
        Value dx = inner.create<lc::GemmOp>(head.getLoc(), dlogits, w, nullptr,
                                            inner.getF64FloatAttr(1.0), inner.getF64FloatAttr(1.0),
                                            inner.getBoolAttr(false), inner.getBoolAttr(true));
        Value dw = inner.create<lc::GemmOp>(head.getLoc(), xc, dlogits, nullptr,
                                            inner.getF64FloatAttr(1.0), inner.getF64FloatAttr(1.0),
                                            inner.getBoolAttr(true), inner.getBoolAttr(false));
        return SmallVector<Value>{lossAndGrad.getLoss(), dx, dw};
      });
  if (!loop)
    return failure();
  Value mean = b.create<lc::DivOp>(loc, loop.getResult(0), denominator);
  loss.getResult().replaceAllUsesWith(mean);
  loss.erase();
  if (reshape && reshape->use_empty())
    reshape.erase();
  if (head->use_empty())
    head.erase();
  return success();
}

/// (elementwise and projected rows of x) W_down [+ bias] -> chunks of rows.
LogicalResult MiniSequencePass::chunkMlp(lc::MatMulOp down) {
  if (tensorType(down.getRhs()).getRank() != 2 || !isWeightLike(down.getRhs()))
    return failure(); // not a projection by a weight: not a candidate
  Operation *top = down;
  // A bias added right after belongs to the MLP.
  if (down->hasOneUse())
    if (auto add = dyn_cast<lc::AddOp>(*down->getUsers().begin())) {
      Value other = add.getLhs() == down.getResult() ? add.getRhs() : add.getLhs();
      if (isWeightLike(other) && add.getType() == down.getType())
        top = add;
    }
  std::string why;
  FailureOr<RowWiseRegion> region = collectRowWise(down.getLhs(), down, why);
  if (failed(region)) {
    remark(down, "projection left alone: " + why);
    return failure();
  }
  if (!llvm::any_of(region->ops, [](Operation *op) { return isa<lc::MatMulOp>(op); })) {
    remark(down, "projection left alone: no projection by a weight feeds it");
    return failure();
  }
  region->ops.insert(down);
  if (top != down) {
    region->ops.insert(top);
    for (Value operand : top->getOperands())
      if (operand != down.getResult())
        region->weights.insert(operand);
  }
  region->weights.insert(down.getRhs());
  if (failed(wrapRowWise(*region, top))) {
    remark(down, "projection left alone: an op of it cannot be re-typed for chunks of rows");
    return failure();
  }
  return success();
}

/// lc.gated_mlp (lc-fuse-gated-mlp's op) is row-wise as a whole.
LogicalResult MiniSequencePass::chunkFusedMlp(lc::GatedMlpOp mlp) {
  RowWiseRegion region;
  region.x = mlp.getInput();
  region.ops.insert(mlp);
  for (Value w : mlp->getOperands().drop_front()) {
    if (!isWeightLike(w)) {
      remark(mlp, "gated MLP left alone: its weights depend on the step's inputs");
      return failure();
    }
    region.weights.insert(w);
  }
  return wrapRowWise(region, mlp);
}

/// Replaces `region` (ending at `top`) by a mini_sequence over x's rows.
LogicalResult MiniSequencePass::wrapRowWise(RowWiseRegion &region, Operation *top) {
  Value x = region.x;
  auto xType = tensorType(x);
  int64_t d = xType.getShape().back();
  int64_t rows = xType.getNumElements() / std::max<int64_t>(d, 1);
  if (xType.getRank() < 1 || rows < 1)
    return failure();
  OpBuilder b(top);
  Location loc = top->getLoc();
  // Weights read by the region become whole inputs; 1-D weights (biases)
  // broadcast along rows exactly as before.
  SmallVector<Value> inputs{reshapeTo(b, loc, x, {rows, d})}, bodyInputs{x};
  SmallVector<bool> split{true};
  for (Value w : region.weights) {
    inputs.push_back(w);
    bodyInputs.push_back(w);
    split.push_back(false);
  }
  // The body computes on [chunk, d] rows: x's block argument stands for x.
  // A rank > 2 x is flattened first, so the body sees rank-2 activations.
  SmallVector<Operation *> ordered = inProgramOrder(region.ops);
  auto outType = tensorType(top->getResult(0));
  int64_t out = outType.getShape().back();
  auto loopType = RankedTensorType::get({rows, out}, outType.getElementType());
  lc::MiniSequenceOp loop = buildLoop(b, loc, chunks, inputs, split, bodyInputs, ordered,
                                      TypeRange{loopType}, {false}, DenseI64ArrayAttr(),
                                      [&](OpBuilder &, IRMapping &m) {
                                        return SmallVector<Value>{m.lookup(top->getResult(0))};
                                      });
  if (!loop)
    return failure();
  top->getResult(0).replaceAllUsesWith(reshapeTo(b, loc, loop.getResult(0), outType.getShape()));
  for (Operation *op : llvm::reverse(ordered))
    if (op->use_empty()) {
      erased.insert(op);
      op->erase();
    }
  return success();
}

void MiniSequencePass::runOnOperation() {
  if (chunks < 1) {
    getOperation().emitError("lc-mini-sequence: chunks must be at least 1, got ") << int64_t(chunks);
    return signalPassFailure();
  }
  SmallVector<lc::CrossEntropyOp> losses;
  SmallVector<lc::MatMulOp> projections;
  SmallVector<lc::GatedMlpOp> fusedMlps;
  for (Operation &op : getOperation().getBody().front()) {
    if (auto loss = dyn_cast<lc::CrossEntropyOp>(op))
      losses.push_back(loss);
    else if (auto mm = dyn_cast<lc::MatMulOp>(op))
      projections.push_back(mm);
    else if (auto fused = dyn_cast<lc::GatedMlpOp>(op))
      fusedMlps.push_back(fused);
  }
  int64_t wrapped = 0;
  for (lc::GatedMlpOp mlp : fusedMlps)
    wrapped += succeeded(chunkFusedMlp(mlp));
  // The LM head first: its projection is not an MLP's.
  llvm::DenseSet<Operation *> heads;
  for (lc::CrossEntropyOp loss : losses) {
    Value logits = loss.getLogits();
    if (auto r = logits.getDefiningOp<lc::ReshapeOp>())
      logits = r.getInput();
    if (Operation *def = logits.getDefiningOp())
      heads.insert(def);
    wrapped += succeeded(chunkLossHead(loss));
  }
  // Last projection first: an MLP's down projection comes after its up ones.
  for (lc::MatMulOp mm : llvm::reverse(projections))
    if (!heads.contains(mm) && !erased.contains(mm))
      wrapped += succeeded(chunkMlp(mm));
  if (!wrapped)
    getOperation().emitWarning("lc-mini-sequence: found no MLP and no LM head + loss to chunk")
        << (remarks ? "" : " (remarks=true says why for each candidate)");
}

} // namespace
} // namespace longctx
