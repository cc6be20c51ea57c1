// RUN: longctx-opt %s -lc-plan-memory | FileCheck %s

// Every arena buffer gets an offset (256-byte aligned); buffers whose lives
// do not overlap share bytes; an elementwise op writes over an operand of
// its size that dies there. The function carries the totals: weights and
// constants 64-byte padded (a 4 KiB weight), arena (the 4 KiB input lives
// throughout), LOAD and peak.
// CHECK-LABEL: func.func @main
// CHECK-SAME: lc.memory_plan = {arena_bytes = 12288 : i64, data_bytes = 4096 : i64, load_bytes = 12288 : i64, peak_bytes = 16384 : i64, state_bytes = 0 : i64}
// CHECK: %[[A:.*]] = lc.matmul {{.*}} {lc.offsets = array<i64: [[OA:[0-9]+]]>}
// CHECK: %[[B:.*]] = lc.sigmoid %[[A]] {lc.offsets = array<i64: [[OA]]>}
// CHECK: %[[C:.*]] = lc.matmul %[[B]], {{.*}} {lc.offsets = array<i64: [[OC:[0-9]+]]>}
// CHECK: lc.reduce_sum %[[C]] {{{.*}}lc.offsets = array<i64: [[OA]]>
func.func @main(%x: tensor<32x32xf32>) -> tensor<f32> {
  %w = lc.param "w" : tensor<32x32xf32>
  %a = lc.matmul %x, %w : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
  %b = lc.sigmoid %a : tensor<32x32xf32>
  %c = lc.matmul %b, %w : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
  %r = lc.reduce_sum %c {axes = array<i64: 0, 1>, keepdims = false} : tensor<32x32xf32> -> tensor<f32>
  return %r : tensor<f32>
}
