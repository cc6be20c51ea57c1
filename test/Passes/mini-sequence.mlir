// RUN: longctx-opt %s -split-input-file -lc-mini-sequence=chunks=4 | FileCheck %s
// RUN: longctx-opt %S/Inputs/mini-sequence-bad-chunks.mlir -lc-mini-sequence=chunks=0 -verify-diagnostics

// A plain MLP with biases, rank 3: flattened to [tokens, d], chunked, and
// reshaped back. 10 rows in 4 chunks: chunks of 3 rows (the last has 1).
// CHECK-LABEL: func.func @plain_mlp
// CHECK: %[[X:.*]] = lc.reshape %arg0 : tensor<2x5x4xf32> -> tensor<10x4xf32>
// CHECK: %[[Y:.*]] = lc.mini_sequence(%[[X]], {{.*}}) {chunks = 4 : i64, split = array<i1: true, false, false, false, false>, sum = array<i1: false>} : ({{.*}}) -> tensor<10x4xf32> {
// CHECK: ^bb0(%[[XC:.*]]: tensor<3x4xf32>,
// CHECK: lc.matmul %[[XC]], {{.*}} -> tensor<3x16xf32>
// CHECK: lc.add {{.*}} -> tensor<3x16xf32>
// CHECK: lc.relu {{.*}} : tensor<3x16xf32>
// CHECK: lc.matmul {{.*}} -> tensor<3x4xf32>
// CHECK: %[[OUT:.*]] = lc.add {{.*}} -> tensor<3x4xf32>
// CHECK: lc.yield %[[OUT]] : tensor<3x4xf32>
// CHECK: lc.reshape %[[Y]] : tensor<10x4xf32> -> tensor<2x5x4xf32>
// CHECK-NOT: tensor<2x5x16xf32>
func.func @plain_mlp(%x: tensor<2x5x4xf32>) -> tensor<2x5x4xf32> {
  %w1 = lc.param "w1" : tensor<4x16xf32>
  %b1 = lc.param "b1" : tensor<16xf32>
  %w2 = lc.param "w2" : tensor<16x4xf32>
  %b2 = lc.param "b2" : tensor<4xf32>
  %h = lc.matmul %x, %w1 : tensor<2x5x4xf32>, tensor<4x16xf32> -> tensor<2x5x16xf32>
  %hb = lc.add %h, %b1 : tensor<2x5x16xf32>, tensor<16xf32> -> tensor<2x5x16xf32>
  %r = lc.relu %hb : tensor<2x5x16xf32>
  %o = lc.matmul %r, %w2 : tensor<2x5x16xf32>, tensor<16x4xf32> -> tensor<2x5x4xf32>
  %ob = lc.add %o, %b2 : tensor<2x5x4xf32>, tensor<4xf32> -> tensor<2x5x4xf32>
  return %ob : tensor<2x5x4xf32>
}

// -----

// A SiLU-gated MLP as exporters write it.
// CHECK-LABEL: func.func @gated_mlp
// CHECK: lc.mini_sequence(%arg0, {{.*}}) {chunks = 4 : i64, split = array<i1: true, false, false, false>, sum = array<i1: false>}
// CHECK: ^bb0(%[[XC:.*]]: tensor<2x4xf32>,
// CHECK: %[[G:.*]] = lc.matmul %[[XC]]
// CHECK: lc.sigmoid %[[G]] : tensor<2x16xf32>
// CHECK: lc.matmul %[[XC]]
// CHECK: lc.yield {{.*}} : tensor<2x4xf32>
// CHECK: return
func.func @gated_mlp(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %wg = lc.param "wg" : tensor<4x16xf32>
  %wu = lc.param "wu" : tensor<4x16xf32>
  %wd = lc.param "wd" : tensor<16x4xf32>
  %g = lc.matmul %x, %wg : tensor<6x4xf32>, tensor<4x16xf32> -> tensor<6x16xf32>
  %s = lc.sigmoid %g : tensor<6x16xf32>
  %silu = lc.mul %g, %s : tensor<6x16xf32>, tensor<6x16xf32> -> tensor<6x16xf32>
  %u = lc.matmul %x, %wu : tensor<6x4xf32>, tensor<4x16xf32> -> tensor<6x16xf32>
  %h = lc.mul %silu, %u : tensor<6x16xf32>, tensor<6x16xf32> -> tensor<6x16xf32>
  %o = lc.matmul %h, %wd : tensor<6x16xf32>, tensor<16x4xf32> -> tensor<6x4xf32>
  return %o : tensor<6x4xf32>
}

