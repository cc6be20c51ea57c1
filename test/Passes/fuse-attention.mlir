// RUN: longctx-opt %s -split-input-file -lc-fuse-attention -canonicalize | FileCheck %s

// Our generator's form: Where(causal mask, scores * 1/sqrt(d), lowest).
// CHECK-LABEL: func.func @where_keep_mask
// CHECK-SAME: (%[[Q:.*]]: tensor<1x2x4x8xf32>, %[[K:.*]]: tensor<1x2x4x8xf32>, %[[V:.*]]: tensor<1x2x4x8xf32>)
// CHECK: %[[O:.*]], %{{.*}} = lc.attention %[[Q]], %[[K]], %[[V]] {causal = true, scale = 0.353553{{[0-9]*}} : f64}
// CHECK-NOT: lc.softmax
// CHECK: return %[[O]]
func.func @where_keep_mask(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x4x8xf32> -> tensor<1x2x8x4xf32>
  %s = lc.matmul %q, %kt : tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x4x4xf32>
  %c = lc.constant dense<0.353553385> : tensor<f32>
  %scaled = lc.mul %s, %c : tensor<1x2x4x4xf32>, tensor<f32> -> tensor<1x2x4x4xf32>
  %mask = lc.constant dense<[[true, false, false, false], [true, true, false, false], [true, true, true, false], [true, true, true, true]]> : tensor<4x4xi1>
  %low = lc.constant dense<-3.40282347E+38> : tensor<f32>
  %m = lc.where %mask, %scaled, %low : tensor<4x4xi1>, tensor<1x2x4x4xf32>, tensor<f32> -> tensor<1x2x4x4xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x2x4x4xf32>
  %o = lc.matmul %p, %v : tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32> -> tensor<1x2x4x8xf32>
  return %o : tensor<1x2x4x8xf32>
}

// -----

// PyTorch's masked_fill form: Where(strict upper triangle, fill, scores / c),
// grouped-query keys and values repeated by reshape -> expand -> reshape.
// CHECK-LABEL: func.func @torch_masked_fill_gqa
// CHECK-SAME: (%[[Q:.*]]: tensor<1x4x3x8xf32>, %[[K:.*]]: tensor<1x2x3x8xf32>, %[[V:.*]]: tensor<1x2x3x8xf32>)
// CHECK: lc.attention %[[Q]], %[[K]], %[[V]] {causal = true, scale = 5.000000e-01 : f64} : (tensor<1x4x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>)
func.func @torch_masked_fill_gqa(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x3x8xf32>, %v: tensor<1x2x3x8xf32>) -> tensor<1x4x3x8xf32> {
  %k5 = lc.reshape %k : tensor<1x2x3x8xf32> -> tensor<1x2x1x3x8xf32>
  %ke = lc.expand %k5 : tensor<1x2x1x3x8xf32> -> tensor<1x2x2x3x8xf32>
  %kr = lc.reshape %ke : tensor<1x2x2x3x8xf32> -> tensor<1x4x3x8xf32>
  %v5 = lc.reshape %v : tensor<1x2x3x8xf32> -> tensor<1x2x1x3x8xf32>
  %ve = lc.expand %v5 : tensor<1x2x1x3x8xf32> -> tensor<1x2x2x3x8xf32>
  %vr = lc.reshape %ve : tensor<1x2x2x3x8xf32> -> tensor<1x4x3x8xf32>
  %kt = lc.transpose %kr {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x3x8xf32> -> tensor<1x4x8x3xf32>
  %s = lc.matmul %q, %kt : tensor<1x4x3x8xf32>, tensor<1x4x8x3xf32> -> tensor<1x4x3x3xf32>
  %two = lc.constant dense<2.0> : tensor<f32>
  %scaled = lc.div %s, %two : tensor<1x4x3x3xf32>, tensor<f32> -> tensor<1x4x3x3xf32>
  %upper = lc.constant dense<[[false, true, true], [false, false, true], [false, false, false]]> : tensor<3x3xi1>
  %fill = lc.constant dense<0xFF800000> : tensor<f32>
  %m = lc.where %upper, %fill, %scaled : tensor<3x3xi1>, tensor<f32>, tensor<1x4x3x3xf32> -> tensor<1x4x3x3xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x4x3x3xf32>
  %o = lc.matmul %p, %vr : tensor<1x4x3x3xf32>, tensor<1x4x3x8xf32> -> tensor<1x4x3x8xf32>
  return %o : tensor<1x4x3x8xf32>
}

// -----

// At long S the mask is not folded: a Trilu of ones, cast to bool.
// CHECK-LABEL: func.func @unfolded_trilu_mask
// CHECK: lc.attention
// CHECK-SAME: causal = true
func.func @unfolded_trilu_mask(%q: tensor<1x1x2048x4xf32>, %k: tensor<1x1x2048x4xf32>, %v: tensor<1x1x2048x4xf32>) -> tensor<1x1x2048x4xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x2048x4xf32> -> tensor<1x1x4x2048xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x2048x4xf32>, tensor<1x1x4x2048xf32> -> tensor<1x1x2048x2048xf32>
  %ones = lc.constant dense<1.0> : tensor<2048x2048xf32>
  %tri = lc.trilu %ones {upper = false, k = 0 : i64} : tensor<2048x2048xf32>
  %mask = lc.cast %tri : tensor<2048x2048xf32> -> tensor<2048x2048xi1>
  %low = lc.constant dense<-1.0e9> : tensor<f32>
  %m = lc.where %mask, %s, %low : tensor<2048x2048xi1>, tensor<1x1x2048x2048xf32>, tensor<f32> -> tensor<1x1x2048x2048xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x1x2048x2048xf32>
  %o = lc.matmul %p, %v : tensor<1x1x2048x2048xf32>, tensor<1x1x2048x4xf32> -> tensor<1x1x2048x4xf32>
  return %o : tensor<1x1x2048x4xf32>
}

