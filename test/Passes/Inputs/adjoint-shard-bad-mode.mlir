// expected-error @+1 {{lc-adjoint-shard: mode must be exact or paper, got 'approximate'}}
func.func @f(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  return %x : tensor<1x4x8xf32>
}
