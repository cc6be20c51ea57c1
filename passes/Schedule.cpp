//===- Schedule.cpp - lc-schedule: an op order with a low memory peak -----===//
#include "passes/Schedule.h"
#include "passes/ParallelGroups.h"
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"
#include "passes/StepMemory.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <algorithm>
#include <numeric>
#include <queue>

namespace longctx {
#define GEN_PASS_DEF_LCSCHEDULE
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// The body as a dependence graph over op indices, with the arena bytes
/// each op defines and the arena values it reads.
class ScheduleGraph {
public:
  explicit ScheduleGraph(func::FuncOp func);

  size_t size() const { return ops_.size(); }
  Operation *op(size_t i) const { return ops_[i]; }

  /// The peak of live arena bytes when the ops run in `order`.
  uint64_t simulatePeak(const std::vector<size_t> &order) const;

  std::vector<size_t> depthFirstOrder() const;
  std::vector<size_t> greedyFreeFirstOrder() const;

private:
  void addEdge(size_t from, size_t to) {
    succs_[from].push_back(to);
    preds_[to].push_back(from);
  }

  std::vector<Operation *> ops_;
  std::vector<std::vector<size_t>> preds_, succs_;
  std::vector<std::vector<size_t>> reads_;    // arena value ids, deduplicated
  std::vector<std::vector<size_t>> defines_;  // arena value ids
  std::vector<uint64_t> valueBytes_;
  std::vector<int64_t> valueReaders_; // distinct reading ops
  std::vector<std::vector<size_t>> readersOf_; // value -> reading ops
  std::vector<bool> liveToEnd_;       // returned values
  std::vector<size_t> roots_;         // returned values' and effects' ops
};

ScheduleGraph::ScheduleGraph(func::FuncOp func) {
  Block &body = func.getBody().front();
  llvm::DenseMap<Operation *, size_t> index;
  for (Operation &op : body)
    if (!op.hasTrait<OpTrait::IsTerminator>()) {
      index[&op] = ops_.size();
      ops_.push_back(&op);
    }
  preds_.resize(ops_.size());
  succs_.resize(ops_.size());
  reads_.resize(ops_.size());
  defines_.resize(ops_.size());
  llvm::DenseMap<Value, size_t> valueId;
  llvm::StringMap<lc::ParamOp> params;
  size_t anchor = SIZE_MAX; // the last op not marked lc.recompute
  for (size_t i = 0; i < ops_.size(); ++i) {
    Operation *op = ops_[i];
    if (auto param = dyn_cast<lc::ParamOp>(op))
      params[param.getName()] = param;
    if (definesArenaBuffers(op))
      for (Value result : op->getResults()) {
        valueId[result] = valueBytes_.size();
        defines_[i].push_back(valueBytes_.size());
        valueBytes_.push_back(tensorBytes(result.getType()));
        valueReaders_.push_back(0);
        readersOf_.emplace_back();
        liveToEnd_.push_back(false);
      }
    llvm::SmallVector<size_t> predecessors;
    for (Value operand : op->getOperands()) {
      if (Operation *def = operand.getDefiningOp(); def && index.count(def))
        predecessors.push_back(index[def]);
      if (auto it = valueId.find(operand); it != valueId.end() &&
                                           !llvm::is_contained(reads_[i], it->second)) {
        reads_[i].push_back(it->second);
        ++valueReaders_[it->second];
        readersOf_[it->second].push_back(i);
      }
    }
    // An update writes its parameter: after everything that reads it.
    StringRef updated;
    if (auto u = dyn_cast<lc::AdamWUpdateOp>(op))
      updated = u.getParam();
    else if (auto u = dyn_cast<lc::SgdUpdateOp>(op))
      updated = u.getParam();
    if (!updated.empty()) {
      roots_.push_back(i);
      if (lc::ParamOp param = params.lookup(updated))
        for (Operation *reader : param->getUsers())
          if (reader != op && index.count(reader))
            predecessors.push_back(index[reader]);
    }
    if (op->hasAttr("lc.recompute")) {
      if (anchor != SIZE_MAX)
        predecessors.push_back(anchor);
    } else {
      anchor = i;
    }
    llvm::sort(predecessors);
    predecessors.erase(std::unique(predecessors.begin(), predecessors.end()), predecessors.end());
    for (size_t p : predecessors)
      addEdge(p, i);
  }
  // Roots of the depth-first order: the results' ops, then the updates.
  std::vector<size_t> updates = std::move(roots_);
  roots_.clear();
  for (Value v : body.getTerminator()->getOperands()) {
    if (auto it = valueId.find(v); it != valueId.end())
      liveToEnd_[it->second] = true;
    if (Operation *def = v.getDefiningOp(); def && index.count(def))
      roots_.push_back(index[def]);
  }
  roots_.insert(roots_.end(), updates.begin(), updates.end());
}

uint64_t ScheduleGraph::simulatePeak(const std::vector<size_t> &order) const {
  std::vector<int64_t> readersLeft = valueReaders_;
  uint64_t live = 0, peak = 0;
  for (size_t i : order) {
    for (size_t v : defines_[i])
      live += valueBytes_[v];
    peak = std::max(peak, live);
    for (size_t v : reads_[i])
      if (--readersLeft[v] == 0 && !liveToEnd_[v])
        live -= valueBytes_[v];
    for (size_t v : defines_[i])
      if (valueReaders_[v] == 0 && !liveToEnd_[v])
        live -= valueBytes_[v];
  }
  return peak;
}

/// Post-order from the results (in order), then the updates: each op right
/// after what it needs, so a value is made close to its use.
std::vector<size_t> ScheduleGraph::depthFirstOrder() const {
  std::vector<size_t> order;
  std::vector<char> state(ops_.size(), 0); // 0 new, 1 on stack, 2 emitted
  std::vector<size_t> roots = roots_;
  for (size_t i = 0; i < ops_.size(); ++i) // whatever nothing above reaches
    roots.push_back(i);
  for (size_t root : roots) {
    if (state[root])
      continue;
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto &[node, next] = stack.back();
      if (next < preds_[node].size()) {
        size_t p = preds_[node][next++];
        if (!state[p]) {
          state[p] = 1;
          stack.push_back({p, 0});
        }
        continue;
      }
      state[node] = 2;
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;
}

/// List scheduling: among the ready ops, the one that frees the most bytes
/// net of what it defines; ties go to the earliest in the current order.
/// A heap with lazy updates: an op's score only changes when one of its
/// operands is down to its last reader, and then the op is pushed again.
std::vector<size_t> ScheduleGraph::greedyFreeFirstOrder() const {
  std::vector<int64_t> predsLeft(ops_.size());
  std::vector<int64_t> readersLeft = valueReaders_;
  std::vector<bool> scheduled(ops_.size(), false), ready(ops_.size(), false);
  auto score = [&](size_t i) {
    int64_t s = 0;
    for (size_t v : defines_[i])
      s -= valueReaders_[v] || liveToEnd_[v] ? int64_t(valueBytes_[v]) : 0;
    for (size_t v : reads_[i])
      if (readersLeft[v] == 1 && !liveToEnd_[v])
        s += int64_t(valueBytes_[v]);
    return s;
  };
  // Max score first, then the smallest index.
  using Entry = std::pair<int64_t, size_t>;
  auto worse = [](const Entry &a, const Entry &b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
  for (size_t i = 0; i < ops_.size(); ++i)
    if (!(predsLeft[i] = int64_t(preds_[i].size()))) {
      ready[i] = true;
      heap.push({score(i), i});
    }
  std::vector<size_t> order;
  while (!heap.empty()) {
    auto [s, i] = heap.top();
    heap.pop();
    if (scheduled[i])
      continue;
    if (int64_t now = score(i); now != s) { // stale: its operands changed
      heap.push({now, i});
      continue;
    }
    scheduled[i] = true;
    order.push_back(i);
    for (size_t v : reads_[i])
      if (--readersLeft[v] == 1)
        for (size_t r : readersOf_[v])
          if (!scheduled[r] && ready[r])
            heap.push({score(r), r});
    for (size_t next : succs_[i])
      if (--predsLeft[next] == 0) {
        ready[next] = true;
        heap.push({score(next), next});
      }
  }
  return order;
}

struct SchedulePass : impl::LcScheduleBase<SchedulePass> {
  void runOnOperation() override { scheduleForLowPeak(getOperation()); }
};

} // namespace

uint64_t scheduleForLowPeak(func::FuncOp func) {
  if (func.getBody().empty())
    return 0;
  ScheduleGraph graph(func);
  std::vector<size_t> current(graph.size());
  std::iota(current.begin(), current.end(), 0);
  std::vector<size_t> best = current;
  uint64_t bestPeak = graph.simulatePeak(current);
  for (std::vector<size_t> candidate : {graph.depthFirstOrder(), graph.greedyFreeFirstOrder()}) {
    if (candidate.size() != graph.size()) // a cycle: cannot happen in SSA
      continue;
    uint64_t peak = graph.simulatePeak(candidate);
    if (peak < bestPeak) {
      bestPeak = peak;
      best = std::move(candidate);
    }
  }
  Operation *terminator = func.getBody().front().getTerminator();
  for (size_t i : best)
    graph.op(i)->moveBefore(terminator);
  gatherParallelGroups(func);
  return bestPeak;
}

} // namespace longctx
