//===- Recompute.cpp - lc-recompute: activation checkpointing --------------===//
//
// The forward of a training step is cut at its separators: activations that
// are, when made, the only activation the rest of the forward still needs
// (the residual stream between blocks). The segments between separators are
// grouped into layers by the period of their op sequences, so a Llama block
// (attention segment + MLP segment) is one layer and a Mamba block another.
// A recomputed layer keeps its input only; the activations its backward reads
// are made again, right before the first backward op that reads one.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"
#include "passes/Schedule.h"
#include "passes/StepMemory.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

#include <algorithm>
#include <numeric>

namespace longctx {
#define GEN_PASS_DEF_LCRECOMPUTE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// A unit of recomputation: consecutive forward activation ops.
struct Layer {
  std::vector<Operation *> ops; // program order
  Value output;                 // its last separator: kept, like its input
  /// Activations of the layer the backward reads (the output excepted).
  llvm::SetVector<Value> saved;
  uint64_t savedBytes = 0;
  double recomputeWork = 0;
};

/// Work of recomputing `op`: multiply-adds for contractions, else elements.
double recomputeWork(Operation *op) {
  auto elements = [](Value v) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    return t && t.hasStaticShape() ? double(t.getNumElements()) : 0.0;
  };
  if (isa<lc::MatMulOp, lc::GemmOp>(op)) {
    auto lhs = cast<RankedTensorType>(op->getOperand(0).getType());
    return 2.0 * elements(op->getResult(0)) * double(lhs.getShape().back());
  }
  if (auto attention = dyn_cast<lc::AttentionOp>(op)) {
    auto k = cast<RankedTensorType>(attention->getOperand(1).getType());
    return 4.0 * elements(op->getResult(0)) * double(k.getShape()[2]);
  }
  double work = 0;
  for (Value r : op->getResults())
    work += elements(r);
  return work;
}

/// The forward's layers, as the pass description says; empty when the body
/// is not a training step.
std::vector<Layer> findLayers(func::FuncOp func) {
  Block &body = func.getBody().front();
  Operation *terminator = body.getTerminator();
  if (terminator->getNumOperands() == 0)
    return {};
  Value loss = terminator->getOperand(0);
  // The forward: everything the loss depends on.
  llvm::DenseSet<Operation *> forward;
  std::vector<Operation *> worklist;
  if (Operation *def = loss.getDefiningOp())
    worklist.push_back(def);
  while (!worklist.empty()) {
    Operation *op = worklist.back();
    worklist.pop_back();
    if (!forward.insert(op).second)
      continue;
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp(); def && def->getBlock() == &body)
        worklist.push_back(def);
  }
  // Activations depend on a graph input and on a parameter; values that
  // depend on only one of them (targets, masks, weight transposes) stay.
  llvm::DenseMap<Value, unsigned> deps; // bit 0: an input, bit 1: a parameter
  for (BlockArgument arg : body.getArguments())
    deps[arg] = 1;
  std::vector<Operation *> activationOps;
  llvm::DenseMap<Operation *, int64_t> position;
  int64_t index = 0;
  for (Operation &op : body) {
    position[&op] = index++;
    if (!forward.contains(&op))
      continue;
    unsigned d = isa<lc::ParamOp>(op) ? 2u : 0u;
    for (Value operand : op.getOperands())
      d |= deps.lookup(operand);
    for (Value r : op.getResults())
      deps[r] = d;
    if (d == 3 && definesArenaBuffers(&op))
      activationOps.push_back(&op);
  }
  llvm::DenseSet<Operation *> isActivation(activationOps.begin(), activationOps.end());
  auto lastForwardUse = [&](Value v) {
    int64_t last = -1;
    for (Operation *user : v.getUsers())
      if (forward.contains(user))
        last = std::max(last, position[user]);
    return last;
  };

  // Separators, and the segments they close.
  std::vector<std::vector<Operation *>> segments(1);
  std::vector<Value> segmentOutput;
  llvm::DenseSet<Value> open;
  for (Operation *op : activationOps) {
    segments.back().push_back(op);
    int64_t p = position[op];
    for (Value operand : op->getOperands())
      if (open.contains(operand) && lastForwardUse(operand) <= p)
        open.erase(operand);
    for (Value r : op->getResults())
      if (lastForwardUse(r) > p)
        open.insert(r);
    if (open.size() == 1 && (*open.begin()).getDefiningOp() == op) {
      segmentOutput.push_back(*open.begin());
      segments.emplace_back();
    }
  }
  if (segments.back().empty())
    segments.pop_back();
  else
    segmentOutput.push_back(Value()); // the tail (head and loss): no separator after it

  // Layers: segments grouped by the shortest period of their op sequences.
  size_t n = segments.size();
  std::vector<std::string> signature(n);
  for (size_t j = 0; j < n; ++j)
    for (Operation *op : segments[j])
      signature[j] += op->getName().getStringRef().str() + ";";
  // The period whose repeats cover the most segments (the shortest on ties).
  auto coveredWith = [&](size_t p) {
    std::vector<bool> covered(n, false);
    for (size_t j = 0; j + p < n; ++j)
      if (signature[j] == signature[j + p])
        covered[j] = covered[j + p] = true;
    return covered;
  };
  size_t period = 1, bestCover = 0;
  for (size_t p = 1; p <= 4 && p < n; ++p) {
    std::vector<bool> covered = coveredWith(p);
    size_t count = size_t(std::count(covered.begin(), covered.end(), true));
    if (count > bestCover) {
      bestCover = count;
      period = p;
    }
  }
  std::vector<bool> covered = coveredWith(period);
  std::vector<size_t> layerOf(n);
  size_t layers = 0;
  for (size_t j = 0; j < n; ++layers) {
    // A whole period of repeated segments is one layer; others stand alone.
    size_t len = j + period <= n && std::all_of(covered.begin() + std::ptrdiff_t(j),
                                                covered.begin() + std::ptrdiff_t(j + period),
                                                [](bool c) { return c; })
                     ? period
                     : 1;
    for (size_t k = j; k < j + len; ++k)
      layerOf[k] = layers;
    j += len;
  }
  std::vector<Layer> result(layers);
  for (size_t j = 0; j < n; ++j) {
    Layer &layer = result[layerOf[j]];
    layer.ops.insert(layer.ops.end(), segments[j].begin(), segments[j].end());
    layer.output = segmentOutput[j];
  }
  for (Layer &layer : result) {
    for (Operation *op : layer.ops) {
      layer.recomputeWork += recomputeWork(op);
      for (Value r : op->getResults()) {
        if (r == layer.output)
          continue;
        for (Operation *user : r.getUsers())
          if (!forward.contains(user)) {
            layer.saved.insert(r);
            layer.savedBytes += tensorBytes(r.getType());
            break;
          }
      }
    }
  }
  // The tail (the loss after the last separator) reads the logits, which
  // it keeps anyway: recomputing it saves nothing worth its work.
  llvm::erase_if(result, [](const Layer &l) { return l.saved.empty() || !l.output; });
  return result;
}

