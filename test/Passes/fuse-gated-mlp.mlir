// RUN: longctx-opt %s -split-input-file -lc-fuse-gated-mlp -canonicalize | FileCheck %s

// CHECK-LABEL: func.func @gated_silu
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>)
// CHECK-DAG: %[[G:.*]] = lc.param "w1"
// CHECK-DAG: %[[U:.*]] = lc.param "w3"
// CHECK-DAG: %[[D:.*]] = lc.param "w2"
// CHECK: %[[Y:.*]] = lc.gated_mlp %[[X]], %[[G]], %[[U]], %[[D]] : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: return %[[Y]]
func.func @gated_silu(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %w1 = lc.param "w1" : tensor<8x16xf32>
  %w3 = lc.param "w3" : tensor<8x16xf32>
  %w2 = lc.param "w2" : tensor<16x8xf32>
  %g = lc.matmul %x, %w1 : tensor<2x4x8xf32>, tensor<8x16xf32> -> tensor<2x4x16xf32>
  %s = lc.sigmoid %g : tensor<2x4x16xf32>
  %silu = lc.mul %g, %s : tensor<2x4x16xf32>, tensor<2x4x16xf32> -> tensor<2x4x16xf32>
  %u = lc.matmul %x, %w3 : tensor<2x4x8xf32>, tensor<8x16xf32> -> tensor<2x4x16xf32>
  %h = lc.mul %silu, %u : tensor<2x4x16xf32>, tensor<2x4x16xf32> -> tensor<2x4x16xf32>
  %y = lc.matmul %h, %w2 : tensor<2x4x16xf32>, tensor<16x8xf32> -> tensor<2x4x8xf32>
  return %y : tensor<2x4x8xf32>
}

// -----

// Gate and up projections of different inputs are not an MLP block.
// CHECK-LABEL: func.func @different_inputs
// CHECK-NOT: lc.gated_mlp
func.func @different_inputs(%x: tensor<4x8xf32>, %z: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %w1 = lc.param "w1" : tensor<8x16xf32>
  %w3 = lc.param "w3" : tensor<8x16xf32>
  %w2 = lc.param "w2" : tensor<16x8xf32>
  %g = lc.matmul %x, %w1 : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %s = lc.sigmoid %g : tensor<4x16xf32>
  %silu = lc.mul %s, %g : tensor<4x16xf32>, tensor<4x16xf32> -> tensor<4x16xf32>
  %u = lc.matmul %z, %w3 : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %h = lc.mul %u, %silu : tensor<4x16xf32>, tensor<4x16xf32> -> tensor<4x16xf32>
  %y = lc.matmul %h, %w2 : tensor<4x16xf32>, tensor<16x8xf32> -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
