// RUN: longctx-opt %s -lc-plan-memory | FileCheck %s

// For --device cuda (the module's lc.device) the plan holds each kernel's
// workspace for its step: cuBLAS's 32 MiB for either matmul, in the same
// bytes (the two are never live together), beside the three 4 KiB tensors
// live at the second matmul. The artifact plans the same (Tools/cuda-workspace.test).
// CHECK-LABEL: func.func @main
// CHECK-SAME: lc.memory_plan = {arena_bytes = 33566720 : i64, data_bytes = 4096 : i64, load_bytes = 33566720 : i64, peak_bytes = 33570816 : i64, state_bytes = 0 : i64}
module attributes {lc.device = "cuda"} {
  func.func @main(%x: tensor<32x32xf32>) -> tensor<f32> {
    %w = lc.param "w" : tensor<32x32xf32>
    %a = lc.matmul %x, %w : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
    %b = lc.sigmoid %a : tensor<32x32xf32>
    %c = lc.matmul %b, %w : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
    %r = lc.reduce_sum %c {axes = array<i64: 0, 1>, keepdims = false} : tensor<32x32xf32> -> tensor<f32>
    return %r : tensor<f32>
  }
}
