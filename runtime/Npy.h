//===- Npy.h - NumPy .npy files in and out ---------------------------------===//
#pragma once

#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <string>

namespace longctx {

/// Reads a little-endian, C-order .npy file of f32, f64, i64, i32, i8, u8 or
/// bool. The header is checked against the file size before allocating.
Result<Tensor> readNpy(const std::string &path);

/// Writes `t` as a version 1.0 .npy file.
Status writeNpy(const std::string &path, const TensorRef &t);

} // namespace longctx
