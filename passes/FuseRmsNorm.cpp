//===- FuseRmsNorm.cpp - lc-fuse-rms-norm: written-out RMSNorm -> lc.rms_norm ===//
//
// Exporters spell RMSNorm as x * 1/sqrt(mean(x^2) + eps) * w (Pow or Mul
// for the square, Reciprocal, Div(1, .) or Div(x, .) for the inverse). The
// fused op keeps one input for the backward instead of five intermediates.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/MatchUtils.h"
#include "passes/Passes.h"


namespace longctx {
#define GEN_PASS_DEF_LCFUSERMSNORM
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// Whether `sq` is x*x or x^2.
bool isSquareOf(Value sq, Value x) {
  if (auto mul = sq.getDefiningOp<lc::MulOp>())
    return mul.getLhs() == x && mul.getRhs() == x;
  if (auto pow = sq.getDefiningOp<lc::PowOp>())
    return pow.getLhs() == x && splatValue(pow.getRhs()) == 2.0;
  return false;
}

/// If `rms` is sqrt(mean(x^2 over the last dim, keepdims) + eps), returns x and eps.
std::optional<std::pair<Value, double>> matchRms(Value rms) {
  auto sqrt = rms.getDefiningOp<lc::SqrtOp>();
  if (!sqrt)
    return std::nullopt;
  auto add = sqrt.getInput().getDefiningOp<lc::AddOp>();
  if (!add)
    return std::nullopt;
  std::optional<double> eps = splatValue(add.getRhs());
  Value meanValue = add.getLhs();
  if (!eps) {
    eps = splatValue(add.getLhs());
    meanValue = add.getRhs();
  }
  auto mean = meanValue.getDefiningOp<lc::ReduceMeanOp>();
  if (!eps || !mean || !mean.getKeepdims())
    return std::nullopt;
  int64_t rank = int64_t(shapeOf(mean.getInput()).size());
  if (mean.getAxes().size() != 1 || mean.getAxes()[0] != rank - 1)
    return std::nullopt;
  Value sq = mean.getInput();
  Value x = sq.getDefiningOp() && sq.getDefiningOp()->getNumOperands() ? sq.getDefiningOp()->getOperand(0) : Value();
  if (!x || !isSquareOf(sq, x))
    return std::nullopt;
  return std::make_pair(x, *eps);
}

/// If `n` is x / rms(x) written any of the usual ways, returns x and eps.
std::optional<std::pair<Value, double>> matchNormalized(Value n) {
  if (auto div = n.getDefiningOp<lc::DivOp>()) {
    auto m = matchRms(div.getRhs());
    if (m && m->first == div.getLhs())
      return m;
    return std::nullopt;
  }
  auto mul = n.getDefiningOp<lc::MulOp>();
  if (!mul)
    return std::nullopt;
  for (auto [x, inv] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}}) {
    Value rms;
    if (auto r = inv.getDefiningOp<lc::ReciprocalOp>())
      rms = r.getInput();
    else if (auto d = inv.getDefiningOp<lc::DivOp>(); d && splatValue(d.getLhs()) == 1.0)
      rms = d.getRhs();
    if (!rms)
      continue;
    auto m = matchRms(rms);
    if (m && m->first == x)
      return m;
  }
  return std::nullopt;
}

struct FuseRmsNormPass : impl::LcFuseRmsNormBase<FuseRmsNormPass> {
  void runOnOperation() override {
    SmallVector<lc::MulOp> candidates;
    getOperation().walk([&](lc::MulOp op) { candidates.push_back(op); });
    for (lc::MulOp mul : candidates) {
      // y = normalized * w, w 1-D over the last dim, in either order.
      for (auto [n, w] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}}) {
        ArrayRef<int64_t> ws = shapeOf(w), ys = shapeOf(mul.getOutput());
        if (ws.size() != 1 || ys.empty() || ws[0] != ys.back() || shapeOf(n) != ys)
          continue;
        std::optional<std::pair<Value, double>> m = matchNormalized(n);
        if (!m || shapeOf(m->first) != ys)
          continue;
        OpBuilder b(mul);
        Value fused = b.create<lc::RmsNormOp>(mul.getLoc(), m->first, w, b.getF64FloatAttr(m->second));
        mul.getResult().replaceAllUsesWith(fused);
        mul.erase();
        break;
      }
    }
  }
};

} // namespace
} // namespace longctx
