//===- ParallelGroups.cpp - Keep parallel groups runnable -----------------===//
#include "passes/ParallelGroups.h"
#include "dialects/lc/LcOps.h"
#include "dialects/lc/ParallelLanes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"

#include <algorithm>
#include <optional>

using namespace mlir;

namespace longctx {
namespace {

using lc::Lane;

/// The lane `op` (inside the span of its group, which starts at `spanStart`)
/// can take: the one lane of the lane-carrying ops that feed or read it, if
/// they agree, and only where that keeps the group runnable: `op` feeds only
/// that worker, or everything else it reads comes from before the group (a
/// value that depends on the group through other ops must stay after it).
std::optional<Lane> inferredLane(Operation *op, Operation *spanStart) {
  std::optional<Lane> agreed;
  bool conflict = false;
  auto see = [&](Operation *other) {
    if (!other || other->getBlock() != op->getBlock())
      return;
    std::optional<Lane> lane = lc::laneOf(other);
    if (!lane)
      return;
    if (agreed && !(*agreed == *lane))
      conflict = true;
    agreed = lane;
  };
  for (Value operand : op->getOperands())
    see(operand.getDefiningOp());
  for (Operation *user : op->getUsers())
    see(user);
  if (conflict || !agreed)
    return std::nullopt;
  const bool feedsOnlyIt = !op->use_empty() && llvm::all_of(op->getUsers(), [&](Operation *user) {
    std::optional<Lane> lane = lc::laneOf(user);
    return lane && *lane == *agreed;
  });
  if (feedsOnlyIt)
    return agreed;
  for (Value operand : op->getOperands()) {
    Operation *def = operand.getDefiningOp();
    if (!def || def->getBlock() != op->getBlock() || def->isBeforeInBlock(spanStart))
      continue;
    if (std::optional<Lane> lane = lc::laneOf(def); lane && *lane == *agreed)
      continue;
    return std::nullopt;
  }
  return agreed;
}

/// Lanes for the ops inside a group's span that belong to one worker, until
/// nothing changes.
void inferLanes(Block &body) {
  llvm::DenseMap<int64_t, std::pair<Operation *, Operation *>> spans;
  for (Operation &op : body)
    if (std::optional<Lane> lane = lc::laneOf(&op)) {
      auto [it, inserted] = spans.try_emplace(lane->group, &op, &op);
      it->second.second = &op;
    }
  for (bool changed = true; changed;) {
    changed = false;
    for (auto &[group, span] : spans)
      for (Operation *op = span.first; op != span.second; op = op->getNextNode())
        if (!lc::laneOf(op) && op->getNumResults() > 0 &&
            !isa<lc::AdamWUpdateOp, lc::SgdUpdateOp>(op)) // they write a parameter
          if (std::optional<Lane> lane = inferredLane(op, span.first);
              lane && lane->group == group) {
            lc::setLane(op, *lane);
            changed = true;
          }
  }
}

void dropLanes(ArrayRef<Operation *> ops) {
  for (Operation *op : ops)
    op->removeAttr(lc::kLaneAttr);
}

/// Reorders the span of `group` (its ops, in block order), or drops its
/// lanes when it cannot run concurrently.
void gather(Block &body, int64_t group, ArrayRef<Operation *> members) {
  llvm::DenseSet<Operation *> inGroup(members.begin(), members.end());
  // Workers must not read each other's values.
  for (Operation *op : members)
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp(); def && inGroup.contains(def) &&
                                                     lc::laneOf(def)->worker != lc::laneOf(op)->worker) {
        op->emitWarning("parallel group ")
            << group << " runs in order: worker " << lc::laneOf(op)->worker
            << " reads a value of worker " << lc::laneOf(def)->worker;
        return dropLanes(members);
      }
  // Other ops in the span: before the group unless they depend on it.
  SmallVector<Operation *> before, after;
  llvm::DenseSet<Operation *> dependsOnGroup;
  Operation *last = members.back();
  for (Operation *op = members.front(); op != last->getNextNode(); op = op->getNextNode()) {
    if (inGroup.contains(op))
      continue;
    // An update must follow every reader of its parameter, which the
    // group may hold (the order, not SSA, says so): after it is safe.
    bool depends = isa<lc::AdamWUpdateOp, lc::SgdUpdateOp>(op) ||
                   llvm::any_of(op->getOperands(), [&](Value v) {
                     Operation *def = v.getDefiningOp();
                     return def && (inGroup.contains(def) || dependsOnGroup.contains(def));
                   });
    if (depends) {
      dependsOnGroup.insert(op);
      after.push_back(op);
    } else {
      before.push_back(op);
    }
  }
  for (Operation *op : members)
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp(); def && dependsOnGroup.contains(def)) {
        op->emitWarning("parallel group ")
            << group << " runs in order: '" << def->getName()
            << "' both reads the group and feeds it";
        return dropLanes(members);
      }
  SmallVector<Operation *> workers(members);
  llvm::stable_sort(workers, [](Operation *a, Operation *b) {
    return lc::laneOf(a)->worker < lc::laneOf(b)->worker;
  });
  Operation *anchor = last->getNextNode();
  for (ArrayRef<Operation *> run : {ArrayRef<Operation *>(before), ArrayRef<Operation *>(workers),
                                   ArrayRef<Operation *>(after)})
    for (Operation *op : run)
      op->moveBefore(anchor);
}

} // namespace

void gatherParallelGroups(func::FuncOp func) {
  if (func.getBody().empty())
    return;
  Block &body = func.getBody().front();
  if (llvm::none_of(body, [](Operation &op) { return lc::laneOf(&op).has_value(); }))
    return;
  inferLanes(body);
  llvm::MapVector<int64_t, SmallVector<Operation *>> groups;
  for (Operation &op : body)
    if (std::optional<Lane> lane = lc::laneOf(&op))
      groups[lane->group].push_back(&op);
  for (auto &[group, members] : groups)
    gather(body, group, members);
}

} // namespace longctx
