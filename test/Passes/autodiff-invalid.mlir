// RUN: longctx-opt %s -split-input-file -allow-unregistered-dialect -lc-autodiff -verify-diagnostics

// Every op between a parameter and the loss that lacks a rule is reported.
func.func @main() -> tensor<f32> {
  %p = lc.param "p" : tensor<4xf32>
  // expected-error @+1 {{'test.mystery' op has no gradient rule, but lies between a parameter and the loss}}
  %a = "test.mystery"(%p) : (tensor<4xf32>) -> tensor<4xf32>
  // expected-error @+1 {{'test.other' op has no gradient rule, but lies between a parameter and the loss}}
  %b = "test.other"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  %l = lc.reduce_sum %b {axes = array<i64: 0>, keepdims = false} : tensor<4xf32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{the loss does not depend on any trainable parameter: nothing to train}}
func.func @main(%x: tensor<4xf32>) -> tensor<f32> {
  %l = lc.reduce_sum %x {axes = array<i64: 0>, keepdims = false} : tensor<4xf32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A parameter reaching the loss only through an integer cast has no gradient.
// expected-error @+1 {{no differentiable path from parameter 'scale' to the loss (freeze them with --freeze)}}
func.func @main() -> tensor<f32> {
  %w = lc.param "w" : tensor<4xf32>
  %s = lc.param "scale" : tensor<4xf32>
  %i = lc.cast %s : tensor<4xf32> -> tensor<4xi64>
  %f = lc.cast %i : tensor<4xi64> -> tensor<4xf32>
  %y = lc.mul %w, %f : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %l = lc.reduce_sum %y {axes = array<i64: 0>, keepdims = false} : tensor<4xf32> -> tensor<f32>
  return %l : tensor<f32>
}

