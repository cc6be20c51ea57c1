// expected-error @+1 {{lc-adjoint-shard: truncate must be 0 (exact) or a number of steps, got -1}}
func.func @f(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  return %x : tensor<1x4x8xf32>
}
