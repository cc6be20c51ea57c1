//===- OperandChecks.h - Operand checks the CPU and CUDA kernels share ---===//
//
// What an op's operands and attributes must be, checked once for the CPU
// kernels and their CUDA twins alike (the same checks, the same messages).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <vector>

namespace longctx {
namespace cpu {

/// Checks transpose's `perm` (default: reversed dims) against x and o, and
/// gives the input stride of each output dim.
Status resolveTranspose(const char *op, const TensorRef &x, const TensorRef &o,
                        const AttrMap &attrs, std::vector<int64_t> &inStrides);

/// The strided region of `big` that `slice` reads and `slice_scatter`
/// writes: element i of `small` is big[base + sum(i_d * strides[d])].
struct SliceRegion {
  int64_t base = 0;
  std::vector<int64_t> strides;
};

/// Checks the starts/steps (and optional sizes) attributes of a slice of
/// `big` with shape `small` and resolves them to element offsets.
Status resolveSlice(const char *op, const AttrMap &attrs, const Shape &big, const Shape &small,
                    const char *smallName, SliceRegion &region);

/// rms_norm(x, scale) and its gradient: scale 1-D over x's last dim, the
/// output (or dx) like x; gives the rows and their length.
Status checkRmsNorm(const char *op, const TensorRef &x, const TensorRef &scale,
                    const TensorRef &out, int64_t &rows, int64_t &n);

} // namespace cpu
} // namespace longctx
