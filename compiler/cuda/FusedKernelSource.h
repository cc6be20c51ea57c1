//===- FusedKernelSource.h - CUDA C for a fused elementwise chain -*- C++ -*-===//
//
// lc.fused_elementwise's `program` (see FusedElementwiseOp::getProgram) as a
// CUDA kernel: one grid-stride loop with 64-bit offsets, each element's chain
// evaluated in registers with the CPU kernels' formulas (stable sigmoid and
// softplus, NaN-propagating max/min), so the two backends agree to rounding.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/DType.h"
#include "runtime/Status.h"

#include <string>
#include <vector>

namespace longctx {

/// The source of `extern "C" __global__ void <entry>(const T *in0, ...,
/// T *out, long long n)`; `scalar[i]` says input i is rank 0 (read at [0]).
Result<std::string> fusedKernelSource(const std::string &entry, const std::string &program,
                                        const std::vector<bool> &scalar, DType dtype);

} // namespace longctx
