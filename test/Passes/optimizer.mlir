// RUN: longctx-opt %s -lc-optimizer="kind=adamw weight-decay=0.1 clip-norm=1.0" | FileCheck %s
// RUN: longctx-opt %s -lc-optimizer="kind=sgd momentum=0.9" | FileCheck %s --check-prefix=SGD

// One update per gradient result; lr and step become inputs; clipping scales
// every gradient by min(1, clip / (||g|| + 1e-6)) over all of them.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %[[LR:[^:]*]]: tensor<f32> {lc.name = "lr"}, %[[STEP:[^:]*]]: tensor<f32> {lc.name = "step"}
// CHECK: %[[N:.*]] = lc.sqrt
// CHECK: %[[SCALE:.*]] = lc.min
// CHECK: lc.adamw_update "a", %{{.*}}, %[[LR]], %[[STEP]], %[[SCALE]] {weight_decay = 1.000000e-01 : f64}
// CHECK: lc.adamw_update "b", %{{.*}}, %[[LR]], %[[STEP]], %[[SCALE]]
// CHECK: return
// SGD-LABEL: func.func @main
// SGD-SAME: {lc.name = "lr"})
// SGD: lc.sgd_update "a", %{{.*}}, %{{.*}}, %{{.*}} {momentum = 9.000000e-01 : f64}
func.func @main(%x: tensor<2xf32>) -> (tensor<f32> {lc.name = "loss"}, tensor<2xf32> {lc.grad_of = "a", lc.name = "grad/a"}, tensor<3xf32> {lc.grad_of = "b", lc.name = "grad/b"}) {
  %l = lc.param "loss_stub" : tensor<f32>
  %ga = lc.param "ga" : tensor<2xf32>
  %gb = lc.param "gb" : tensor<3xf32>
  return %l, %ga, %gb : tensor<f32>, tensor<2xf32>, tensor<3xf32>
}
