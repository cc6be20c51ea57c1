// RUN: longctx-opt %s -split-input-file -lc-append-loss -verify-diagnostics

// expected-error @+1 {{the logits must be a float [batch, seq, vocab] tensor, got 'tensor<4x8xf32>'}}
func.func @main(%ids: tensor<4xi64> {lc.name = "input_ids"}) -> (tensor<4x8xf32> {lc.name = "logits"}) {
  %w = lc.param "w" : tensor<4x8xf32>
  return %w : tensor<4x8xf32>
}

// -----

// expected-error @+1 {{no `labels` or `input_ids` input to take next-token targets from}}
func.func @main(%x: tensor<1x4x8xf32> {lc.name = "x"}) -> (tensor<1x4x8xf32> {lc.name = "logits"}) {
  return %x : tensor<1x4x8xf32>
}