// -----

// The fused lc.gated_mlp is row-wise too.
// CHECK-LABEL: func.func @fused_gated_mlp
// CHECK: lc.mini_sequence(%arg0,
// CHECK: lc.gated_mlp {{.*}} -> tensor<2x4xf32>
func.func @fused_gated_mlp(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %wg = lc.param "wg" : tensor<4x16xf32>
  %wu = lc.param "wu" : tensor<4x16xf32>
  %wd = lc.param "wd" : tensor<16x4xf32>
  %o = lc.gated_mlp %x, %wg, %wu, %wd : (tensor<6x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<16x4xf32>) -> tensor<6x4xf32>
  return %o : tensor<6x4xf32>
}

// -----

// LM head + next-token loss: per row labels (the next token; the last row of
// each sequence ignored), the global count of counted labels, and the chunks'
// summed losses divided by it. Each chunk also makes, while its logits exist,
// their gradient and what it gives x and the weight (results 1 and 2, the
// op's `gradients`). No [2, 5, 32] logits remain.
// CHECK-LABEL: func.func @lm_head_loss
// CHECK: %[[NEXT:.*]] = lc.slice %arg1 {sizes = array<i64: 2, 4>, starts = array<i64: 0, 1>, steps = array<i64: 1, 1>}
// CHECK: %[[PAD:.*]] = lc.constant dense<-100> : tensor<2x1xi64>
// CHECK: %[[SHIFTED:.*]] = lc.concat %[[NEXT]], %[[PAD]] {axis = 1 : i64}
// CHECK: %[[LABELS:.*]] = lc.reshape %[[SHIFTED]] : tensor<2x5xi64> -> tensor<10xi64>
// CHECK: %[[COUNT:.*]] = lc.reduce_sum
// CHECK: %[[DENOM:.*]] = lc.max %[[COUNT]]
// CHECK: %[[SUM:.*]]:3 = lc.mini_sequence({{.*}}, %[[LABELS]]) {chunks = 4 : i64, gradients = array<i64: 1, 2, -1>, split = array<i1: true, false, true>, sum = array<i1: true, false, true>} : (tensor<10x4xf32>, tensor<4x32xf32>, tensor<10xi64>) -> (tensor<f32>, tensor<10x4xf32>, tensor<4x32xf32>) {
// CHECK: ^bb0(%[[XC:.*]]: tensor<3x4xf32>, %[[W:.*]]: tensor<4x32xf32>, %[[T:.*]]: tensor<3xi64>):
// CHECK: %[[LOGITS:.*]] = lc.matmul %[[XC]], %[[W]] : tensor<3x4xf32>, tensor<4x32xf32> -> tensor<3x32xf32>
// CHECK: %[[L:.*]], %[[DL:.*]] = lc.cross_entropy_and_grad %[[LOGITS]], %[[T]]
// CHECK: %[[DX:.*]] = lc.gemm %[[DL]], %[[W]] {trans_b = true}
// CHECK: %[[DW:.*]] = lc.gemm %[[XC]], %[[DL]] {trans_a = true}
// CHECK: lc.yield %[[L]], %[[DX]], %[[DW]] : tensor<f32>, tensor<3x4xf32>, tensor<4x32xf32>
// CHECK: lc.div %[[SUM]]#0, %[[DENOM]]
// CHECK-NOT: tensor<2x5x32xf32>
func.func @lm_head_loss(%h: tensor<2x5x4xf32>, %ids: tensor<2x5xi64>) -> tensor<f32> {
  %w = lc.param "output.weight" : tensor<4x32xf32>
  %logits = lc.matmul %h, %w : tensor<2x5x4xf32>, tensor<4x32xf32> -> tensor<2x5x32xf32>
  %loss = lc.cross_entropy %logits, %ids : tensor<2x5x32xf32>, tensor<2x5xi64> -> tensor<f32>
  return %loss : tensor<f32>
}
