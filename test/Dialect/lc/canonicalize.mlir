// RUN: longctx-opt %s -canonicalize -split-input-file | FileCheck %s

// Shape subgraphs fold through the runtime's own kernels.

// CHECK-LABEL: func.func @shape_arithmetic
func.func @shape_arithmetic() -> tensor<2xi64> {
  // CHECK: %[[C:.*]] = lc.constant dense<[7, 36]> : tensor<2xi64>
  // CHECK-NEXT: return %[[C]]
  %a = lc.constant dense<[3, 4]> : tensor<2xi64>
  %b = lc.constant dense<[4, 9]> : tensor<2xi64>
  %m = lc.mul %a, %b : tensor<2xi64>, tensor<2xi64> -> tensor<2xi64>
  %s = lc.add %a, %b : tensor<2xi64>, tensor<2xi64> -> tensor<2xi64>
  %s0 = lc.slice %s {starts = array<i64: 0>, sizes = array<i64: 1>, steps = array<i64: 1>} : tensor<2xi64> -> tensor<1xi64>
  %m1 = lc.slice %m {starts = array<i64: 1>, sizes = array<i64: 1>, steps = array<i64: 1>} : tensor<2xi64> -> tensor<1xi64>
  %r = lc.concat %s0, %m1 {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
  return %r : tensor<2xi64>
}

// -----

// A causal mask from ConstantOfShape -> Trilu -> Cast folds to a bool constant.
// CHECK-LABEL: func.func @causal_mask
func.func @causal_mask() -> tensor<3x3xi1> {
  // CHECK: lc.constant dense<{{\[\[}}true, false, false], [true, true, false], [true, true, true]]> : tensor<3x3xi1>
  %ones = lc.constant dense<1.0> : tensor<3x3xf32>
  %t = lc.trilu %ones {upper = false, k = 0 : i64} : tensor<3x3xf32>
  %m = lc.cast %t : tensor<3x3xf32> -> tensor<3x3xi1>
  return %m : tensor<3x3xi1>
}

// -----

// Identities disappear; no-op reshapes, expands, transposes and casts too.
// CHECK-LABEL: func.func @identities
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @identities(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = lc.identity %x : tensor<2x3xf32>
  %1 = lc.reshape %0 : tensor<2x3xf32> -> tensor<2x3xf32>
  %2 = lc.transpose %1 {perm = array<i64: 0, 1>} : tensor<2x3xf32> -> tensor<2x3xf32>
  %3 = lc.cast %2 : tensor<2x3xf32> -> tensor<2x3xf32>
  %4 = lc.expand %3 : tensor<2x3xf32> -> tensor<2x3xf32>
  return %4 : tensor<2x3xf32>
}

// -----

// Parameters never fold: they are what training updates.
// CHECK-LABEL: func.func @params_stay
func.func @params_stay() -> tensor<2xf32> {
  // CHECK: %[[W:.*]] = lc.param "w"
  // CHECK: lc.exp %[[W]]
  %w = lc.param "w" : tensor<2xf32>
  %e = lc.exp %w : tensor<2xf32>
  return %e : tensor<2xf32>
}

// -----

// Results above the folding limit stay computations (an S x S mask at long S).
// CHECK-LABEL: func.func @large_results_stay
func.func @large_results_stay() -> tensor<2048x2048xf32> {
  // CHECK: lc.trilu
  %ones = lc.constant dense<1.0> : tensor<2048x2048xf32>
  %t = lc.trilu %ones {upper = false, k = 0 : i64} : tensor<2048x2048xf32>
  return %t : tensor<2048x2048xf32>
}

// -----

// Float math folds exactly as the CPU kernels compute it (softplus is stable).
// CHECK-LABEL: func.func @float_math
func.func @float_math() -> tensor<2xf32> {
  // CHECK: lc.constant dense<[1.000000e+02, 0.000000e+00]> : tensor<2xf32>
  %x = lc.constant dense<[100.0, -200.0]> : tensor<2xf32>
  %y = lc.softplus %x : tensor<2xf32>
  return %y : tensor<2xf32>
}
