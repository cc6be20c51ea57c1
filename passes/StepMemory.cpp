//===- StepMemory.cpp - The memory a training step's program order needs -===//
#include "passes/StepMemory.h"
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/ParallelLanes.h"
#include "runtime/ConcurrentLifetimes.h"
#include "runtime/Artifact.h"
#include "runtime/MemoryReport.h"
#include "runtime/cpu/Kernels.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;

namespace longctx {
namespace {

uint64_t padded(uint64_t bytes, uint64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

bool sameDTypeAndSize(Type a, Type b) {
  auto ta = dyn_cast<RankedTensorType>(a), tb = dyn_cast<RankedTensorType>(b);
  return ta && tb && ta.getElementType() == tb.getElementType() &&
         tensorBytes(a) == tensorBytes(b);
}

} // namespace

bool isFilledAtRunTime(lc::ConstantOp constant) {
  auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
  return dense && dense.isSplat() && dense.getNumElements() > kMaxStoredSplatElements;
}

uint64_t tensorBytes(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return 0;
  Type e = tensor.getElementType();
  uint64_t width = e.isInteger(1) ? 1 : (e.getIntOrFloatBitWidth() + 7) / 8;
  return uint64_t(tensor.getNumElements()) * width;
}

bool definesArenaBuffers(Operation *op) {
  if (isa<lc::ParamOp, func::ReturnOp>(op))
    return false;
  if (auto constant = dyn_cast<lc::ConstantOp>(op))
    return isFilledAtRunTime(constant);
  return op->getNumResults() > 0;
}

StepMemory planStepMemory(func::FuncOp func) {
  StepMemory m;
  Block &body = func.getBody().front();
  llvm::DenseMap<Operation *, int64_t> position;
  int64_t end = 0;
  for (Operation &op : body)
    if (!op.hasTrait<OpTrait::IsTerminator>())
      position[&op] = end++;
  llvm::DenseSet<Value> returned;
  for (Value v : body.getTerminator()->getOperands())
    returned.insert(v);

  // Parallel groups: which buffers are private to a worker (every value
  // numbered in block order, as the buffers are made below).
  std::vector<StepLane> lanes(static_cast<size_t>(end));
  for (auto [op, p] : position)
    if (std::optional<lc::Lane> lane = lc::laneOf(op))
      lanes[size_t(p)] = {lane->group, lane->worker};
  ConcurrentLifetimes concurrent(std::move(lanes));
  llvm::DenseMap<Value, size_t> valueIndex;
  auto indexOf = [&](Value v) { return valueIndex.try_emplace(v, valueIndex.size()).first->second; };
  for (BlockArgument arg : body.getArguments())
    concurrent.touch(indexOf(arg), -1);
  for (Operation &op : body) {
    auto it = position.find(&op);
    if (it == position.end())
      continue;
    for (Value result : op.getResults())
      concurrent.touch(indexOf(result), it->second);
    for (Value operand : op.getOperands())
      concurrent.touch(indexOf(operand), it->second);
  }
  for (Value v : returned)
    concurrent.touch(indexOf(v), end);

  llvm::DenseMap<Value, size_t> bufferOf;
  auto lastUse = [&](Value v, int64_t defined) {
    int64_t last = defined;
    for (Operation *user : v.getUsers())
      if (auto it = position.find(user); it != position.end())
        last = std::max(last, it->second);
    return returned.contains(v) ? end : last;
  };
  // The buffer of `v` defined at `first`, widened for parallel groups.
  auto lifetime = [&](Value v, int64_t first) {
    BufferLifetime b{tensorBytes(v.getType()), first, lastUse(v, first), -1};
    StepLane lane = concurrent.finish(valueIndex.lookup(v), b.first, b.last);
    b.group = lane.group;
    b.worker = lane.worker;
    return b;
  };
  for (BlockArgument arg : body.getArguments()) {
    bufferOf[arg] = m.values.size();
    m.values.push_back(arg);
    BufferLifetime b = lifetime(arg, -1);
    b.last = end; // the caller may read an input again after the run
    m.buffers.push_back(b);
  }
  llvm::DenseSet<Value> taken;
  llvm::StringMap<uint64_t> paramBytes;
  for (Operation &op : body) {
    if (auto param = dyn_cast<lc::ParamOp>(op)) {
      uint64_t bytes = tensorBytes(param.getType());
      paramBytes[param.getName()] = bytes;
      m.dataBytes += padded(bytes, kDataAlignment);
      continue;
    }
    if (auto constant = dyn_cast<lc::ConstantOp>(op); constant && !isFilledAtRunTime(constant)) {
      m.dataBytes += padded(tensorBytes(constant.getType()), kDataAlignment);
      continue;
    }
    int states = isa<lc::AdamWUpdateOp>(op) ? 2 : isa<lc::SgdUpdateOp>(op) ? 1 : 0;
    if (states) {
      StringRef name = isa<lc::AdamWUpdateOp>(op) ? cast<lc::AdamWUpdateOp>(op).getParam()
                                                  : cast<lc::SgdUpdateOp>(op).getParam();
      for (int s = 0; s < states; ++s)
        m.stateBytes = padded(m.stateBytes, kDataAlignment) + paramBytes.lookup(name);
    }
    if (!definesArenaBuffers(&op))
      continue;
    int64_t p = position[&op];
    for (OpResult result : op.getResults()) {
      BufferLifetime b = lifetime(result, p);
      // In place, as the builder does: output 0 of an elementwise kernel
      // takes over a same-typed transient operand that dies here.
      if (result.getResultNumber() == 0 && !returned.contains(result) &&
          cpuKernelAllowsInPlace(lc::kernelName(&op))) {
        for (Value operand : op.getOperands()) {
          auto it = bufferOf.find(operand);
          if (it == bufferOf.end() || isa<BlockArgument>(operand) || returned.contains(operand) ||
              taken.contains(operand) || !sameDTypeAndSize(operand.getType(), result.getType()) ||
              m.buffers[it->second].last != p ||
              !concurrent.mayShareInPlace(valueIndex.lookup(operand), valueIndex.lookup(result)))
            continue;
          b.reuses = int64_t(it->second);
          taken.insert(operand);
          break;
        }
      }
      bufferOf[result] = m.values.size();
      m.values.push_back(result);
      m.buffers.push_back(b);
    }
  }
  // CUDA: each kernel's scratch, live for its step (as the artifact plans it;
  // after the values, so value i is buffer i).
  if (lc::compiledForCuda(func))
    for (Operation &op : body)
      if (definesArenaBuffers(&op))
        if (uint64_t bytes = lc::cudaWorkspaceBytesOf(&op)) {
          const int64_t p = position[&op];
          std::optional<lc::Lane> lane = lc::laneOf(&op);
          m.buffers.push_back({bytes, p, p, -1, lane ? lane->group : -1, lane ? lane->worker : -1});
        }
  m.arena = planArena(m.buffers, kArenaAlignment);
  return m;
}

} // namespace longctx
