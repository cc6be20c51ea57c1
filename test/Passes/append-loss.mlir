// RUN: longctx-opt %s -split-input-file -lc-append-loss | FileCheck %s

// The logits result becomes the next-token loss against input_ids.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x8xi64> {lc.name = "input_ids"}) -> (tensor<f32> {lc.name = "loss"})
// CHECK: %[[LOGITS:.*]] = lc.gather
// CHECK: %[[LOSS:.*]] = lc.cross_entropy %[[LOGITS]], %[[IDS]] : tensor<2x8x16xf32>, tensor<2x8xi64> -> tensor<f32>
// CHECK-NEXT: return %[[LOSS]]
func.func @main(%ids: tensor<2x8xi64> {lc.name = "input_ids"}) -> (tensor<2x8x16xf32> {lc.name = "logits"}) {
  %table = lc.param "emb" : tensor<32x16xf32>
  %x = lc.gather %table, %ids {axis = 0 : i64} : tensor<32x16xf32>, tensor<2x8xi64> -> tensor<2x8x16xf32>
  return %x : tensor<2x8x16xf32>
}

// -----

// A `labels` input is preferred over input_ids.
// CHECK-LABEL: func.func @main
// CHECK: lc.cross_entropy %{{.*}}, %arg1
func.func @main(%ids: tensor<1x4xi64> {lc.name = "input_ids"}, %labels: tensor<1x4xi64> {lc.name = "labels"}) -> (tensor<1x4x8xf32> {lc.name = "logits"}) {
  %table = lc.param "emb" : tensor<8x8xf32>
  %x = lc.gather %table, %ids {axis = 0 : i64} : tensor<8x8xf32>, tensor<1x4xi64> -> tensor<1x4x8xf32>
  return %x : tensor<1x4x8xf32>
}
