// RUN: longctx-opt %s -split-input-file -lc-mini-sequence="chunks=2 remarks=true" -verify-diagnostics | FileCheck %s

// Graphs the pass must leave alone say why, under `remarks`.

// An attention output projection: its input is not row-wise from one
// activation (a transpose mixes heads and rows).
// CHECK-LABEL: func.func @attention_projection
// CHECK-NOT: lc.mini_sequence
// expected-warning @+1 {{lc-mini-sequence: found no MLP and no LM head + loss to chunk}}
func.func @attention_projection(%x: tensor<2x4x8xf32>) -> tensor<4x2x8xf32> {
  %w = lc.param "wo" : tensor<8x8xf32>
  %t = lc.transpose %x {perm = array<i64: 1, 0, 2>} : tensor<2x4x8xf32> -> tensor<4x2x8xf32>
  // expected-remark @+1 {{lc-mini-sequence: projection left alone: its hidden activation passes through 'lc.transpose', which is not a projection by a weight or an elementwise op}}
  %o = lc.matmul %t, %w : tensor<4x2x8xf32>, tensor<8x8xf32> -> tensor<4x2x8xf32>
  return %o : tensor<4x2x8xf32>
}

// -----

// The hidden activation is also a result: it must exist whole.
// CHECK-LABEL: func.func @hidden_escapes
// CHECK-NOT: lc.mini_sequence
// expected-warning @+1 {{lc-mini-sequence: found no MLP and no LM head + loss to chunk}}
func.func @hidden_escapes(%x: tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<6x16xf32>) {
  %w1 = lc.param "w1" : tensor<4x16xf32>
  %w2 = lc.param "w2" : tensor<16x4xf32>
  // expected-remark @+1 {{lc-mini-sequence: projection left alone: its hidden activation is a graph input}}
  %h = lc.matmul %x, %w1 : tensor<6x4xf32>, tensor<4x16xf32> -> tensor<6x16xf32>
  %r = lc.relu %h : tensor<6x16xf32>
  // expected-remark @+1 {{lc-mini-sequence: projection left alone: an intermediate ('lc.relu') is also read outside it}}
  %o = lc.matmul %r, %w2 : tensor<6x16xf32>, tensor<16x4xf32> -> tensor<6x4xf32>
  return %o, %r : tensor<6x4xf32>, tensor<6x16xf32>
}

// -----

// A loss on logits that are not a projection by a weight.
// CHECK-LABEL: func.func @loss_of_input
// CHECK-NOT: lc.mini_sequence
// expected-warning @+1 {{lc-mini-sequence: found no MLP and no LM head + loss to chunk}}
func.func @loss_of_input(%logits: tensor<6x8xf32>, %ids: tensor<6xi64>) -> tensor<f32> {
  // expected-remark @+1 {{lc-mini-sequence: the loss's logits are not a projection by a weight matrix}}
  %l = lc.cross_entropy %logits, %ids {shift = 0 : i64} : tensor<6x8xf32>, tensor<6xi64> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Softmax is not elementwise (it normalises along an axis, possibly across
// rows), so an MLP through it is left alone.
// CHECK-LABEL: func.func @softmax_hidden
// CHECK-NOT: lc.mini_sequence
// expected-warning @+1 {{lc-mini-sequence: found no MLP and no LM head + loss to chunk}}
func.func @softmax_hidden(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %w1 = lc.param "w1" : tensor<4x16xf32>
  %w2 = lc.param "w2" : tensor<16x4xf32>
  // expected-remark @+1 {{lc-mini-sequence: projection left alone: its hidden activation is a graph input}}
  %h = lc.matmul %x, %w1 : tensor<6x4xf32>, tensor<4x16xf32> -> tensor<6x16xf32>
  %s = lc.softmax %h {axis = 1 : i64} : tensor<6x16xf32>
  // expected-remark @+1 {{lc-mini-sequence: projection left alone: its hidden activation passes through 'lc.softmax', which is not a projection by a weight or an elementwise op}}
  %o = lc.matmul %s, %w2 : tensor<6x16xf32>, tensor<16x4xf32> -> tensor<6x4xf32>
  return %o : tensor<6x4xf32>
}
