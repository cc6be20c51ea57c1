// RUN: longctx-opt %s -lc-autodiff="freeze=nope" -verify-diagnostics

// expected-error @+1 {{--freeze names 'nope', which is not a parameter of the model}}
func.func @main() -> tensor<f32> {
  %p = lc.param "p" : tensor<f32>
  return %p : tensor<f32>
}
