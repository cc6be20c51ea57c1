//===- FuseAttention.cpp - lc-fuse-attention: exported SDPA -> lc.attention ===//
//
// Exported attention materialises B x H x S x T scores, probabilities and
// their gradients; lc.attention runs FlashAttention-2 with O(S) memory. The
// matcher walks up from the values matmul through the softmax, the mask, the
// scale and the scores matmul, and checks that the mask is causal.
//
//===----------------------------------------------------------------------===//
#include "dialects/lc/LcOps.h"
#include "passes/MatchUtils.h"
#include "passes/Passes.h"


namespace longctx {
#define GEN_PASS_DEF_LCFUSEATTENTION
#include "passes/Passes.h.inc"
} // namespace longctx

using namespace mlir;

namespace longctx {
namespace {

/// Whether `v` is [S, T] with any number of leading 1s: one mask for every
/// batch and head.
bool isScoreMatrixShaped(Value v, int64_t s, int64_t t) {
  ArrayRef<int64_t> shape = shapeOf(v);
  if (shape.size() < 2 || shape[shape.size() - 2] != s || shape.back() != t)
    return false;
  return llvm::all_of(shape.drop_back(2), [](int64_t d) { return d == 1; });
}

/// Whether element `i` of a row-major [S, T] score matrix is a key its
/// query may see: j <= i + T - S (bottom-right aligned).
bool causallyVisible(int64_t i, int64_t s, int64_t t) {
  int64_t row = (i / t) % s, col = i % t;
  return col <= row + t - s;
}

/// Whether boolean `mask` (broadcastable to [S, T]) keeps exactly the keys
/// j <= i + T - S (`keepIsTrue`), or exactly the others (!keepIsTrue).
bool isCausalMask(Value mask, int64_t s, int64_t t, bool keepIsTrue) {
  if (!isScoreMatrixShaped(mask, s, t))
    return false;
  DenseElementsAttr attr;
  if (matchPattern(mask, m_Constant(&attr))) {
    int64_t i = 0;
    for (bool keep : attr.getValues<bool>()) {
      if (keep != (causallyVisible(i, s, t) == keepIsTrue))
        return false;
      ++i;
    }
    return true;
  }
  // Too large to have been folded: cast(trilu(splat != 0)) or trilu of bools.
  Value v = mask;
  if (auto cast = v.getDefiningOp<lc::CastOp>())
    v = cast.getInput();
  auto trilu = v.getDefiningOp<lc::TriluOp>();
  if (!trilu)
    return false;
  DenseElementsAttr ones;
  if (!matchPattern(trilu.getInput(), m_Constant(&ones)) || !ones.isSplat())
    return false;
  // Lower triangle with k = T - S keeps j <= i + k; upper with k = T - S + 1
  // keeps the complement.
  if (keepIsTrue)
    return !trilu.getUpper() && trilu.getK() == t - s;
  return trilu.getUpper() && trilu.getK() == t - s + 1;
}

/// Whether `bias` (broadcastable to [S, T]) is an additive causal mask: 0
/// where key j <= i + T - S, a very negative value elsewhere. Either a
/// constant, or (too large to have been folded) a Trilu keeping the strict
/// upper triangle of a very negative splat.
bool isAdditiveCausalMask(Value bias, int64_t s, int64_t t) {
  if (!isScoreMatrixShaped(bias, s, t))
    return false;
  DenseElementsAttr attr;
  if (matchPattern(bias, m_Constant(&attr))) {
    if (!isa<FloatType>(attr.getElementType()))
      return false;
    int64_t i = 0;
    for (const APFloat &v : attr.getValues<APFloat>()) {
      double x = v.convertToDouble();
      if (causallyVisible(i, s, t) ? x != 0.0 : x > -1e4)
        return false;
      ++i;
    }
    return true;
  }
  auto trilu = bias.getDefiningOp<lc::TriluOp>();
  std::optional<double> fill = trilu ? splatValue(trilu.getInput()) : std::nullopt;
  return trilu && fill && *fill <= -1e4 && trilu.getUpper() && trilu.getK() == t - s + 1;
}

/// Undoes exporters' grouped-query repetition of k or v:
/// reshape([B,Hk,T,D] -> [B,Hk,1,T,D]) -> expand(r) -> reshape([B,Hk*r,T,D]).
Value peelKvRepeat(Value v) {
  auto outer = v.getDefiningOp<lc::ReshapeOp>();
  if (!outer)
    return v;
  auto expand = outer.getInput().getDefiningOp<lc::ExpandOp>();
  if (!expand)
    return v;
  auto inner = expand.getInput().getDefiningOp<lc::ReshapeOp>();
  if (!inner)
    return v;
  ArrayRef<int64_t> base = shapeOf(inner.getInput()), spread = shapeOf(inner.getOutput()),
                    expanded = shapeOf(expand.getOutput()), result = shapeOf(outer.getOutput());
  if (base.size() != 4 || spread.size() != 5 || expanded.size() != 5 || result.size() != 4)
    return v;
  bool repeat = spread[0] == base[0] && spread[1] == base[1] && spread[2] == 1 &&
                spread[3] == base[2] && spread[4] == base[3] && expanded[0] == base[0] &&
                expanded[1] == base[1] && expanded[3] == base[2] && expanded[4] == base[3] &&
                result[1] == base[1] * expanded[2];
  return repeat ? inner.getInput() : v;
}

struct FuseAttentionPass : impl::LcFuseAttentionBase<FuseAttentionPass> {
  void runOnOperation() override {
    SmallVector<lc::MatMulOp> candidates;
    getOperation().walk([&](lc::MatMulOp op) {
      if (op.getLhs().getDefiningOp<lc::SoftmaxOp>())
        candidates.push_back(op);
    });
    for (lc::MatMulOp pv : candidates)
      tryFuse(pv);
  }

