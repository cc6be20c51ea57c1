// RUN: longctx-opt %s -split-input-file -lc-fuse-elementwise | FileCheck %s

// silu(x) * dy: sigmoid, two muls become one op reading x, dy and nothing
// else; the scalar constant is an input like any other.
// CHECK-LABEL: func.func @chain
// CHECK: %[[C:.*]] = lc.constant
// CHECK: %[[F:.*]] = lc.fused_elementwise(%arg0, %arg1, %[[C]]) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32> {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<4x8xf32>, %[[DY:.*]]: tensor<4x8xf32>, %[[S:.*]]: tensor<f32>):
// CHECK-NEXT: %[[SIG:.*]] = lc.sigmoid %[[X]]
// CHECK-NEXT: %[[SILU:.*]] = lc.mul %[[X]], %[[SIG]]
// CHECK-NEXT: %[[G:.*]] = lc.mul %[[SILU]], %[[DY]]
// CHECK-NEXT: %[[H:.*]] = lc.mul %[[G]], %[[S]]
// CHECK-NEXT: lc.yield %[[H]] : tensor<4x8xf32>
// CHECK: return %[[F]]
func.func @chain(%x: tensor<4x8xf32>, %dy: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %c = lc.constant dense<2.0> : tensor<f32>
  %s = lc.sigmoid %x : tensor<4x8xf32>
  %silu = lc.mul %x, %s : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %g = lc.mul %silu, %dy : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %h = lc.mul %g, %c : tensor<4x8xf32>, tensor<f32> -> tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// -----

// A value read twice stays outside (both readers need it); an operand that
// broadcasts (a row) keeps its op out; a lone op is not wrapped.
// CHECK-LABEL: func.func @boundaries
// CHECK: %[[E:.*]] = lc.exp %arg0
// CHECK: lc.fused_elementwise(%[[E]]) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
// CHECK: lc.neg
// CHECK: lc.tanh
// CHECK: lc.yield
// CHECK: lc.add %[[E]], %arg1 : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
// CHECK-NOT: lc.fused_elementwise
func.func @boundaries(%x: tensor<4x8xf32>, %row: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %e = lc.exp %x : tensor<4x8xf32>
  %n = lc.neg %e : tensor<4x8xf32>
  %t = lc.tanh %n : tensor<4x8xf32>
  %b = lc.add %e, %row : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
  return %t, %b : tensor<4x8xf32>, tensor<4x8xf32>
}
