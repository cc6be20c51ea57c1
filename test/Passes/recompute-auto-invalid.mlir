// RUN: longctx-opt %s -lc-recompute=policy=auto -verify-diagnostics

// expected-error @+1 {{lc-recompute: policy=auto needs a budget (bytes)}}
func.func @main(%x: tensor<4xf32>) -> tensor<f32> {
  %l = lc.reduce_sum %x {axes = array<i64: 0>, keepdims = false} : tensor<4xf32> -> tensor<f32>
  return %l : tensor<f32>
}
