// RUN: longctx-opt %s -split-input-file -lc-fuse-attention -verify-diagnostics

// Graphs that look like attention but are not causal SDPA stay as they are,
// with a remark that says why.
func.func @not_causal(%q: tensor<1x1x2x4xf32>, %k: tensor<1x1x2x4xf32>, %v: tensor<1x1x2x4xf32>) -> tensor<1x1x2x4xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x2x4xf32> -> tensor<1x1x4x2xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x2x4xf32>, tensor<1x1x4x2xf32> -> tensor<1x1x2x2xf32>
  %mask = lc.constant dense<[[true, true], [false, true]]> : tensor<2x2xi1>
  %low = lc.constant dense<-1.0e9> : tensor<f32>
  %m = lc.where %mask, %s, %low : tensor<2x2xi1>, tensor<1x1x2x2xf32>, tensor<f32> -> tensor<1x1x2x2xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x1x2x2xf32>
  // expected-remark @+1 {{attention not fused: the mask is not causal}}
  %o = lc.matmul %p, %v : tensor<1x1x2x2xf32>, tensor<1x1x2x4xf32> -> tensor<1x1x2x4xf32>
  return %o : tensor<1x1x2x4xf32>
}

// -----

func.func @probabilities_reused(%q: tensor<1x1x2x4xf32>, %k: tensor<1x1x2x4xf32>, %v: tensor<1x1x2x4xf32>) -> (tensor<1x1x2x4xf32>, tensor<1x1x2x2xf32>) {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x2x4xf32> -> tensor<1x1x4x2xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x2x4xf32>, tensor<1x1x4x2xf32> -> tensor<1x1x2x2xf32>
  %p = lc.softmax %s {axis = 3 : i64} : tensor<1x1x2x2xf32>
  // expected-remark @+1 {{attention not fused: the attention probabilities have other users}}
  %o = lc.matmul %p, %v : tensor<1x1x2x2xf32>, tensor<1x1x2x4xf32> -> tensor<1x1x2x4xf32>
  return %o, %p : tensor<1x1x2x4xf32>, tensor<1x1x2x2xf32>
}

// -----

func.func @fill_not_negative(%q: tensor<1x1x2x4xf32>, %k: tensor<1x1x2x4xf32>, %v: tensor<1x1x2x4xf32>) -> tensor<1x1x2x4xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x2x4xf32> -> tensor<1x1x4x2xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x2x4xf32>, tensor<1x1x4x2xf32> -> tensor<1x1x2x2xf32>
  %mask = lc.constant dense<[[true, false], [true, true]]> : tensor<2x2xi1>
  %zero = lc.constant dense<0.0> : tensor<f32>
  %m = lc.where %mask, %s, %zero : tensor<2x2xi1>, tensor<1x1x2x2xf32>, tensor<f32> -> tensor<1x1x2x2xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x1x2x2xf32>
  // expected-remark @+1 {{attention not fused: the masked fill is not a very negative constant}}
  %o = lc.matmul %p, %v : tensor<1x1x2x2xf32>, tensor<1x1x2x4xf32> -> tensor<1x1x2x4xf32>
  return %o : tensor<1x1x2x4xf32>
}

// -----

func.func @additive_not_causal(%q: tensor<1x1x2x4xf32>, %k: tensor<1x1x2x4xf32>, %v: tensor<1x1x2x4xf32>) -> tensor<1x1x2x4xf32> {
  %kt = lc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x1x2x4xf32> -> tensor<1x1x4x2xf32>
  %s = lc.matmul %q, %kt : tensor<1x1x2x4xf32>, tensor<1x1x4x2xf32> -> tensor<1x1x2x2xf32>
  %bias = lc.constant dense<[[0.5, 0.0], [0.0, 0.0]]> : tensor<2x2xf32>
  %m = lc.add %s, %bias : tensor<1x1x2x2xf32>, tensor<2x2xf32> -> tensor<1x1x2x2xf32>
  %p = lc.softmax %m {axis = 3 : i64} : tensor<1x1x2x2xf32>
  // expected-remark @+1 {{attention not fused: the added mask is not causal}}
  %o = lc.matmul %p, %v : tensor<1x1x2x2xf32>, tensor<1x1x2x4xf32> -> tensor<1x1x2x4xf32>
  return %o : tensor<1x1x2x4xf32>
}
