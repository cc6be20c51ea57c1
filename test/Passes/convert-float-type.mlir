// RUN: longctx-opt %s -lc-convert-float-type="to=bf16" | FileCheck %s
// RUN: not longctx-opt %s -lc-convert-float-type="to=f8" 2>&1 | FileCheck %s --check-prefix=BAD

// Every f32 tensor becomes bf16, constants are rounded, integers stay.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%{{.*}}: tensor<2x4xbf16>, %{{.*}}: tensor<2xi64>) -> tensor<2x3xbf16>
// CHECK: lc.param "w" : tensor<4x3xbf16>
// CHECK: lc.constant dense<1.000980e-01> : tensor<bf16>
// CHECK: lc.matmul {{.*}} : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xbf16>
// CHECK: lc.mul {{.*}} -> tensor<2x3xbf16>
// BAD: unknown float type 'f8' (bf16, f16 or f32)
func.func @main(%x: tensor<2x4xf32>, %ids: tensor<2xi64>) -> tensor<2x3xf32> {
  %w = lc.param "w" : tensor<4x3xf32>
  %c = lc.constant dense<0.1> : tensor<f32>
  %y = lc.matmul %x, %w : tensor<2x4xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
  %z = lc.mul %y, %c : tensor<2x3xf32>, tensor<f32> -> tensor<2x3xf32>
  return %z : tensor<2x3xf32>
}
