//===- OnnxInitializers.cpp - Rewriting an ONNX model's initializer data ---===//
#include "runtime/OnnxInitializers.h"

#include <cstdint>

namespace longctx {
namespace {

// Field numbers from onnx.proto.
constexpr uint32_t kModelGraph = 7;
constexpr uint32_t kGraphInitializer = 5;
constexpr uint32_t kTensorName = 8, kTensorRawData = 9;
/// float_data, int32_data, int64_data, raw_data, double_data, uint64_data,
/// external_data, data_location: what "the data" of a TensorProto is.
bool isTensorDataField(uint32_t field) {
  return field == 4 || field == 5 || field == 7 || field == 9 || field == 10 || field == 11 ||
         field == 13 || field == 14;
}

struct Reader {
  std::string_view bytes;
  size_t pos = 0;

  bool done() const { return pos >= bytes.size(); }
  bool varint(uint64_t &v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= bytes.size())
        return false;
      uint8_t b = uint8_t(bytes[pos++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80))
        return true;
    }
    return false;
  }
  /// Reads one field; `payload` is the length-delimited content (wire type
  /// 2) and `whole` the field's bytes including its tag.
  bool field(uint32_t &number, uint32_t &wire, std::string_view &payload, std::string_view &whole) {
    size_t start = pos;
    uint64_t tag;
    if (!varint(tag))
      return false;
    number = uint32_t(tag >> 3);
    wire = uint32_t(tag & 7);
    uint64_t v;
    switch (wire) {
    case 0:
      if (!varint(v))
        return false;
      break;
    case 1:
      if (bytes.size() - pos < 8)
        return false;
      pos += 8;
      break;
    case 2:
      if (!varint(v) || v > bytes.size() - pos)
        return false;
      payload = bytes.substr(pos, size_t(v));
      pos += size_t(v);
      break;
    case 5:
      if (bytes.size() - pos < 4)
        return false;
      pos += 4;
      break;
    default:
      return false; // groups are not used by ONNX
    }
    whole = bytes.substr(start, pos - start);
    return true;
  }
};

void putVarint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}

void putBytesField(std::string &out, uint32_t number, std::string_view payload) {
  putVarint(out, (uint64_t(number) << 3) | 2);
  putVarint(out, payload.size());
  out.append(payload);
}

using Replacement = std::function<std::optional<std::string_view>(const std::string &)>;

bool rewriteTensor(std::string_view tensor, const Replacement &replacement, std::string &out) {
  Reader r{tensor};
  std::string name;
  uint32_t number, wire;
  std::string_view payload, whole;
  while (!r.done()) {
    if (!r.field(number, wire, payload, whole))
      return false;
    if (number == kTensorName && wire == 2)
      name = std::string(payload);
  }
  std::optional<std::string_view> data = replacement(name);
  if (!data) {
    out.append(tensor);
    return true;
  }
  Reader again{tensor};
  while (!again.done()) {
    again.field(number, wire, payload, whole);
    if (!isTensorDataField(number))
      out.append(whole);
  }
  if (!data->empty())
    putBytesField(out, kTensorRawData, *data);
  return true;
}

/// Copies `message`, rewriting the length-delimited field `target` with
/// `rewrite` (ModelProto -> graph, GraphProto -> initializer).
template <typename Fn>
bool rewriteField(std::string_view message, uint32_t target, Fn &&rewrite, std::string &out) {
  Reader r{message};
  uint32_t number, wire;
  std::string_view payload, whole;
  while (!r.done()) {
    if (!r.field(number, wire, payload, whole))
      return false;
    if (number != target || wire != 2) {
      out.append(whole);
      continue;
    }
    std::string inner;
    if (!rewrite(payload, inner))
      return false;
    putBytesField(out, number, inner);
  }
  return true;
}

} // namespace

Result<std::string> rewriteOnnxInitializers(std::string_view model, const Replacement &replacement) {
  std::string out;
  out.reserve(model.size());
  bool ok = rewriteField(model, kModelGraph, [&](std::string_view graph, std::string &graphOut) {
    return rewriteField(graph, kGraphInitializer, [&](std::string_view tensor, std::string &tensorOut) {
      return rewriteTensor(tensor, replacement, tensorOut);
    }, graphOut);
  }, out);
  if (!ok)
    return Status::error("the model is not valid binary protobuf");
  return out;
}

} // namespace longctx
