//===- Kernels.h - The CPU kernel library: one function per `lc` op --------===//
//
// Every op the compiler schedules has a CPU kernel here, looked up by the op's
// kernel name (the `lc` op name without the dialect prefix). The compiler uses
// the same kernels to fold constants, so there is one definition of what an op
// computes.
//
// Contract for every kernel:
//  - Shapes are static and already checked by the compiler; the caller passes
//    outputs preallocated with their final dtype and shape. Kernels still check
//    what they rely on (ranks, element counts, dtypes) and return an error
//    Status instead of reading out of bounds; data-dependent errors (a Gather
//    index out of range) are reported the same way.
//  - Tensors are dense, row-major and contiguous. Outputs never alias inputs,
//    except (a) the optimizer updates (adamw_update, sgd_update): their
//    output k is input k updated in place (distinct buffers work too), and
//    (b) kernels listed by cpuKernelAllowsInPlace: output 0 may be the very
//    buffer of an input with its dtype and element count (element i is read
//    before element i is written, and no other element is read after it).
//  - Attributes are normalised by the compiler: axes are non-negative, perms
//    complete, slice parameters given for every dimension.
//  - Float kernels support f32 and f64 (f64 is used by gradient checks);
//    integer kernels i64 and i32; logical kernels bool (one byte, 0 or 1).
//  - Work is spread over the machine's cores (OpenMP); GEMMs go to BLAS.
//
// Ops (inputs -> output; attributes in braces):
//  Binary, multidirectional (numpy) broadcasting of inputs of any rank to the
//  output shape:
//    add sub mul div pow max min        (float; add sub mul div max min also int)
//    equal less greater                 (float, int, equal also bool) -> bool
//    and or                             (bool)
//  Unary, same shape:
//    neg exp log sqrt reciprocal tanh erf sigmoid softplus relu cos sin abs
//    (float; neg abs relu also int), not (bool), identity (any: copy),
//    cast (any -> output dtype; float->int truncates toward zero, bool is x!=0)
//    softplus is computed stably as max(x,0) + log1p(exp(-|x|)).
//  where(cond:bool, x, y)               broadcasting all three to the output
//  matmul(a[...,M,K], b[...,K,N])       ONNX MatMul on rank >= 2 operands;
//                                       batch dims broadcast (float)
//  gemm(a, b[, c]) {alpha, beta, trans_a, trans_b}: alpha*op(a)op(b) + beta*c,
//                                       c broadcast to [M,N] (float)
//  transpose(x) {perm}
//  reshape(x)                           copy; element counts must agree
//  expand(x)                            numpy broadcast of x to the output shape
//  slice(x) {starts, steps}             per dimension of x: output index i of
//                                       dim d reads x index starts[d]+i*steps[d]
//                                       (steps may be negative, never 0)
//  concat(x0, x1, ...) {axis}
//  gather(data, indices:i64|i32) {axis} ONNX Gather; negative indices count
//                                       from the end; out of range is an error
//  softmax(x) {axis}, log_softmax(x) {axis}   along one axis (float)
//  reduce_sum, reduce_mean, reduce_max (x) {axes (sorted), keepdims 0|1}
//                                       the output shape says what was kept
//  cumsum(x) {axis, exclusive 0|1, reverse 0|1}   running sum (ONNX CumSum)
//  trilu(x) {upper 0|1, k}              on the last two dims, ONNX Trilu
//  range() {start, delta}               output[i] = start + i*delta
//  fill() {value}                       every output element = value
//  layer_norm(x, scale[, bias]) {axis, epsilon}: normalise over dims >= axis
//  selective_scan(u[B,S,E], delta[B,S,E], A[E,N], Bm[B,S,N], C[B,S,N]) -> y[B,S,E]
//      h_t = exp(delta_t*A) * h_{t-1} + (delta_t*u_t) B_t,  y_t = <h_t, C_t>, h_0 = 0
//  attention(q[B,H,S,D], k[B,Hk,T,D], v[B,Hk,T,Dv]) {scale (1/sqrt(D)),
//      causal 0|1 (1)} -> (o[B,H,S,Dv], lse[B,H,S]): o = softmax(scale*q k^T
//      + mask) v, fused (FlashAttention-2: tiles, online softmax, no S x T
//      buffer). Grouped-query: H is a multiple of Hk, query head h reads kv
//      head h / (H/Hk). Causal: query i sees keys j <= i + T - S (bottom-right
//      aligned). lse = log(sum over seen j of exp(scale*q_i.k_j)), q's dtype;
//      a query that sees no key (causal with S > T, or T = 0) gets o = 0 and
//      lse = -inf.
//
//  Training: gradients (adjoints of forward ops), loss, optimizer updates.
//  Float kernels (except slice_scatter); outputs listed after "->".
//  slice_scatter(src) {starts, steps} -> out   the adjoint of slice: zeros,
//                                       with out[starts[d]+i*steps[d]] = src[i]
//                                       (any dtype)
//  scatter_add(grad, indices:i64|i32) {axis} -> out (the gather's data shape)
//                                       the adjoint of gather: out = 0, then
//                                       out[..,idx,..] += grad[..,pos,..] for
//                                       every index position (repeats add up);
//                                       negative indices count from the end
//  layer_norm_grad(dy, x, scale) {axis, epsilon} -> (dx, dscale, dbias)
//                                       dscale, dbias have scale's shape
//  rms_norm(x, scale[D]) {epsilon}      x / sqrt(mean(x^2 over the last dim) + eps) * scale
//  rms_norm_grad(dy, x, scale) {epsilon} -> (dx, dscale)
//  gated_mlp(x[..., D], w_gate[D,F], w_up[D,F], w_down[F,E]) -> [..., E]
//      (silu(x w_gate) * (x w_up)) w_down, over chunks of rows
//  gated_mlp_grad(dy, x, w_gate, w_up, w_down) -> (dx, dw_gate, dw_up, dw_down)
//      recomputes each chunk's hidden activations
//  selective_scan_grad(dy, u, delta, A, Bm, C) {chunk}
//      -> (du, ddelta, dA, dB, dC): the states are kept for the whole sequence
//      when they fit in 2 MiB per task, else recomputed from checkpoints
//      every `chunk` steps (default 64; a given chunk > 0 always applies)
//  selective_scan_state(u, delta, A, Bm, C, h0[B,E,N]) -> (y, final state
//      [B,E,N]): the scan from state h0 instead of zeros (one time shard)
//  selective_scan_state_grad(dy, dfinal[B,E,N], u, delta, A, Bm, C, h0)
//      {chunk} -> (du, ddelta, dA, dB, dC, dh0): the reverse scan starting
//      from the final state's cotangent
//  selective_scan_carry(dy, delta, A, C) -> (carry, decay [B,E,N]): a
//      shard's dh0 for a zero final cotangent, and prod exp(delta A)
//  selective_scan_carry_combine(carries, decays [K*B,E,N], dfinal[B,E,N])
//      -> (dlast [K*B,E,N], dinit [B,E,N]): the shards' carries chained
//  attention_grad(do[B,H,S,Dv], q, k, v, o, lse) {scale, causal}
//      -> (dq, dk, dv) of q's, k's, v's shapes: the gradient of sum(do * o)
//      for o, lse from attention with the same attributes (FlashAttention-2
//      backward, P recomputed per tile; deterministic for any thread count);
//      dk, dv sum over the query heads sharing a kv head
//  cross_entropy(logits[..., V], targets:i64|i32 [...]) {shift 0|1 (1),
//      ignore_index (-100)} -> loss (rank 0, logits' dtype): the mean over
//      counted positions of logsumexp(row) - row[label]; 0 if none counted.
//      shift 0: position p is labelled targets[p]; shift 1 (next token):
//      position s of a sequence (targets' last dim) is labelled
//      targets[..., s+1] and the sequence's last position is unused. Labels
//      equal to ignore_index are not counted; other labels outside [0, V) are
//      an error (targets that label no position are not read).
//  cross_entropy_grad(logits, targets, dloss:rank 0) {shift, ignore_index}
//      -> dlogits: dloss/count * (softmax(row) - onehot(label)) on counted
//      rows, 0 on the others. Both take {reduction 0|1 (0)}: 1 sums over
//      counted rows instead of averaging (no division by count).
//  cross_entropy_and_grad(logits[rows, V], targets[rows]) {ignore_index}
//      -> (loss, dlogits): the summed loss (no shift) and its gradient for
//      dloss = 1, in one pass per row
//  adamw_update(param, m, v, grad, lr, step, scale) {beta1 (0.9), beta2
//      (0.999), epsilon (1e-8), weight_decay (0.01)} -> (param, m, v), in
//      place: torch.optim.AdamW on g = grad*scale. lr, scale: rank 0 of
//      param's dtype; step (>= 1): rank 0 f32, f64, i64 or i32.
//  sgd_update(param, buf, grad, lr, scale) {momentum (0), weight_decay (0),
//      nesterov 0|1} -> (param, buf), in place: torch.optim.SGD (dampening 0)
//      on g = grad*scale, buf starting at 0; buf is unchanged without momentum
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <string>
#include <string_view>
#include <vector>

namespace longctx {

using KernelFn = Status (*)(const std::vector<TensorRef> &inputs,
                            const std::vector<TensorRef> &outputs,
                            const AttrMap &attrs);

/// The CPU kernel for `op`, or nullptr when there is none.
KernelFn lookupCpuKernel(std::string_view op);

/// Whether output 0 of `op` may share the buffer of an input of the same
/// dtype and element count (the memory planner's in-place reuse).
bool cpuKernelAllowsInPlace(std::string_view op);

/// Names of every CPU kernel, sorted.
std::vector<std::string> cpuKernelNames();

/// Runs `op` after checking that it exists; the error names the op.
Status runCpuKernel(std::string_view op, const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs, const AttrMap &attrs);

} // namespace longctx
