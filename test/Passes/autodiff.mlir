// RUN: longctx-opt %s -split-input-file -lc-autodiff -canonicalize | FileCheck %s

// A linear model: d loss / d w = x^T (d loss / d y), one GEMM with BLAS's
// transpose flag; the gradient result is named after the parameter.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<f32> {lc.name = "loss"}, tensor<4x3xf32> {lc.grad_of = "w", lc.name = "grad/w"})
// CHECK: %[[W:.*]] = lc.param "w"
// CHECK: %[[Y:.*]] = lc.matmul %[[X:.*]], %[[W]]
// CHECK: %[[LOSS:.*]] = lc.reduce_sum %[[Y]]
// CHECK: %[[G:.*]] = lc.gemm %[[X]], %{{.*}} {trans_a = true} : (tensor<2x4xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK: return %[[LOSS]], %[[G]]
func.func @main(%x: tensor<2x4xf32>) -> tensor<f32> {
  %w = lc.param "w" : tensor<4x3xf32>
  %y = lc.matmul %x, %w : tensor<2x4xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
  %l = lc.reduce_sum %y {axes = array<i64: 0, 1>, keepdims = false} : tensor<2x3xf32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Fan-out: a parameter used twice gets the sum of both contributions.
// The seed cotangent 1 folds away: d(p*p)/dp = p + p.
// CHECK-LABEL: func.func @main
// CHECK: %[[P:.*]] = lc.param "p"
// CHECK: %[[SQ:.*]] = lc.mul %[[P]], %[[P]]
// CHECK: %[[SUM:.*]] = lc.add %[[P]], %[[P]]
// CHECK: return %[[SQ]], %[[SUM]]
func.func @main() -> tensor<f32> {
  %p = lc.param "p" : tensor<f32>
  %sq = lc.mul %p, %p : tensor<f32>, tensor<f32> -> tensor<f32>
  return %sq : tensor<f32>
}

