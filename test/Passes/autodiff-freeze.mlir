// RUN: longctx-opt %s -lc-autodiff="freeze=emb" | FileCheck %s --check-prefix=FROZEN

// Frozen parameters and integer inputs get no gradient.
// FROZEN-LABEL: func.func @main
// FROZEN-SAME: -> (tensor<f32> {lc.name = "loss"}, tensor<8x8xf32> {lc.grad_of = "head", lc.name = "grad/head"})
func.func @main(%ids: tensor<1x4xi64>) -> tensor<f32> {
  %emb = lc.param "emb" : tensor<16x8xf32>
  %head = lc.param "head" : tensor<8x8xf32>
  %x = lc.gather %emb, %ids {axis = 0 : i64} : tensor<16x8xf32>, tensor<1x4xi64> -> tensor<1x4x8xf32>
  %y = lc.matmul %x, %head : tensor<1x4x8xf32>, tensor<8x8xf32> -> tensor<1x4x8xf32>
  %l = lc.cross_entropy %y, %ids : tensor<1x4x8xf32>, tensor<1x4xi64> -> tensor<f32>
  return %l : tensor<f32>
}
