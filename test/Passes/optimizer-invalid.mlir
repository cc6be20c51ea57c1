// RUN: longctx-opt %s -split-input-file -lc-optimizer -verify-diagnostics

// expected-error @+1 {{@main returns no gradients (run lc-autodiff first)}}
func.func @main() -> (tensor<f32> {lc.name = "loss"}) {
  %l = lc.param "l" : tensor<f32>
  return %l : tensor<f32>
}

// -----

func.func @main(%g: tensor<2xf32>, %lr: tensor<2xf32>, %s: tensor<f32>) {
  // expected-error @+1 {{lr, step and scale must be rank-0 tensors}}
  lc.sgd_update "w", %g, %lr, %s : tensor<2xf32>, tensor<2xf32>, tensor<f32>
  return
}
