//===- FuseGatedMlp.cpp - lc-fuse-gated-mlp: SiLU-gated MLP -> lc.gated_mlp ===//
//
// Exported gated MLPs read (x Wg * sigmoid(x Wg)) * (x Wu) @ Wd. The fused op
// never keeps the [rows, F] hidden activations: its kernel streams chunks of
// rows and its backward recomputes them.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/MatchUtils.h"
#include "passes/Passes.h"

namespace longctx {
#define GEN_PASS_DEF_LCFUSEGATEDMLP
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// x @ W with W a matrix: returns (x, W).
std::optional<std::pair<Value, Value>> matchLinear(Value v) {
  auto mm = v.getDefiningOp<lc::MatMulOp>();
  if (!mm || shapeOf(mm.getRhs()).size() != 2)
    return std::nullopt;
  return std::make_pair(mm.getLhs(), mm.getRhs());
}

/// silu(g) = g * sigmoid(g), either order: returns g.
Value matchSilu(Value v) {
  auto mul = v.getDefiningOp<lc::MulOp>();
  if (!mul)
    return {};
  for (auto [g, s] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}})
    if (auto sig = s.getDefiningOp<lc::SigmoidOp>(); sig && sig.getInput() == g)
      return g;
  return {};
}

struct FuseGatedMlpPass : impl::LcFuseGatedMlpBase<FuseGatedMlpPass> {
  void runOnOperation() override {
    SmallVector<lc::MatMulOp> candidates;
    getOperation().walk([&](lc::MatMulOp op) { candidates.push_back(op); });
    for (lc::MatMulOp down : candidates) {
      std::optional<std::pair<Value, Value>> outer = matchLinear(down.getResult());
      if (!outer)
        continue;
      auto gate = outer->first.getDefiningOp<lc::MulOp>();
      if (!gate || !gate->hasOneUse())
        continue;
      for (auto [a, b] : {std::pair{gate.getLhs(), gate.getRhs()}, std::pair{gate.getRhs(), gate.getLhs()}}) {
        Value g = matchSilu(a);
        if (!g)
          continue;
        std::optional<std::pair<Value, Value>> gl = matchLinear(g), ul = matchLinear(b);
        if (!gl || !ul || gl->first != ul->first || shapeOf(gl->second) != shapeOf(ul->second))
          continue;
        OpBuilder builder(down);
        Value fused = builder.create<lc::GatedMlpOp>(down.getLoc(), gl->first, gl->second,
                                                     ul->second, outer->second);
        if (fused.getType() != down.getType())
          break;
        down.getResult().replaceAllUsesWith(fused);
        down.erase();
        break;
      }
    }
  }
};

} // namespace
} // namespace longctx
