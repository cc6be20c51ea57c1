// RUN: longctx-opt %s -lc-lower-mini-sequence | FileCheck %s

// 7 rows in 3 chunks of 3, 3 and 1 rows: each chunk's rows are sliced off,
// the body is cloned (the last chunk's types inferred again), the chunks'
// concatenated result is joined and the summed one added up.
// CHECK-LABEL: func.func @main
// CHECK: %[[S0:.*]] = lc.slice %arg0 {sizes = array<i64: 3, 4>, starts = array<i64: 0, 0>,
// CHECK: %[[H0:.*]] = lc.matmul %[[S0]], {{.*}} -> tensor<3x2xf32>
// CHECK: %[[R0:.*]] = lc.reduce_sum %[[H0]]
// CHECK: %[[S1:.*]] = lc.slice %arg0 {sizes = array<i64: 3, 4>, starts = array<i64: 3, 0>,
// CHECK: %[[H1:.*]] = lc.matmul %[[S1]]
// CHECK: %[[R1:.*]] = lc.reduce_sum %[[H1]]
// CHECK: %[[SUM01:.*]] = lc.add %[[R0]], %[[R1]]
// CHECK: %[[S2:.*]] = lc.slice %arg0 {sizes = array<i64: 1, 4>, starts = array<i64: 6, 0>,
// CHECK: %[[H2:.*]] = lc.matmul %[[S2]], {{.*}} -> tensor<1x2xf32>
// CHECK: %[[R2:.*]] = lc.reduce_sum %[[H2]]
// CHECK: %[[SUM:.*]] = lc.add %[[SUM01]], %[[R2]]
// CHECK: %[[CAT:.*]] = lc.concat %[[H0]], %[[H1]], %[[H2]] {axis = 0 : i64} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>) -> tensor<7x2xf32>
// CHECK: return %[[CAT]], %[[SUM]]
// CHECK-NOT: lc.mini_sequence
func.func @main(%x: tensor<7x4xf32>) -> (tensor<7x2xf32>, tensor<f32>) {
  %w = lc.param "w" : tensor<4x2xf32>
  %y, %s = lc.mini_sequence(%x, %w) {chunks = 3 : i64, split = array<i1: true, false>, sum = array<i1: false, true>} : (tensor<7x4xf32>, tensor<4x2xf32>) -> (tensor<7x2xf32>, tensor<f32>) {
  ^bb0(%xc: tensor<3x4xf32>, %wc: tensor<4x2xf32>):
    %h = lc.matmul %xc, %wc : tensor<3x4xf32>, tensor<4x2xf32> -> tensor<3x2xf32>
    %r = lc.reduce_sum %h {axes = array<i64: 0, 1>, keepdims = false} : tensor<3x2xf32> -> tensor<f32>
    lc.yield %h, %r : tensor<3x2xf32>, tensor<f32>
  }
  return %y, %s : tensor<7x2xf32>, tensor<f32>
}
