// RUN: longctx-opt %s -split-input-file -lc-schedule | FileCheck %s

// In definition order both 4 KiB products are live at once; the schedule
// reduces each right after it is made (peak 4 KiB instead of 8 KiB).
// CHECK-LABEL: func.func @two_chains
// CHECK: %[[A:.*]] = lc.matmul
// CHECK-NEXT: lc.reduce_sum %[[A]]
// CHECK-NEXT: %[[B:.*]] = lc.matmul
// CHECK-NEXT: lc.reduce_sum %[[B]]
// CHECK-NEXT: lc.add
func.func @two_chains(%x: tensor<32x32xf32>, %w: tensor<32x32xf32>) -> tensor<f32> {
  %a = lc.matmul %x, %w : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
  %b = lc.matmul %w, %x : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
  %ra = lc.reduce_sum %a {axes = array<i64: 0, 1>, keepdims = false} : tensor<32x32xf32> -> tensor<f32>
  %rb = lc.reduce_sum %b {axes = array<i64: 0, 1>, keepdims = false} : tensor<32x32xf32> -> tensor<f32>
  %s = lc.add %ra, %rb : tensor<f32>, tensor<f32> -> tensor<f32>
  return %s : tensor<f32>
}

// -----

// An update writes its parameter: it stays after every reader of it, even
// though running it before the reader would free its gradient sooner.
// CHECK-LABEL: func.func @update_after_readers
// CHECK: lc.exp
// CHECK: lc.reduce_sum
// CHECK: lc.neg
// CHECK-NEXT: lc.sgd_update "w"
// CHECK: return
func.func @update_after_readers(%x: tensor<256xf32>, %lr: tensor<f32>, %s: tensor<f32>) -> tensor<f32> {
  %w = lc.param "w" : tensor<256xf32>
  %g = lc.neg %x : tensor<256xf32>
  %e = lc.exp %w : tensor<256xf32>
  %r = lc.reduce_sum %e {axes = array<i64: 0>, keepdims = false} : tensor<256xf32> -> tensor<f32>
  lc.sgd_update "w", %g, %lr, %s : tensor<256xf32>, tensor<f32>, tensor<f32>
  return %r : tensor<f32>
}
