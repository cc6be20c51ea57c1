// RUN: longctx-opt %s | longctx-opt | FileCheck %s
// RUN: longctx-opt %s --mlir-print-op-generic | longctx-opt | FileCheck %s

// Every `lc` op parses, verifies and prints back to the same form.

// CHECK-LABEL: func.func @leaves
func.func @leaves() -> (tensor<4x8xf32>, tensor<2xi64>) {
  // CHECK: lc.param "layers.0.w" : tensor<4x8xf32>
  %w = lc.param "layers.0.w" : tensor<4x8xf32>
  // CHECK: lc.constant dense<[1, 2]> : tensor<2xi64>
  %c = lc.constant dense<[1, 2]> : tensor<2xi64>
  return %w, %c : tensor<4x8xf32>, tensor<2xi64>
}

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %m: tensor<2x3xi1>, %i: tensor<2x3xi64>) -> tensor<2x3xf32> {
  // CHECK: lc.add %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %0 = lc.add %a, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %1 = lc.sub %0, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %2 = lc.mul %1, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  %3 = lc.div %2, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %4 = lc.pow %3, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %5 = lc.max %4, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %6 = lc.min %5, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  // CHECK: lc.less %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xi1>
  %7 = lc.less %6, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xi1>
  %8 = lc.greater %6, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xi1>
  %9 = lc.equal %i, %i : tensor<2x3xi64>, tensor<2x3xi64> -> tensor<2x3xi1>
  %10 = lc.and %7, %8 : tensor<2x3xi1>, tensor<2x3xi1> -> tensor<2x3xi1>
  %11 = lc.or %10, %9 : tensor<2x3xi1>, tensor<2x3xi1> -> tensor<2x3xi1>
  %12 = lc.not %11 : tensor<2x3xi1>
  %13 = lc.neg %6 : tensor<2x3xf32>
  %14 = lc.abs %13 : tensor<2x3xf32>
  %15 = lc.relu %14 : tensor<2x3xf32>
  %16 = lc.exp %15 : tensor<2x3xf32>
  %17 = lc.log %16 : tensor<2x3xf32>
  %18 = lc.sqrt %17 : tensor<2x3xf32>
  %19 = lc.reciprocal %18 : tensor<2x3xf32>
  %20 = lc.tanh %19 : tensor<2x3xf32>
  %21 = lc.erf %20 : tensor<2x3xf32>
  %22 = lc.sigmoid %21 : tensor<2x3xf32>
  %23 = lc.softplus %22 : tensor<2x3xf32>
  %24 = lc.cos %23 : tensor<2x3xf32>
  %25 = lc.sin %24 : tensor<2x3xf32>
  %26 = lc.identity %25 : tensor<2x3xf32>
  // CHECK: lc.cast %{{.*}} : tensor<2x3xi1> -> tensor<2x3xf32>
  %27 = lc.cast %12 : tensor<2x3xi1> -> tensor<2x3xf32>
  // CHECK: lc.where %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %28 = lc.where %m, %27, %b : tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %29 = lc.add %28, %26 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  return %29 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @contractions
func.func @contractions(%a: tensor<2x4x8xf32>, %b: tensor<8x16xf32>, %m: tensor<4x8xf32>, %c: tensor<16xf32>) -> (tensor<2x4x16xf32>, tensor<4x16xf32>) {
  // CHECK: lc.matmul %{{.*}}, %{{.*}} : tensor<2x4x8xf32>, tensor<8x16xf32> -> tensor<2x4x16xf32>
  %0 = lc.matmul %a, %b : tensor<2x4x8xf32>, tensor<8x16xf32> -> tensor<2x4x16xf32>
  // CHECK: lc.gemm %{{.*}}, %{{.*}}, %{{.*}} {alpha = 5.000000e-01 : f64} :
  %1 = lc.gemm %m, %b, %c {alpha = 0.5 : f64, trans_b = false} : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  // CHECK: lc.softmax %{{.*}} {axis = 2 : i64} : tensor<2x4x16xf32>
  %2 = lc.softmax %0 {axis = 2 : i64} : tensor<2x4x16xf32>
  %3 = lc.log_softmax %2 {axis = 1 : i64} : tensor<2x4x16xf32>
  return %3, %1 : tensor<2x4x16xf32>, tensor<4x16xf32>
}

// CHECK-LABEL: func.func @normalisation_and_reductions
func.func @normalisation_and_reductions(%x: tensor<2x4x8xf32>, %s: tensor<8xf32>) -> (tensor<2x4x8xf32>, tensor<2x1x8xf32>, tensor<8xf32>, tensor<2x4x1xf32>) {
  // CHECK: lc.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 9.9999999999999995E-7 : f64}
  %0 = lc.layer_norm %x, %s, %s {axis = 2 : i64, epsilon = 1.0e-6 : f64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  // CHECK: lc.reduce_sum %{{.*}} {axes = array<i64: 1>} : tensor<2x4x8xf32> -> tensor<2x1x8xf32>
  %1 = lc.reduce_sum %0 {axes = array<i64: 1>} : tensor<2x4x8xf32> -> tensor<2x1x8xf32>
  // CHECK: lc.reduce_mean %{{.*}} {axes = array<i64: 0, 1>, keepdims = false} : tensor<2x4x8xf32> -> tensor<8xf32>
  %2 = lc.reduce_mean %0 {axes = array<i64: 0, 1>, keepdims = false} : tensor<2x4x8xf32> -> tensor<8xf32>
  %3 = lc.reduce_max %0 {axes = array<i64: 2>} : tensor<2x4x8xf32> -> tensor<2x4x1xf32>
  return %0, %1, %2, %3 : tensor<2x4x8xf32>, tensor<2x1x8xf32>, tensor<8xf32>, tensor<2x4x1xf32>
}

// CHECK-LABEL: func.func @layout
func.func @layout(%x: tensor<2x3x4xf32>, %ids: tensor<5xi64>, %table: tensor<10x4xf32>) -> (tensor<4x2x3xf32>, tensor<6x4xf32>, tensor<2x3x4xf32>, tensor<2x2x4xf32>, tensor<2x6x4xf32>, tensor<5x4xf32>, tensor<3x3xf32>, tensor<7xi64>) {
  // CHECK: lc.transpose %{{.*}} {perm = array<i64: 2, 0, 1>} : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  %0 = lc.transpose %x {perm = array<i64: 2, 0, 1>} : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  // CHECK: lc.reshape %{{.*}} : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %1 = lc.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  // CHECK: lc.expand %{{.*}} : tensor<1x3x4xf32> -> tensor<2x3x4xf32>
  %s = lc.slice %x {starts = array<i64: 1, 0, 0>, sizes = array<i64: 1, 3, 4>, steps = array<i64: 1, 1, 1>} : tensor<2x3x4xf32> -> tensor<1x3x4xf32>
  %2 = lc.expand %s : tensor<1x3x4xf32> -> tensor<2x3x4xf32>
  // CHECK: lc.slice %{{.*}} {sizes = array<i64: 2, 2, 4>, starts = array<i64: 0, 2, 0>, steps = array<i64: 1, -2, 1>}
  %3 = lc.slice %x {starts = array<i64: 0, 2, 0>, sizes = array<i64: 2, 2, 4>, steps = array<i64: 1, -2, 1>} : tensor<2x3x4xf32> -> tensor<2x2x4xf32>
  // CHECK: lc.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  %4 = lc.concat %x, %2 {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  // CHECK: lc.gather %{{.*}}, %{{.*}} {axis = 0 : i64} : tensor<10x4xf32>, tensor<5xi64> -> tensor<5x4xf32>
  %5 = lc.gather %table, %ids {axis = 0 : i64} : tensor<10x4xf32>, tensor<5xi64> -> tensor<5x4xf32>
  %m = lc.param "mask" : tensor<3x3xf32>
  // CHECK: lc.trilu %{{.*}} {k = 1 : i64, upper = false} : tensor<3x3xf32>
  %6 = lc.trilu %m {upper = false, k = 1 : i64} : tensor<3x3xf32>
  // CHECK: lc.range {delta = 2.000000e+00 : f64, start = 1.000000e+00 : f64} : tensor<7xi64>
  %7 = lc.range {start = 1.0 : f64, delta = 2.0 : f64} : tensor<7xi64>
  return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<4x2x3xf32>, tensor<6x4xf32>, tensor<2x3x4xf32>, tensor<2x2x4xf32>, tensor<2x6x4xf32>, tensor<5x4xf32>, tensor<3x3xf32>, tensor<7xi64>
}

// CHECK-LABEL: func.func @ssm
func.func @ssm(%u: tensor<1x16x8xf32>, %d: tensor<1x16x8xf32>, %a: tensor<8x4xf32>, %b: tensor<1x16x4xf32>, %c: tensor<1x16x4xf32>) -> tensor<1x16x8xf32> {
  // CHECK: lc.selective_scan %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<1x16x8xf32>, tensor<1x16x8xf32>, tensor<8x4xf32>, tensor<1x16x4xf32>, tensor<1x16x4xf32>) -> tensor<1x16x8xf32>
  %y = lc.selective_scan %u, %d, %a, %b, %c : (tensor<1x16x8xf32>, tensor<1x16x8xf32>, tensor<8x4xf32>, tensor<1x16x4xf32>, tensor<1x16x4xf32>) -> tensor<1x16x8xf32>
  return %y : tensor<1x16x8xf32>
}
