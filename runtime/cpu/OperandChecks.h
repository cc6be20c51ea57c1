//===- OperandChecks.h - Operand checks the CPU and CUDA kernels share ---===//
//
// What an op's operands and attributes must be, checked once for the CPU
// kernels and their CUDA twins alike (the same checks, the same messages).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <initializer_list>
#include <tuple>
#include <utility>
#include <vector>

namespace longctx {
namespace cpu {

/// Checks that each (name, tensor) has `dtype` and the given shape.
Status checkOperands(
    const char *op, DType dtype,
    std::initializer_list<std::tuple<const char *, const TensorRef *, Shape>> list);

/// Checks transpose's `perm` (default: reversed dims) against x and o, and
/// gives the input stride of each output dim.
Status resolveTranspose(const char *op, const TensorRef &x, const TensorRef &o,
                        const AttrMap &attrs, std::vector<int64_t> &inStrides);

/// The strided region of `big` that `slice` reads and `slice_scatter`
/// writes: element i of `small` is big[base + sum(i_d * strides[d])].
struct SliceRegion {
  int64_t base = 0;
  std::vector<int64_t> strides;
};

/// Checks the starts/steps (and optional sizes) attributes of a slice of
/// `big` with shape `small` and resolves them to element offsets.
Status resolveSlice(const char *op, const AttrMap &attrs, const Shape &big, const Shape &small,
                    const char *smallName, SliceRegion &region);

/// rms_norm(x, scale) and its gradient: scale 1-D over x's last dim, the
/// output (or dx) like x; gives the rows and their length.
Status checkRmsNorm(const char *op, const TensorRef &x, const TensorRef &scale,
                    const TensorRef &out, int64_t &rows, int64_t &n);

/// matmul(a, b) -> o with ONNX MatMul's shapes (a 1-D a is a row, a 1-D b a
/// column, the added dim dropped; batch dims broadcast), all of a's dtype,
/// the matrix dims within BLAS's int.
struct MatMulDims {
  int64_t m = 0, n = 0, k = 0;
  Shape batch, aBatch, bBatch; // the result's batch dims, and each operand's
};
Status resolveMatMul(const char *op, const TensorRef &a, const TensorRef &b, const TensorRef &o,
                     MatMulDims &dims);

/// gemm(a, b[, c]) {alpha, beta, trans_a, trans_b} -> o = alpha op(a) op(b)
/// + beta c, a and b 2-D, c broadcast to o [m, n], all of a's dtype.
struct GemmDims {
  int64_t m = 0, n = 0, k = 0;
  bool transA = false, transB = false;
  double alpha = 1, beta = 1;
};
Status resolveGemm(const char *op, const std::vector<TensorRef> &inputs, const TensorRef &o,
                   const AttrMap &attrs, GemmDims &dims);

/// gather(data, indices) {axis} -> gathered and its adjoint scatter_add:
/// data viewed as [outer, axisLen, inner] around the axis, the gathered
/// tensor as [outer, numIdx, inner]. Checks shapes and the index dtype; the
/// indices' values are the caller's to check (the CPU before it runs, CUDA
/// on the device).
struct GatherView {
  int64_t outer = 1, axisLen = 1, inner = 1, numIdx = 0;
};
Status resolveGatherShape(const char *op, const Shape &data, const TensorRef &indices,
                          const Shape &gathered, const char *gatheredName, const AttrMap &attrs,
                          GatherView &view);
/// A whole gather(data, indices) -> output or scatter_add(grad, indices) ->
/// output step (`scatter`; output has the gathered data's shape): arity,
/// dtypes and the view.
Status resolveGatherOperands(const char *op, bool scatter, const std::vector<TensorRef> &inputs,
                             const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                             GatherView &view);

/// concat(x0, x1, ...) {axis} -> o: the inputs agree with o but along the
/// axis, where they add up to it; o viewed as [outer, ..., innerBytes].
Status resolveConcat(const char *op, const std::vector<TensorRef> &inputs, const TensorRef &o,
                     const AttrMap &attrs, int64_t &outer, int64_t &innerBytes);

/// cross_entropy(logits[..., V], targets[...]) {shift, ignore_index} and its
/// gradients: logits viewed as [rows, vocab]; with shift 1 row r is labelled
/// targets[r + 1] and a sequence's last row (r % seqLen == seqLen - 1) is
/// unused. The labels' values are the caller's to check.
struct CrossEntropyShape {
  int64_t rows = 0, vocab = 0, shift = 1, seqLen = 1, ignoreIndex = -100;
};
Status resolveCrossEntropyShape(const char *op, const TensorRef &logits, const TensorRef &targets,
                                const AttrMap &attrs, CrossEntropyShape &shape);
/// The three cross-entropy steps: cross_entropy (logits, targets) -> loss,
/// cross_entropy_grad (logits, targets, dloss) -> dlogits, and
/// cross_entropy_and_grad (logits, targets) -> (loss, dlogits), never shifted.
enum class CrossEntropyStep { Loss, Grad, LossAndGrad };
/// A whole cross-entropy step: arity, the outputs' (and dloss's) dtypes and
/// shapes, and the shape.
Status resolveCrossEntropyOperands(const char *op, CrossEntropyStep step,
                                   const std::vector<TensorRef> &inputs,
                                   const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                                   CrossEntropyShape &shape);

/// Sizes of a selective scan: u [batch, seq, e], A [e, n].
struct ScanDims {
  int64_t batch = 0, seq = 0, e = 0, n = 0;
};
/// Checks the five forward operands (u, delta, A, B, C) starting at
/// inputs[first], and that each tensor of `same` has u's dtype and shape.
Status resolveScan(const char *op, const std::vector<TensorRef> &inputs, size_t first,
                   std::initializer_list<std::pair<const char *, const TensorRef *>> same,
                   ScanDims &dims);
/// Checks that `t` is a state [batch, e, n] of the scan's dtype.
Status checkState(const char *op, const char *name, const TensorRef &t, const ScanDims &dims,
                  DType dtype);

/// attention(q [B,H,S,D], k [B,Hk,T,D], v [B,Hk,T,Dv]) {scale, causal} and
/// its gradient.
struct AttentionDims {
  int64_t b = 0, h = 0, hk = 0, s = 0, t = 0, d = 0, dv = 0;
  int64_t group = 1;  // query heads per kv head
  int64_t offset = 0; // T - S: query i sees keys j <= i + offset (causal)
  double scale = 1;
  bool causal = true;
};
/// Checks q, k, v (ranks, matching B/D/Hk/T, H a multiple of Hk, one float
/// dtype) and reads the scale and causal attributes.
Status resolveAttention(const char *op, const TensorRef &q, const TensorRef &k,
                        const TensorRef &v, const AttrMap &attrs, AttentionDims &dims);
/// A whole attention step (q, k, v) -> (o, lse), or with `grad` an
/// attention_grad step (do, q, k, v, o, lse) -> (dq, dk, dv): arity, q/k/v
/// and every other operand's dtype and shape.
Status resolveAttentionOperands(const char *op, bool grad, const std::vector<TensorRef> &inputs,
                                const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                                AttentionDims &dims);

/// selective_scan_carry(dy, delta, A, C) -> (carry, decay): dy and delta
/// [B,S,E], A [E,N], C [B,S,N], both results [B,E,N], one dtype.
Status resolveScanCarry(const char *op, const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs, ScanDims &dims);
/// selective_scan_carry_combine(carries, decays [K*B,E,N], dfinal [B,E,N])
/// -> (dlast [K*B,E,N], dinit [B,E,N]), one dtype; gives K.
Status resolveCarryCombine(const char *op, const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs, int64_t &shards);

/// selective_scan_grad (dy, u, delta, A, B, C) and selective_scan_state_grad
/// (dy, d final state, u, delta, A, B, C, h0) {truncate}: the gradients'
/// shapes, the state cotangents (adjoint windows [B,T,E,N] when truncated),
/// and an optional last output y.
struct ScanGradShape {
  ScanDims dims;
  size_t first = 1, results = 5; // u's index; gradients before y
  bool withOutput = false;
  int64_t truncate = 0;
};
Status resolveScanGrad(const char *op, bool withState, const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                       ScanGradShape &shape);

} // namespace cpu
} // namespace longctx
