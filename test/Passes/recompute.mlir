// RUN: longctx-opt %s -lc-autodiff -lc-recompute=policy=layer 2>/dev/null | FileCheck %s
// RUN: longctx-opt %s -lc-autodiff -lc-recompute=policy=layer -mlir-print-op-on-diagnostic=false -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK
// RUN: longctx-opt %s -lc-autodiff -lc-recompute=policy=none | FileCheck %s --check-prefix=NONE

// Two residual layers h_i = h_{i-1} + sigmoid(h_{i-1} W_i) after an
// embedding-like scale. Separators: h0, h1, h2; both layers repeat, so each
// keeps only its input and recomputes, in the backward, what its gradient
// reads: the top layer first, right before its backward.
// REMARK: remark: lc-recompute: recomputing 2 of 2 layers (256 bytes of saved activations)
// CHECK-LABEL: func.func @main
// CHECK: %[[H0:.*]] = lc.mul %arg0
// CHECK: %[[H1:.*]] = lc.add %[[H0]]
// CHECK: %[[LOSS:.*]] = lc.reduce_sum
// CHECK: %[[A2:.*]] = lc.matmul %[[H1]], %{{.*}} {lc.recompute}
// CHECK-NEXT: %[[S2:.*]] = lc.sigmoid %[[A2]] {lc.recompute}
// CHECK-NEXT: lc.sub %{{.*}}, %[[S2]]
// CHECK: %[[A1:.*]] = lc.matmul %[[H0]], %{{.*}} {lc.recompute}
// CHECK-NEXT: %[[S1:.*]] = lc.sigmoid %[[A1]] {lc.recompute}
// CHECK-NEXT: lc.sub %{{.*}}, %[[S1]]
// CHECK: return %[[LOSS]]
// NONE-NOT: lc.recompute
func.func @main(%x: tensor<4x8xf32> {lc.name = "x"}) -> (tensor<f32> {lc.name = "loss"}) {
  %w0 = lc.param "w0" : tensor<8xf32>
  %w1 = lc.param "w1" : tensor<8x8xf32>
  %w2 = lc.param "w2" : tensor<8x8xf32>
  %h0 = lc.mul %x, %w0 : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
  %a1 = lc.matmul %h0, %w1 : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %s1 = lc.sigmoid %a1 : tensor<4x8xf32>
  %h1 = lc.add %h0, %s1 : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %a2 = lc.matmul %h1, %w2 : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %s2 = lc.sigmoid %a2 : tensor<4x8xf32>
  %h2 = lc.add %h1, %s2 : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %l = lc.reduce_sum %h2 {axes = array<i64: 0, 1>, keepdims = false} : tensor<4x8xf32> -> tensor<f32>
  return %l : tensor<f32>
}