// -----

// No mask: bidirectional attention fuses with causal = false.
// CHECK-LABEL: func.func @no_mask
// CHECK: lc.attention {{.*}} {causal = false, scale = 1.000000e+00 : f64}
func.func @no_mask(%q: tensor<2x1x3x4xf32>, %k: tensor<2x1x5x4xf32>, %v: tensor<2x1x5x6xf32>) -> tensor<2x1x3x6xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<2x1x5x4xf32> -> tensor<2x1x4x5xf32>
  %s = lc.matmul %q, %kt : tensor<2x1x3x4xf32>, tensor<2x1x4x5xf32> -> tensor<2x1x3x5xf32>
  %p = lc.softmax %s {axis = 3 : i64} : tensor<2x1x3x5xf32>
  %o = lc.matmul %p, %v : tensor<2x1x3x5xf32>, tensor<2x1x5x6xf32> -> tensor<2x1x3x6xf32>
  return %o : tensor<2x1x3x6xf32>
}

// -----

// Hugging Face style: scores + mask, the mask 0 on and below the diagonal and
// the dtype's minimum above (a constant here, a Trilu at long S).
// CHECK-LABEL: func.func @additive_mask
// CHECK: lc.attention {{.*}} {causal = true, scale = 1.000000e+00 : f64}
// CHECK-NOT: lc.softmax
func.func @additive_mask(%q: tensor<1x1x3x4xf32>, %k: tensor<1x1x3x4xf32>, %v: tensor<1x1x3x4xf32>) -> tensor<1x1x3x4xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x3x4xf32> -> tensor<1x1x4x3xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x3x4xf32>, tensor<1x1x4x3xf32> -> tensor<1x1x3x3xf32>
  %mask = lc.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0]]]]> : tensor<1x1x3x3xf32>
  %m = lc.add %s, %mask : tensor<1x1x3x3xf32>, tensor<1x1x3x3xf32> -> tensor<1x1x3x3xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x1x3x3xf32>
  %o = lc.matmul %p, %v : tensor<1x1x3x3xf32>, tensor<1x1x3x4xf32> -> tensor<1x1x3x4xf32>
  return %o : tensor<1x1x3x4xf32>
}

// -----

// CHECK-LABEL: func.func @additive_trilu_mask
// CHECK: lc.attention
// CHECK-SAME: causal = true
func.func @additive_trilu_mask(%q: tensor<1x1x2048x4xf32>, %k: tensor<1x1x2048x4xf32>, %v: tensor<1x1x2048x4xf32>) -> tensor<1x1x2048x4xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x2048x4xf32> -> tensor<1x1x4x2048xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x2048x4xf32>, tensor<1x1x4x2048xf32> -> tensor<1x1x2048x2048xf32>
  %neg = lc.constant dense<0xFF800000> : tensor<2048x2048xf32>
  %mask = lc.trilu %neg {upper = true, k = 1 : i64} : tensor<2048x2048xf32>
  %m = lc.add %mask, %s : tensor<2048x2048xf32>, tensor<1x1x2048x2048xf32> -> tensor<1x1x2048x2048xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x1x2048x2048xf32>
  %o = lc.matmul %p, %v : tensor<1x1x2048x2048xf32>, tensor<1x1x2048x4xf32> -> tensor<1x1x2048x4xf32>
  return %o : tensor<1x1x2048x4xf32>
}
