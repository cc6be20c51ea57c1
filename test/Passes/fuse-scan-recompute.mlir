// RUN: longctx-opt %s -split-input-file -lc-fuse-scan-recompute | FileCheck %s

// A recomputed scan next to its gradient: the gradient returns y, the scan
// goes, and y's reader (before the gradient) moves after it.
// CHECK-LABEL: func.func @recomputed
// CHECK-NOT: lc.selective_scan %
// CHECK: %[[DU:[^,]*]], {{.*}}, %[[Y:[^ ]*]] = lc.selective_scan_grad %arg5, %arg0, %arg1, %arg2, %arg3, %arg4 {with_output}
// CHECK: %[[GZ:.*]] = lc.mul %arg5, %[[Y]]
// CHECK: return %[[GZ]], %[[DU]]
func.func @recomputed(%u: tensor<1x4x2xf32>, %d: tensor<1x4x2xf32>, %a: tensor<2x3xf32>,
                      %b: tensor<1x4x3xf32>, %c: tensor<1x4x3xf32>, %dout: tensor<1x4x2xf32>)
    -> (tensor<1x4x2xf32>, tensor<1x4x2xf32>) {
  %y = lc.selective_scan %u, %d, %a, %b, %c : (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>) -> tensor<1x4x2xf32>
  %gz = lc.mul %dout, %y : tensor<1x4x2xf32>, tensor<1x4x2xf32> -> tensor<1x4x2xf32>
  %g:5 = lc.selective_scan_grad %dout, %u, %d, %a, %b, %c : (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>) -> (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>)
  return %gz, %g#0 : tensor<1x4x2xf32>, tensor<1x4x2xf32>
}

// -----

// The state form, truncated: the same, the window passes through.
// CHECK-LABEL: func.func @shard
// CHECK-NOT: lc.selective_scan_state %
// CHECK: %[[Y:[^ ]*]] = lc.selective_scan_state_grad %arg6, %arg7, %arg0, %arg1, %arg2, %arg3, %arg4, %arg5 {truncate = 2 : i64, with_output}
// CHECK: lc.mul %arg6, %[[Y]]
func.func @shard(%u: tensor<1x4x2xf32>, %d: tensor<1x4x2xf32>, %a: tensor<2x3xf32>,
                 %b: tensor<1x4x3xf32>, %c: tensor<1x4x3xf32>, %h0: tensor<1x2x3xf32>,
                 %dout: tensor<1x4x2xf32>, %window: tensor<1x2x2x3xf32>)
    -> (tensor<1x4x2xf32>, tensor<1x2x2x3xf32>) {
  %y, %last = lc.selective_scan_state %u, %d, %a, %b, %c, %h0 {truncate = 2 : i64} : (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>, tensor<1x2x3xf32>) -> (tensor<1x4x2xf32>, tensor<1x2x3xf32>)
  %gz = lc.mul %dout, %y : tensor<1x4x2xf32>, tensor<1x4x2xf32> -> tensor<1x4x2xf32>
  %g:6 = lc.selective_scan_state_grad %dout, %window, %u, %d, %a, %b, %c, %h0 {truncate = 2 : i64} : (tensor<1x4x2xf32>, tensor<1x2x2x3xf32>, tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>, tensor<1x2x3xf32>) -> (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>, tensor<1x2x2x3xf32>)
  return %gz, %g#5 : tensor<1x4x2xf32>, tensor<1x2x2x3xf32>
}

// -----

// The gradient reads y (through the mul): nothing changes.
// CHECK-LABEL: func.func @dependent
// CHECK: %[[Y:.*]] = lc.selective_scan %arg0
// CHECK: %[[DY:.*]] = lc.mul %arg5, %[[Y]]
// CHECK: %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^ ]*}} = lc.selective_scan_grad %[[DY]], {{.*}} -> (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>)
func.func @dependent(%u: tensor<1x4x2xf32>, %d: tensor<1x4x2xf32>, %a: tensor<2x3xf32>,
                     %b: tensor<1x4x3xf32>, %c: tensor<1x4x3xf32>, %dout: tensor<1x4x2xf32>)
    -> (tensor<1x4x2xf32>, tensor<1x4x2xf32>) {
  %y = lc.selective_scan %u, %d, %a, %b, %c : (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>) -> tensor<1x4x2xf32>
  %dy = lc.mul %dout, %y : tensor<1x4x2xf32>, tensor<1x4x2xf32> -> tensor<1x4x2xf32>
  %g:5 = lc.selective_scan_grad %dy, %u, %d, %a, %b, %c : (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>) -> (tensor<1x4x2xf32>, tensor<1x4x2xf32>, tensor<2x3xf32>, tensor<1x4x3xf32>, tensor<1x4x3xf32>)
  return %y, %g#0 : tensor<1x4x2xf32>, tensor<1x4x2xf32>
}
