//===- DType.h - Element types shared by the artifact, runtime and compiler -===//
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace longctx {

/// Element types a tensor can hold. Bool is stored as one byte (0 or 1).
enum class DType : uint8_t { F32, F64, F16, BF16, I64, I32, I8, U8, Bool };

/// Size of one element in bytes.
size_t dtypeSize(DType dtype);
/// Canonical short name: "f32", "f64", "f16", "bf16", "i64", "i32", "i8", "u8", "bool".
const char *dtypeName(DType dtype);
/// Inverse of dtypeName; nullopt for an unknown name.
std::optional<DType> parseDType(std::string_view name);
bool isFloat(DType dtype);

} // namespace longctx
