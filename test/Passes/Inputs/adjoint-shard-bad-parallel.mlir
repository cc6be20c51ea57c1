// expected-error @+1 {{lc-adjoint-shard: parallel shards need the exact backward; truncate=4 carries an adjoint window, which does not pass between shards as a state does}}
func.func @f(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  return %x : tensor<1x4x8xf32>
}
