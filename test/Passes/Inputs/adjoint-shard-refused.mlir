// The scan's output (the layer's SSM readout) is also a result: an
// activation of the shard escapes it.
func.func @escaping_readout(%x: tensor<1x6x4xf32>) -> (tensor<1x6x4xf32>, tensor<1x6x4xf32>) {
  %a = lc.param "A" : tensor<4x2xf32>
  %wb = lc.param "wb" : tensor<4x2xf32>
  %wc = lc.param "wc" : tensor<4x2xf32>
  %b = lc.matmul %x, %wb : tensor<1x6x4xf32>, tensor<4x2xf32> -> tensor<1x6x2xf32>
  %c = lc.matmul %x, %wc : tensor<1x6x4xf32>, tensor<4x2xf32> -> tensor<1x6x2xf32>
  %d = lc.softplus %x : tensor<1x6x4xf32>
  // expected-error @+1 {{lc-adjoint-shard: cannot shard this scan's layer: an intermediate of the layer ('lc.selective_scan') is also read outside it (a state or activation escapes the shard)}}
  %y = lc.selective_scan %x, %d, %a, %b, %c : (tensor<1x6x4xf32>, tensor<1x6x4xf32>, tensor<4x2xf32>, tensor<1x6x2xf32>, tensor<1x6x2xf32>) -> tensor<1x6x4xf32>
  %o = lc.add %x, %y : tensor<1x6x4xf32>, tensor<1x6x4xf32> -> tensor<1x6x4xf32>
  return %o, %y : tensor<1x6x4xf32>, tensor<1x6x4xf32>
}

// -----

// Besides the scan, the layer mixes tokens (a softmax over the sequence).
func.func @token_mixing(%x: tensor<1x6x4xf32>) -> tensor<1x6x4xf32> {
  %a = lc.param "A" : tensor<4x2xf32>
  %wb = lc.param "wb" : tensor<4x2xf32>
  %b = lc.matmul %x, %wb : tensor<1x6x4xf32>, tensor<4x2xf32> -> tensor<1x6x2xf32>
  %d = lc.softplus %x : tensor<1x6x4xf32>
  // expected-error @+1 {{lc-adjoint-shard: cannot shard this scan's layer: the layer mixes tokens outside its scan ('lc.softmax')}}
  %y = lc.selective_scan %x, %d, %a, %b, %b : (tensor<1x6x4xf32>, tensor<1x6x4xf32>, tensor<4x2xf32>, tensor<1x6x2xf32>, tensor<1x6x2xf32>) -> tensor<1x6x4xf32>
  %m = lc.softmax %y {axis = 1 : i64} : tensor<1x6x4xf32>
  %o = lc.add %x, %m : tensor<1x6x4xf32>, tensor<1x6x4xf32> -> tensor<1x6x4xf32>
  return %o : tensor<1x6x4xf32>
}

// -----

// No residual add of the layer input follows the scan.
func.func @no_residual(%x: tensor<1x6x4xf32>) -> tensor<1x6x4xf32> {
  %a = lc.param "A" : tensor<4x2xf32>
  %wb = lc.param "wb" : tensor<4x2xf32>
  %b = lc.matmul %x, %wb : tensor<1x6x4xf32>, tensor<4x2xf32> -> tensor<1x6x2xf32>
  %d = lc.softplus %x : tensor<1x6x4xf32>
  // expected-error @+1 {{lc-adjoint-shard: cannot shard this scan's layer: no residual add of the layer input follows it through token-wise ops}}
  %y = lc.selective_scan %x, %d, %a, %b, %b : (tensor<1x6x4xf32>, tensor<1x6x4xf32>, tensor<4x2xf32>, tensor<1x6x2xf32>, tensor<1x6x2xf32>) -> tensor<1x6x4xf32>
  return %y : tensor<1x6x4xf32>
}