  void tryFuse(lc::MatMulOp pv) {
    auto softmax = pv.getLhs().getDefiningOp<lc::SoftmaxOp>();
    auto remark = [&](const Twine &why) { pv.emitRemark("attention not fused: ") << why; };
    ArrayRef<int64_t> probShape = shapeOf(softmax.getOutput());
    if (probShape.size() != 4 || softmax.getAxis() != 3)
      return remark("the softmax is not over the last axis of a [B,H,S,T] tensor");
    if (!softmax->hasOneUse())
      return remark("the attention probabilities have other users");
    int64_t s = probShape[2], t = probShape[3];

    // Optional causal mask.
    Value scores = softmax.getInput();
    bool causal = false;
    if (auto where = scores.getDefiningOp<lc::WhereOp>()) {
      std::optional<double> fillX = splatValue(where.getX()), fillY = splatValue(where.getY());
      bool keepIsTrue = fillY && *fillY <= -1e4;
      bool keepIsFalse = fillX && *fillX <= -1e4;
      if (!keepIsTrue && !keepIsFalse)
        return remark("the masked fill is not a very negative constant");
      if (!isCausalMask(where.getCondition(), s, t, keepIsTrue))
        return remark("the mask is not causal");
      scores = keepIsTrue ? where.getX() : where.getY();
      causal = true;
    }

    // Or an additive mask: scores + (0 below the diagonal, -inf above).
    if (auto add = scores.getDefiningOp<lc::AddOp>(); add && !causal) {
      for (auto [x, bias] : {std::pair{add.getLhs(), add.getRhs()}, std::pair{add.getRhs(), add.getLhs()}})
        if (shapeOf(x) == probShape && isAdditiveCausalMask(bias, s, t)) {
          scores = x;
          causal = true;
          break;
        }
      if (!causal)
        return remark("the added mask is not causal");
    }

    // Optional scale.
    double scale = 1.0;
    if (auto mul = scores.getDefiningOp<lc::MulOp>()) {
      if (std::optional<double> c = splatValue(mul.getRhs()); c && shapeOf(mul.getRhs()).size() <= 4) {
        scale = *c;
        scores = mul.getLhs();
      }
    } else if (auto div = scores.getDefiningOp<lc::DivOp>()) {
      if (std::optional<double> c = splatValue(div.getRhs()); c && *c != 0) {
        scale = 1.0 / *c;
        scores = div.getLhs();
      }
    }
    if (shapeOf(scores) != probShape)
      return remark("the scale or mask broadcasts the scores");

    auto qk = scores.getDefiningOp<lc::MatMulOp>();
    if (!qk)
      return remark("the scores are not a matmul");
    Value q = qk.getLhs(), kt = qk.getRhs(), v = pv.getRhs();
    if (shapeOf(q).size() != 4 || shapeOf(kt).size() != 4 || shapeOf(v).size() != 4)
      return remark("q, k and v are not [B,H,S,D] tensors");
    if (shapeOf(q).take_front(2) != shapeOf(kt).take_front(2) ||
        shapeOf(v).take_front(2) != shapeOf(q).take_front(2))
      return remark("q, k and v do not share batch and head dims");

    OpBuilder b(pv);
    Location loc = pv.getLoc();
    // k^T -> k: through the transpose when there is one.
    Value k;
    if (auto tr = kt.getDefiningOp<lc::TransposeOp>();
        tr && llvm::equal(tr.getPerm(), ArrayRef<int64_t>{0, 1, 3, 2}))
      k = tr.getInput();
    else
      k = b.create<lc::TransposeOp>(loc, kt, b.getDenseI64ArrayAttr({0, 1, 3, 2}));
    k = peelKvRepeat(k);
    v = peelKvRepeat(v);
    if (shapeOf(k)[1] != shapeOf(v)[1] || shapeOf(q)[1] % shapeOf(k)[1] != 0)
      return remark("keys and values have different head counts");

    auto attention = b.create<lc::AttentionOp>(loc, q, k, v, b.getF64FloatAttr(scale),
                                               b.getBoolAttr(causal));
    pv.getResult().replaceAllUsesWith(attention.getOutput());
    pv.erase();
  }
};

} // namespace
} // namespace longctx
