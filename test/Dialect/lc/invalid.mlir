// RUN: longctx-opt %s -split-input-file -verify-diagnostics

func.func @broadcast_mismatch(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{operand shapes [2x3], [4] are not broadcast-compatible}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.add %a, %b : tensor<2x3xf32>, tensor<4xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @wrong_result_shape(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{'lc.mul' op inferred type(s) 'tensor<2x3xf32>' are incompatible with return type(s) of operation 'tensor<3x3xf32>'}}
  %0 = lc.mul %a, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<3x3xf32>
  return
}

// -----

func.func @mixed_element_types(%a: tensor<3xf32>, %b: tensor<3xf64>) {
  // expected-error @+1 {{operands must have the same element type, got 'f32' and 'f64'}}
  %0 = lc.sub %a, %b : tensor<3xf32>, tensor<3xf64> -> tensor<3xf32>
  return
}

// -----

func.func @dynamic_shape(%a: tensor<?x3xf32>) {
  // expected-error @+1 {{must be statically shaped tensor}}
  %0 = lc.exp %a : tensor<?x3xf32>
  return
}

// -----

func.func @matmul_contraction(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+2 {{matmul contraction dims differ: [2x3] x [4x5]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.matmul %a, %b : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x5xf32>
  return
}

// -----

func.func @matmul_vector(%a: tensor<3xf32>, %b: tensor<3x5xf32>) {
  // expected-error @+2 {{matmul operands must have rank >= 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.matmul %a, %b : tensor<3xf32>, tensor<3x5xf32> -> tensor<5xf32>
  return
}

// -----

func.func @gemm_bias(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>, %c: tensor<3xf32>) {
  // expected-error @+2 {{gemm bias [3] does not broadcast to [2x4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.gemm %a, %b, %c : (tensor<2x3xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = lc.softmax %a {axis = 2 : i64} : tensor<2x3xf32>
  return
}

// -----

func.func @layer_norm_scale(%a: tensor<2x8xf32>, %s: tensor<4xf32>) {
  // expected-error @+1 {{scale shape [4] does not broadcast to the normalised shape [8]}}
  %0 = lc.layer_norm %a, %s {axis = 1 : i64} : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @reduce_unsorted(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{reduction axes must be sorted and unique}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.reduce_sum %a {axes = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<1x1xf32>
  return
}

// -----

func.func @transpose_perm(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{perm [0x0] is not a permutation}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.transpose %a {perm = array<i64: 0, 0>} : tensor<2x3xf32> -> tensor<2x2xf32>
  return
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot reshape [2x3] to [7]: element counts differ}}
  %0 = lc.reshape %a : tensor<2x3xf32> -> tensor<7xf32>
  return
}

// -----

func.func @expand_incompatible(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot broadcast [2x3] to [4x3]}}
  %0 = lc.expand %a : tensor<2x3xf32> -> tensor<4x3xf32>
  return
}

// -----

func.func @slice_out_of_bounds(%a: tensor<4xf32>) {
  // expected-error @+2 {{slice dim 0 reads outside [0, 4)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.slice %a {starts = array<i64: 2>, sizes = array<i64: 3>, steps = array<i64: 1>} : tensor<4xf32> -> tensor<3xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+2 {{concat inputs differ in dim 1: [2x3] vs [2x4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = lc.concat %a, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @gather_float_indices(%t: tensor<10x4xf32>, %i: tensor<3xf32>) {
  // expected-error @+1 {{must be statically shaped tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = lc.gather %t, %i {axis = 0 : i64} : tensor<10x4xf32>, tensor<3xf32> -> tensor<3x4xf32>
  return
}

// -----

func.func @trilu_rank(%a: tensor<4xf32>) {
  // expected-error @+1 {{input must have rank >= 2}}
  %0 = lc.trilu %a : tensor<4xf32>
  return
}

// -----

func.func @cast_shape(%a: tensor<4xf32>) {
  // expected-error @+1 {{result shape must equal the input shape}}
  %0 = lc.cast %a : tensor<4xf32> -> tensor<5xi64>
  return
}

// -----

func.func @scan_dims(%u: tensor<1x16x8xf32>, %a: tensor<6x4xf32>, %b: tensor<1x16x4xf32>) {
  // expected-error @+2 {{selective_scan dims disagree: u [1x16x8], A [6x4], B [1x16x4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %y = lc.selective_scan %u, %u, %a, %b, %b : (tensor<1x16x8xf32>, tensor<1x16x8xf32>, tensor<6x4xf32>, tensor<1x16x4xf32>, tensor<1x16x4xf32>) -> tensor<1x16x8xf32>
  return
}

// -----