/// Clones what `layer`'s saved activations need right before the first
/// backward op that reads one, and points the backward at the clones.
void recomputeLayer(const Layer &layer) {
  llvm::DenseSet<Operation *> inLayer(layer.ops.begin(), layer.ops.end());
  llvm::DenseSet<Operation *> needed;
  std::vector<Value> worklist(layer.saved.begin(), layer.saved.end());
  while (!worklist.empty()) {
    Value v = worklist.back();
    worklist.pop_back();
    Operation *def = v.getDefiningOp();
    if (!def || !inLayer.contains(def) || v == layer.output || !needed.insert(def).second)
      continue;
    for (Value operand : def->getOperands())
      worklist.push_back(operand);
  }
  // The backward readers: users outside the forward layer ops and outside
  // the forward in general (forward users come before the loss).
  llvm::DenseSet<Operation *> layerSet(layer.ops.begin(), layer.ops.end());
  Operation *first = nullptr;
  std::vector<OpOperand *> backwardUses;
  Operation *lastForwardOp = layer.ops.back();
  for (Value v : layer.saved)
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (layerSet.contains(user) || !lastForwardOp->isBeforeInBlock(user))
        continue;
      // A forward user in a later layer would make v a separator's rival.
      backwardUses.push_back(&use);
      if (!first || user->isBeforeInBlock(first))
        first = user;
    }
  if (!first)
    return;
  OpBuilder b(first);
  IRMapping mapping;
  for (Operation *op : layer.ops) {
    if (!needed.contains(op))
      continue;
    Operation *clone = b.clone(*op, mapping);
    clone->setAttr("lc.recompute", b.getUnitAttr());
  }
  for (OpOperand *use : backwardUses)
    if (Value clone = mapping.lookupOrNull(use->get()))
      use->set(clone);
}

struct RecomputePass : impl::LcRecomputeBase<RecomputePass> {
  using LcRecomputeBase::LcRecomputeBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (policy != "none" && policy != "layer" && policy != "auto") {
      func.emitError("lc-recompute: policy must be none, layer or auto, not '") << policy << "'";
      return signalPassFailure();
    }
    if (policy == "none" || func.getBody().empty())
      return;
    std::vector<Layer> layers = findLayers(func);
    std::vector<size_t> order(layers.size());
    std::iota(order.begin(), order.end(), 0);
    auto describe = [&](size_t count) {
      uint64_t bytes = 0;
      for (size_t i = 0; i < count; ++i)
        bytes += layers[order[i]].savedBytes;
      func.emitRemark("lc-recompute: recomputing ")
          << count << " of " << layers.size() << " layers (" << bytes
          << " bytes of saved activations)";
    };
    if (policy == "layer") {
      for (const Layer &layer : layers)
        recomputeLayer(layer);
      describe(layers.size());
      return;
    }
    if (budget == 0) {
      func.emitError("lc-recompute: policy=auto needs a budget (bytes)");
      return signalPassFailure();
    }
    // Cheapest recompute work per byte saved first; the shortest prefix of
    // that list whose plan fits.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return layers[a].recomputeWork * double(layers[b].savedBytes) <
             layers[b].recomputeWork * double(layers[a].savedBytes);
    });
    auto peakWith = [&](size_t count) {
      func::FuncOp trial = func.clone();
      std::vector<Layer> trialLayers = findLayers(trial);
      for (size_t i = 0; i < count; ++i)
        recomputeLayer(trialLayers[order[i]]);
      scheduleForLowPeak(trial);
      uint64_t peak = planStepMemory(trial).peakBytes();
      trial.erase();
      return peak;
    };
    size_t lo = 0, hi = layers.size(); // find the fewest layers that fit
    if (peakWith(0) <= budget) {
      hi = 0;
    } else {
      while (lo + 1 < hi) {
        size_t mid = (lo + hi) / 2;
        (peakWith(mid) <= budget ? hi : lo) = mid;
      }
    }
    for (size_t i = 0; i < hi; ++i)
      recomputeLayer(layers[order[i]]);
    describe(hi);
  }
};

} // namespace
} // namespace longctx
