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
//  - Tensors are dense, row-major and contiguous. Outputs never alias inputs.
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

/// Names of every CPU kernel, sorted.
std::vector<std::string> cpuKernelNames();

/// Runs `op` after checking that it exists; the error names the op.
Status runCpuKernel(std::string_view op, const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs, const AttrMap &attrs);

} // namespace longctx
