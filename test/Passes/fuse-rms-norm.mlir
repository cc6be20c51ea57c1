// RUN: longctx-opt %s -split-input-file -lc-fuse-rms-norm -canonicalize | FileCheck %s

// Our generator: x * reciprocal(sqrt(mean(x*x) + eps)) * w.
// CHECK-LABEL: func.func @reciprocal_form
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>)
// CHECK: %[[W:.*]] = lc.param "norm.weight"
// CHECK-NEXT: %[[Y:.*]] = lc.rms_norm %[[X]], %[[W]] {epsilon = 9.9999997473787516E-6 : f64}
// CHECK-NEXT: return %[[Y]]
func.func @reciprocal_form(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %w = lc.param "norm.weight" : tensor<8xf32>
  %sq = lc.mul %x, %x : tensor<2x4x8xf32>, tensor<2x4x8xf32> -> tensor<2x4x8xf32>
  %m = lc.reduce_mean %sq {axes = array<i64: 2>} : tensor<2x4x8xf32> -> tensor<2x4x1xf32>
  %eps = lc.constant dense<1.0e-5> : tensor<f32>
  %v = lc.add %m, %eps : tensor<2x4x1xf32>, tensor<f32> -> tensor<2x4x1xf32>
  %r = lc.sqrt %v : tensor<2x4x1xf32>
  %i = lc.reciprocal %r : tensor<2x4x1xf32>
  %n = lc.mul %x, %i : tensor<2x4x8xf32>, tensor<2x4x1xf32> -> tensor<2x4x8xf32>
  %y = lc.mul %n, %w : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4x8xf32>
  return %y : tensor<2x4x8xf32>
}

// -----

// PyTorch's x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
// exports as Pow, ReduceMean, Add, Sqrt, Div(1, .), Mul, Mul(weight first).
// CHECK-LABEL: func.func @torch_form
// CHECK: lc.rms_norm
// CHECK-NOT: lc.sqrt
func.func @torch_form(%x: tensor<1x3x4xf32>) -> tensor<1x3x4xf32> {
  %w = lc.param "w" : tensor<4xf32>
  %two = lc.constant dense<2.0> : tensor<f32>
  %sq = lc.pow %x, %two : tensor<1x3x4xf32>, tensor<f32> -> tensor<1x3x4xf32>
  %m = lc.reduce_mean %sq {axes = array<i64: 2>} : tensor<1x3x4xf32> -> tensor<1x3x1xf32>
  %eps = lc.constant dense<1.0e-6> : tensor<f32>
  %v = lc.add %m, %eps : tensor<1x3x1xf32>, tensor<f32> -> tensor<1x3x1xf32>
  %r = lc.sqrt %v : tensor<1x3x1xf32>
  %one = lc.constant dense<1.0> : tensor<f32>
  %i = lc.div %one, %r : tensor<f32>, tensor<1x3x1xf32> -> tensor<1x3x1xf32>
  %n = lc.mul %x, %i : tensor<1x3x4xf32>, tensor<1x3x1xf32> -> tensor<1x3x4xf32>
  %y = lc.mul %w, %n : tensor<4xf32>, tensor<1x3x4xf32> -> tensor<1x3x4xf32>
  return %y : tensor<1x3x4xf32>
}

// -----

// A mean over another axis is not RMSNorm.
// CHECK-LABEL: func.func @other_axis
// CHECK-NOT: lc.rms_norm
func.func @other_axis(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %w = lc.param "w" : tensor<8xf32>
  %sq = lc.mul %x, %x : tensor<2x4x8xf32>, tensor<2x4x8xf32> -> tensor<2x4x8xf32>
  %m = lc.reduce_mean %sq {axes = array<i64: 1>} : tensor<2x4x8xf32> -> tensor<2x1x8xf32>
  %eps = lc.constant dense<1.0e-5> : tensor<f32>
  %v = lc.add %m, %eps : tensor<2x1x8xf32>, tensor<f32> -> tensor<2x1x8xf32>
  %r = lc.sqrt %v : tensor<2x1x8xf32>
  %i = lc.reciprocal %r : tensor<2x1x8xf32>
  %n = lc.mul %x, %i : tensor<2x4x8xf32>, tensor<2x1x8xf32> -> tensor<2x4x8xf32>
  %y = lc.mul %n, %w : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4x8xf32>
  return %y : tensor<2x4x8xf32>
}
