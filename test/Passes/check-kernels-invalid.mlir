// RUN: longctx-opt %s -allow-unregistered-dialect -lc-check-kernels -verify-diagnostics

// All problems are reported in one run, not only the first.
func.func @not_runnable(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'test.custom' op is not an `lc` op and cannot run}}
  %0 = "test.custom"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  // expected-error @+1 {{'test.dynamic' op is not an `lc` op and cannot run}}
  %1 = "test.dynamic"(%0) : (tensor<2x4xf32>) -> tensor<?x4xf32>
  %2 = lc.exp %0 : tensor<2x4xf32>
  return %2 : tensor<2x4xf32>
}
