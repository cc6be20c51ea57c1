// expected-error @+1 {{lc-adjoint-shard: parallel must be at least 1, got 0}}
func.func @f(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  return %x : tensor<1x4x8xf32>
}
