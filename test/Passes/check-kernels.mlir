// RUN: longctx-opt %s -split-input-file -lc-check-kernels | FileCheck %s

// Every op of a runnable function has a kernel: the pass leaves it alone.
// CHECK-LABEL: func.func @runnable
// CHECK: lc.matmul
// CHECK: lc.softmax
func.func @runnable(%x: tensor<2x4xf32>) -> tensor<2x3xf32> {
  %w = lc.param "w" : tensor<4x3xf32>
  %y = lc.matmul %x, %w : tensor<2x4xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
  %z = lc.softmax %y {axis = 1 : i64} : tensor<2x3xf32>
  return %z : tensor<2x3xf32>
}
