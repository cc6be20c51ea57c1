//===- Npy.cpp - NumPy .npy files in and out -------------------------------===//
#include "runtime/Npy.h"

#include <cstring>
#include <fstream>
#include <regex>

namespace longctx {
namespace {

const char *descrOf(DType dtype) {
  switch (dtype) {
  case DType::F32: return "<f4";
  case DType::F64: return "<f8";
  case DType::F16: return "<f2";
  case DType::I64: return "<i8";
  case DType::I32: return "<i4";
  case DType::I8: return "|i1";
  case DType::U8: return "|u1";
  case DType::Bool: return "|b1";
  case DType::BF16: return nullptr;
  }
  return nullptr;
}

std::optional<DType> dtypeOfDescr(const std::string &d) {
  for (DType t : {DType::F32, DType::F64, DType::F16, DType::I64, DType::I32, DType::I8,
                  DType::U8, DType::Bool})
    if (d == descrOf(t))
      return t;
  return std::nullopt;
}

} // namespace

Result<Tensor> readNpy(const std::string &path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return Status::error(path + ": cannot open (missing file?)");
  uint64_t fileBytes = uint64_t(in.tellg());
  in.seekg(0);
  auto fail = [&](const std::string &why) { return Status::error(path + ": " + why); };
  char magic[8];
  if (fileBytes < 10 || !in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    return fail("not a .npy file");
  uint8_t major = uint8_t(magic[6]);
  uint64_t headerLen = 0;
  if (major == 1) {
    uint8_t b[2];
    in.read(reinterpret_cast<char *>(b), 2);
    headerLen = b[0] | (uint64_t(b[1]) << 8);
  } else if (major == 2 || major == 3) {
    uint8_t b[4];
    in.read(reinterpret_cast<char *>(b), 4);
    headerLen = b[0] | (uint64_t(b[1]) << 8) | (uint64_t(b[2]) << 16) | (uint64_t(b[3]) << 24);
  } else {
    return fail("unsupported .npy version " + std::to_string(major));
  }
  uint64_t dataStart = uint64_t(in.tellg()) + headerLen;
  if (!in || headerLen > 65536 || dataStart > fileBytes)
    return fail("truncated .npy header");
  std::string header(headerLen, '\0');
  in.read(header.data(), std::streamsize(headerLen));

  std::smatch m;
  static const std::regex descrRe("'descr'\\s*:\\s*'([^']*)'");
  static const std::regex fortranRe("'fortran_order'\\s*:\\s*(True|False)");
  static const std::regex shapeRe("'shape'\\s*:\\s*\\(([^)]*)\\)");
  if (!std::regex_search(header, m, descrRe))
    return fail("header has no descr");
  std::optional<DType> dtype = dtypeOfDescr(m[1]);
  if (!dtype)
    return fail("unsupported dtype '" + m[1].str() +
                "' (supported: float32, float64, float16, int64, int32, int8, uint8, bool; little-endian)");
  if (!std::regex_search(header, m, fortranRe) || m[1] == "True")
    return fail("Fortran-order arrays are not supported: save a C-contiguous array");
  if (!std::regex_search(header, m, shapeRe))
    return fail("header has no shape");
  Shape shape;
  std::string dims = m[1];
  uint64_t elements = 1;
  for (size_t pos = 0; pos < dims.size();) {
    size_t comma = dims.find(',', pos);
    std::string item = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? dims.size() : comma + 1;
    if (item.find_first_not_of(" ") == std::string::npos)
      continue;
    char *end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (v < 0 || (end && *end && std::string(end).find_first_not_of(" L") != std::string::npos))
      return fail("bad shape entry '" + item + "'");
    if (v > 0 && elements > (uint64_t(1) << 56) / uint64_t(v))
      return fail("shape is implausibly large");
    elements *= uint64_t(v);
    shape.push_back(v);
  }
  uint64_t bytes = elements * dtypeSize(*dtype);
  if (fileBytes - dataStart < bytes)
    return fail("data is truncated: header promises " + std::to_string(bytes) + " bytes, file has " +
                std::to_string(fileBytes - dataStart));
  Tensor t(*dtype, shape);
  in.seekg(std::streamoff(dataStart));
  if (!in.read(static_cast<char *>(t.data()), std::streamsize(bytes)))
    return fail("cannot read data");
  if (*dtype == DType::Bool)
    for (int64_t i = 0; i < t.numElements(); ++i)
      if (t.as<uint8_t>()[i] > 1)
        return fail("bool array holds a value other than 0 or 1");
  return t;
}

Status writeNpy(const std::string &path, const TensorRef &t) {
  const char *descr = descrOf(t.dtype);
  if (!descr)
    return Status::error(path + ": dtype " + std::string(dtypeName(t.dtype)) + " has no .npy form");
  std::string shape = "(";
  for (size_t i = 0; i < t.shape.size(); ++i)
    shape += std::to_string(t.shape[i]) + (t.shape.size() == 1 || i + 1 < t.shape.size() ? "," : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " +
                       shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return Status::error(path + ": cannot open for writing");
  uint16_t len = uint16_t(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  char lenBytes[2] = {char(len & 0xff), char(len >> 8)};
  out.write(lenBytes, 2);
  out << header;
  out.write(static_cast<const char *>(t.data), std::streamsize(t.bytes()));
  if (!out)
    return Status::error(path + ": write failed");
  return Status();
}

} // namespace longctx
