// A reverse loop marked for parallel shards whose carried value does not
// pass through a scan's state gradient cannot be split.
func.func @main(%x: tensor<4x3xf32>, %h: tensor<1x3xf32>) -> (tensor<4x3xf32>, tensor<1x3xf32>) {
  // expected-error @+1 {{lc-adjoint-state-passing: the carried cotangent must pass through exactly one untruncated selective_scan_state_grad}}
  %y, %final, %hist = lc.mini_sequence(%x, %h) {chunks = 2 : i64, carried = 1 : i64, reverse, lc.adjoint_parallel = 2 : i64, split = array<i1: true, false>, sum = array<i1: false>} : (tensor<4x3xf32>, tensor<1x3xf32>) -> (tensor<4x3xf32>, tensor<1x3xf32>, tensor<2x3xf32>) {
  ^bb0(%xc: tensor<2x3xf32>, %s: tensor<1x3xf32>):
    %t = lc.add %xc, %s : tensor<2x3xf32>, tensor<1x3xf32> -> tensor<2x3xf32>
    %next = lc.reduce_sum %t {axes = array<i64: 0>, keepdims = true} : tensor<2x3xf32> -> tensor<1x3xf32>
    lc.yield %t, %next : tensor<2x3xf32>, tensor<1x3xf32>
  }
  return %y, %final : tensor<4x3xf32>, tensor<1x3xf32>
}
