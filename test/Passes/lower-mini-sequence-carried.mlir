// RUN: longctx-opt %s -lc-lower-mini-sequence | FileCheck %s

// A carried loop run last chunk first (as a backward does): the state flows
// from chunk 1 to chunk 0, the history lists each chunk's starting state in
// chunk order, and the final value is the state after chunk 0.
// CHECK-LABEL: func.func @main
// CHECK: %[[X1:.*]] = lc.slice %arg0 {sizes = array<i64: 2, 3>, starts = array<i64: 2, 0>,
// CHECK: %[[S1:.*]] = lc.add %[[X1]], %arg1
// CHECK: %[[N1:.*]] = lc.reduce_sum %[[S1]]
// CHECK: %[[X0:.*]] = lc.slice %arg0 {sizes = array<i64: 2, 3>, starts = array<i64: 0, 0>,
// CHECK: %[[S0:.*]] = lc.add %[[X0]], %[[N1]]
// CHECK: %[[N0:.*]] = lc.reduce_sum %[[S0]]
// CHECK: %[[Y:.*]] = lc.concat %[[S0]], %[[S1]] {axis = 0 : i64}
// CHECK: %[[HIST:.*]] = lc.concat %[[N1]], %arg1 {axis = 0 : i64}
// CHECK: return %[[Y]], %[[N0]], %[[HIST]]
func.func @main(%x: tensor<4x3xf32>, %h: tensor<1x3xf32>) -> (tensor<4x3xf32>, tensor<1x3xf32>, tensor<2x3xf32>) {
  %y, %final, %hist = lc.mini_sequence(%x, %h) {chunks = 2 : i64, carried = 1 : i64, reverse, split = array<i1: true, false>, sum = array<i1: false>} : (tensor<4x3xf32>, tensor<1x3xf32>) -> (tensor<4x3xf32>, tensor<1x3xf32>, tensor<2x3xf32>) {
  ^bb0(%xc: tensor<2x3xf32>, %s: tensor<1x3xf32>):
    %t = lc.add %xc, %s : tensor<2x3xf32>, tensor<1x3xf32> -> tensor<2x3xf32>
    %next = lc.reduce_sum %t {axes = array<i64: 0>, keepdims = true} : tensor<2x3xf32> -> tensor<1x3xf32>
    lc.yield %t, %next : tensor<2x3xf32>, tensor<1x3xf32>
  }
  return %y, %final, %hist : tensor<4x3xf32>, tensor<1x3xf32>, tensor<2x3xf32>
}
