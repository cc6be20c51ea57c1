//===- PlanMemory.cpp - lc-plan-memory: the arena plan, on the IR ---------===//
#include "passes/Passes.h"
#include "passes/StepMemory.h"

#include "mlir/IR/Builders.h"

#include "llvm/ADT/DenseMap.h"

namespace longctx {
#define GEN_PASS_DEF_LCPLANMEMORY
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

struct PlanMemoryPass : impl::LcPlanMemoryBase<PlanMemoryPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.getBody().empty())
      return;
    StepMemory memory = planStepMemory(func);
    llvm::DenseMap<Value, uint64_t> offset;
    for (size_t i = 0; i < memory.values.size(); ++i)
      offset[memory.values[i]] = memory.arena.offsets[i];
    Builder b(&getContext());
    for (Operation &op : func.getBody().front()) {
      if (!definesArenaBuffers(&op))
        continue;
      SmallVector<int64_t> offsets;
      for (Value result : op.getResults())
        offsets.push_back(int64_t(offset.lookup(result)));
      op.setAttr("lc.offsets", b.getDenseI64ArrayAttr(offsets));
    }
    auto bytes = [&](uint64_t v) { return b.getI64IntegerAttr(int64_t(v)); };
    func->setAttr("lc.memory_plan",
                  b.getDictionaryAttr({
                      b.getNamedAttr("arena_bytes", bytes(memory.arena.arenaBytes)),
                      b.getNamedAttr("load_bytes", bytes(memory.arena.loadBytes)),
                      b.getNamedAttr("data_bytes", bytes(memory.dataBytes)),
                      b.getNamedAttr("state_bytes", bytes(memory.stateBytes)),
                      b.getNamedAttr("peak_bytes", bytes(memory.peakBytes())),
                  }));
  }
};

} // namespace
} // namespace longctx