func.func @mini_sequence_rows(%x: tensor<6x4xf32>, %y: tensor<2x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{split inputs disagree on their number of chunks: 3 and 2}}
  %r = lc.mini_sequence(%x, %y) {chunks = 4 : i64, split = array<i1: true, true>, sum = array<i1: false>} : (tensor<6x4xf32>, tensor<2x4xf32>) -> tensor<6x4xf32> {
  ^bb0(%a: tensor<2x4xf32>, %b: tensor<1x4xf32>):
    lc.yield %a : tensor<2x4xf32>
  }
  return %r : tensor<6x4xf32>
}

// -----

func.func @mini_sequence_chunk_type(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{body argument 0 is 'tensor<2x4xf32>', expected 'tensor<3x4xf32>'}}
  %r = lc.mini_sequence(%x) {chunks = 2 : i64, split = array<i1: true>, sum = array<i1: false>} : (tensor<6x4xf32>) -> tensor<6x4xf32> {
  ^bb0(%a: tensor<2x4xf32>):
    lc.yield %a : tensor<2x4xf32>
  }
  return %r : tensor<6x4xf32>
}

// -----

func.func @mini_sequence_summed_type(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{yields 'tensor<3x4xf32>' for result 0, expected 'tensor<6x4xf32>'}}
  %r = lc.mini_sequence(%x) {chunks = 2 : i64, split = array<i1: true>, sum = array<i1: true>} : (tensor<6x4xf32>) -> tensor<6x4xf32> {
  ^bb0(%a: tensor<3x4xf32>):
    lc.yield %a : tensor<3x4xf32>
  }
  return %r : tensor<6x4xf32>
}

// -----

func.func @mini_sequence_no_split(%w: tensor<6x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{needs a split input with at least one row}}
  %r = lc.mini_sequence(%w) {chunks = 2 : i64, split = array<i1: false>, sum = array<i1: true>} : (tensor<6x4xf32>) -> tensor<6x4xf32> {
  ^bb0(%a: tensor<6x4xf32>):
    lc.yield %a : tensor<6x4xf32>
  }
  return %r : tensor<6x4xf32>
}

// -----

func.func @mini_sequence_chunks(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{needs at least one chunk, got 0}}
  %r = lc.mini_sequence(%x) {chunks = 0 : i64, split = array<i1: true>, sum = array<i1: false>} : (tensor<6x4xf32>) -> tensor<6x4xf32> {
  ^bb0(%a: tensor<6x4xf32>):
    lc.yield %a : tensor<6x4xf32>
  }
  return %r : tensor<6x4xf32>
}

// -----

func.func @mini_sequence_carried_history(%x: tensor<6x4xf32>, %h: tensor<1x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{carried value 0 of type 'tensor<1x4xf32>' needs the same type yielded and returned, and a history of 2 x its rows}}
  %r, %f, %hist = lc.mini_sequence(%x, %h) {chunks = 2 : i64, carried = 1 : i64, split = array<i1: true, false>, sum = array<i1: false>} : (tensor<6x4xf32>, tensor<1x4xf32>) -> (tensor<6x4xf32>, tensor<1x4xf32>, tensor<3x4xf32>) {
  ^bb0(%a: tensor<3x4xf32>, %s: tensor<1x4xf32>):
    lc.yield %a, %s : tensor<3x4xf32>, tensor<1x4xf32>
  }
  return %r : tensor<6x4xf32>
}

// -----

func.func @fused_input_shape(%x: tensor<4x8xf32>, %row: tensor<8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{input 'tensor<8xf32>' is neither the result's shape 'tensor<4x8xf32>' nor a scalar of its element type}}
  %r = lc.fused_elementwise(%x, %row) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<8xf32>):
    %s = lc.add %a, %b : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
    lc.yield %s : tensor<4x8xf32>
  }
  return %r : tensor<4x8xf32>
}

// -----

func.func @fused_not_elementwise(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %r = lc.fused_elementwise(%x) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%a: tensor<4x4xf32>):
    // expected-error @+1 {{cannot be fused (not an elementwise float op)}}
    %m = lc.matmul %a, %a : tensor<4x4xf32>, tensor<4x4xf32> -> tensor<4x4xf32>
    lc.yield %m : tensor<4x4xf32>
  }
  return %r : tensor<4x4xf32>
}

// -----

func.func @fused_yield(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{must yield the last op's result}}
  %r = lc.fused_elementwise(%x) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%a: tensor<4x4xf32>):
    %e = lc.exp %a : tensor<4x4xf32>
    %n = lc.neg %e : tensor<4x4xf32>
    lc.yield %e : tensor<4x4xf32>
  }
  return %r : tensor<4x4xf32>
}
