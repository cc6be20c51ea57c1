//===- OnnxLoader.cpp - ModelProto (binary or JSON) -> plain C++ model -----===//
//
// Everything here is untrusted input: sizes are checked before allocating,
// external data must stay inside the model's folder, payloads must match
// their declared dtype and shape, and protobuf parsing is depth-bounded.
// This file is built with exceptions on and catches them at its boundary.
//
//===----------------------------------------------------------------------===//
#include "compiler/onnx/OnnxModel.h"

#include <onnx/onnx_pb.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace longctx::onnx_import {
namespace {

constexpr uint64_t kMaxModelBytes = uint64_t(2) << 30; // protobuf's own limit
constexpr int kMaxProtoDepth = 64;

class Loader {
public:
  Loader(std::string path, const LoadOptions &options, std::vector<std::string> &errors)
      : path_(std::move(path)), options_(options), errors_(errors) {}

  std::optional<Model> load();

private:
  void error(const std::string &where, const std::string &why) {
    errors_.push_back(path_ + ":" + where + ": " + why);
  }
  bool parse(onnx::ModelProto &proto);
  std::optional<DType> convertElementType(int32_t type, const std::string &where);
  ValueInfo convertValueInfo(const onnx::ValueInfoProto &info);
  std::shared_ptr<TensorData> convertTensor(const onnx::TensorProto &t, const std::string &where);
  bool readExternal(const onnx::TensorProto &t, TensorData &out, const std::string &where);
  Attribute convertAttribute(const onnx::AttributeProto &a, const std::string &where);

  std::string path_;
  const LoadOptions &options_;
  std::vector<std::string> &errors_;
  /// External data files that do not exist: file -> (tensors, first tensor).
  std::map<std::string, std::pair<int, std::string>> missingFiles_;
};

bool Loader::parse(onnx::ModelProto &proto) {
  std::error_code ec;
  if (!fs::exists(path_, ec)) {
    errors_.push_back(path_ + ": no such file");
    return false;
  }
  uint64_t size = fs::file_size(path_, ec);
  if (ec || size > kMaxModelBytes) {
    errors_.push_back(path_ + ": cannot read, or larger than 2 GiB (store weights as external data)");
    return false;
  }
  std::ifstream in(path_, std::ios::binary);
  std::string bytes(size, '\0');
  if (!in.read(bytes.data(), std::streamsize(size))) {
    errors_.push_back(path_ + ": cannot read file");
    return false;
  }
  bool isJson = fs::path(path_).extension() == ".json";
  if (isJson) {
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(bytes, &proto, opts);
    if (!status.ok()) {
      // One line per problem: protobuf appends the offending text after a newline.
      std::string why(status.message());
      why = why.substr(0, why.find('\n'));
      errors_.push_back(path_ + ": not a valid ONNX JSON model (protobuf JSON mapping of "
                                "ModelProto): " + why);
      return false;
    }
    return true;
  }
  google::protobuf::io::ArrayInputStream raw(bytes.data(), int(bytes.size()));
  google::protobuf::io::CodedInputStream coded(&raw);
  coded.SetRecursionLimit(kMaxProtoDepth);
  coded.SetTotalBytesLimit(int(std::min<uint64_t>(size + 1, INT32_MAX)));
  if (!proto.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
    errors_.push_back(path_ + ": not a valid ONNX protobuf (truncated, corrupt, or not a "
                              "ModelProto)");
    return false;
  }
  if (!proto.has_graph()) {
    errors_.push_back(path_ + ": the model has no graph (not an ONNX model?)");
    return false;
  }
  return true;
}

std::optional<DType> Loader::convertElementType(int32_t type, const std::string &where) {
  switch (type) {
  case onnx::TensorProto::FLOAT: return DType::F32;
  case onnx::TensorProto::DOUBLE: return DType::F64;
  case onnx::TensorProto::FLOAT16: return DType::F16;
  case onnx::TensorProto::BFLOAT16: return DType::BF16;
  case onnx::TensorProto::INT64: return DType::I64;
  case onnx::TensorProto::INT32: return DType::I32;
  case onnx::TensorProto::INT8: return DType::I8;
  case onnx::TensorProto::UINT8: return DType::U8;
  case onnx::TensorProto::BOOL: return DType::Bool;
  default:
    error(where, "element type " +
                     (onnx::TensorProto_DataType_IsValid(type)
                          ? onnx::TensorProto_DataType_Name(onnx::TensorProto_DataType(type))
                          : std::to_string(type)) +
                     " is not supported (float, double, float16, bfloat16, int64, int32, "
                     "int8, uint8, bool are)");
    return std::nullopt;
  }
}

ValueInfo Loader::convertValueInfo(const onnx::ValueInfoProto &info) {
  ValueInfo v;
  v.name = info.name();
  if (!info.has_type() || !info.type().has_tensor_type())
    return v;
  const auto &tt = info.type().tensor_type();
  if (tt.elem_type() != 0)
    v.dtype = convertElementType(tt.elem_type(), info.name());
  if (tt.has_shape()) {
    std::vector<Dim> dims;
    for (const auto &d : tt.shape().dim()) {
      Dim dim;
      if (d.has_dim_value())
        dim.value = d.dim_value();
      else if (d.has_dim_param())
        dim.symbol = d.dim_param();
      dims.push_back(dim);
    }
    v.dims = std::move(dims);
  }
  return v;
}

/// Copies `count` typed-field values into the payload, converting to the
/// tensor's storage type (ONNX stores bool/int8/uint8/int16/f16 in int32_data).
template <typename Src, typename Dst>
void copyTyped(const google::protobuf::RepeatedField<Src> &src, void *dst) {
  Dst *out = static_cast<Dst *>(dst);
  for (int i = 0; i < src.size(); ++i)
    out[i] = static_cast<Dst>(src.Get(i));
}

bool Loader::readExternal(const onnx::TensorProto &t, TensorData &out, const std::string &where) {
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto &kv : t.external_data()) {
    try {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::stoull(kv.value());
      else if (kv.key() == "length")
        length = std::stoull(kv.value());
    } catch (const std::exception &) {
      error(where, "external data key '" + kv.key() + "' has a non-numeric value");
      return false;
    }
  }
  if (location.empty()) {
    error(where, "external data has no location");
    return false;
  }
  fs::path base = fs::absolute(fs::path(path_)).parent_path();
  fs::path file = (base / location).lexically_normal();
  // Keep external data inside the model's folder: no absolute paths, no "..".
  auto rel = file.lexically_relative(base);
  if (fs::path(location).is_absolute() || rel.empty() || *rel.begin() == "..") {
    error(where, "external data path '" + location + "' leaves the model's folder");
    return false;
  }
  out.externalFile = file.string();
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    if (options_.allowMissingWeights) {
      out.dataAvailable = false;
      return true;
    }
    // Reported once per file after all initializers are seen, not per tensor.
    auto &[count, first] = missingFiles_[location];
    if (count++ == 0)
      first = where;
    return false;
  }
  uint64_t fileSize = fs::file_size(file, ec);
  uint64_t need = uint64_t(numElements(out.shape)) * dtypeSize(out.dtype);
  if (length && *length != need) {
    error(where, "external data length " + std::to_string(*length) + " does not match " +
                     std::to_string(need) + " bytes of " + dtypeName(out.dtype) + " " +
                     shapeToString(out.shape));
    return false;
  }
  if (ec || offset > fileSize || need > fileSize - offset) {
    error(where, "external data file '" + location + "' is too short");
    return false;
  }
  out.payload = std::make_shared<Tensor>(out.dtype, out.shape);
  std::ifstream in(file, std::ios::binary);
  in.seekg(std::streamoff(offset));
  if (!in.read(static_cast<char *>(out.payload->data()), std::streamsize(need))) {
    error(where, "cannot read external data file '" + location + "'");
    return false;
  }
  return true;
}

std::shared_ptr<TensorData> Loader::convertTensor(const onnx::TensorProto &t,
                                                  const std::string &where) {
  auto out = std::make_shared<TensorData>();
  out->name = t.name();
  std::optional<DType> dtype = convertElementType(t.data_type(), where);
  if (!dtype)
    return nullptr;
  out->dtype = *dtype;
  uint64_t elements = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && elements > (uint64_t(1) << 40) / uint64_t(d))) {
      error(where, "tensor has an invalid or implausibly large shape");
      return nullptr;
    }
    elements *= uint64_t(d);
    out->shape.push_back(d);
  }
  uint64_t bytes = elements * dtypeSize(*dtype);
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    return readExternal(t, *out, where) ? out : nullptr;
  // Validate sizes before allocating: a corrupt file may claim huge shapes.
  uint64_t have = 0;
  if (t.has_raw_data())
    have = t.raw_data().size();
  else if (t.float_data_size())
    have = uint64_t(t.float_data_size()) * dtypeSize(*dtype);
  else if (t.double_data_size())
    have = uint64_t(t.double_data_size()) * dtypeSize(*dtype);
  else if (t.int64_data_size())
    have = uint64_t(t.int64_data_size()) * dtypeSize(*dtype);
  else if (t.int32_data_size())
    have = uint64_t(t.int32_data_size()) * dtypeSize(*dtype);
  if (have != bytes) {
    if (t.has_raw_data())
      error(where, "raw_data has " + std::to_string(have) + " bytes but " + dtypeName(*dtype) +
                       " " + shapeToString(out->shape) + " needs " + std::to_string(bytes));
    else
      error(where, "holds " + std::to_string(have / dtypeSize(*dtype)) + " values but its shape " +
                       shapeToString(out->shape) + " needs " + std::to_string(elements));
    return nullptr;
  }

  out->payload = std::make_shared<Tensor>(*dtype, out->shape);
  void *dst = out->payload->data();
  if (t.has_raw_data()) {
    std::memcpy(dst, t.raw_data().data(), bytes);
  } else if (t.float_data_size()) {
    if (*dtype != DType::F32) {
      error(where, "float_data is only valid for float tensors");
      return nullptr;
    }
    copyTyped<float, float>(t.float_data(), dst);
  } else if (t.double_data_size()) {
    if (*dtype != DType::F64) {
      error(where, "double_data is only valid for double tensors");
      return nullptr;
    }
    copyTyped<double, double>(t.double_data(), dst);
  } else if (t.int64_data_size()) {
    if (*dtype != DType::I64) {
      error(where, "int64_data is only valid for int64 tensors");
      return nullptr;
    }
    copyTyped<int64_t, int64_t>(t.int64_data(), dst);
  } else if (t.int32_data_size()) {
    switch (*dtype) {
    case DType::I32: copyTyped<int32_t, int32_t>(t.int32_data(), dst); break;
    case DType::I8: copyTyped<int32_t, int8_t>(t.int32_data(), dst); break;
    case DType::U8: copyTyped<int32_t, uint8_t>(t.int32_data(), dst); break;
    case DType::Bool: copyTyped<int32_t, uint8_t>(t.int32_data(), dst); break;
    case DType::F16:
    case DType::BF16: copyTyped<int32_t, uint16_t>(t.int32_data(), dst); break;
    default:
      error(where, "int32_data is not valid for " + std::string(dtypeName(*dtype)) + " tensors");
      return nullptr;
    }
  }
  if (*dtype == DType::Bool)
    for (uint64_t i = 0; i < elements; ++i)
      if (static_cast<uint8_t *>(dst)[i] > 1) {
        error(where, "bool tensor holds a value other than 0 or 1");
        return nullptr;
      }
  return out;
}

Attribute Loader::convertAttribute(const onnx::AttributeProto &a, const std::string &where) {
  Attribute out;
  out.name = a.name();
  switch (a.type()) {
  case onnx::AttributeProto::FLOAT: out.kind = Attribute::Kind::Float; out.f = a.f(); break;
  case onnx::AttributeProto::INT: out.kind = Attribute::Kind::Int; out.i = a.i(); break;
  case onnx::AttributeProto::STRING: out.kind = Attribute::Kind::String; out.s = a.s(); break;
  case onnx::AttributeProto::FLOATS:
    out.kind = Attribute::Kind::Floats;
    out.floats.assign(a.floats().begin(), a.floats().end());
    break;
  case onnx::AttributeProto::INTS:
    out.kind = Attribute::Kind::Ints;
    out.ints.assign(a.ints().begin(), a.ints().end());
    break;
  case onnx::AttributeProto::STRINGS:
    out.kind = Attribute::Kind::Strings;
    out.strings.assign(a.strings().begin(), a.strings().end());
    break;
  case onnx::AttributeProto::TENSOR:
    out.kind = Attribute::Kind::Tensor;
    out.t = convertTensor(a.t(), where + ": attribute '" + a.name() + "'");
    if (!out.t)
      out.kind = Attribute::Kind::Other;
    break;
  default: out.kind = Attribute::Kind::Other; break;
  }
  return out;
}

std::optional<Model> Loader::load() {
  onnx::ModelProto proto;
  if (!parse(proto))
    return std::nullopt;
  size_t errorsBefore = errors_.size();
  Model model;
  model.path = path_;
  model.irVersion = proto.ir_version();
  model.producer = proto.producer_name() + " " + proto.producer_version();
  for (const auto &op : proto.opset_import())
    model.opsets[op.domain() == "ai.onnx" ? "" : op.domain()] = op.version();
  const onnx::GraphProto &g = proto.graph();

  std::map<std::string, bool> isInitializer;
  for (const auto &init : g.initializer()) {
    std::string where = init.name().empty() ? "initializer" : init.name();
    if (init.name().empty())
      error("initializer", "an initializer has no name");
    if (isInitializer.count(init.name()))
      error(where, "initializer is defined twice");
    isInitializer[init.name()] = true;
    if (auto t = convertTensor(init, where))
      model.initializers.push_back(std::move(*t));
  }
  for (const auto &[file, use] : missingFiles_)
    error(use.second, "external data file '" + file + "' is missing (needed by " +
                          std::to_string(use.first) + " initializer" + (use.first == 1 ? "" : "s") +
                          "; a --no-weights model can only be planned, with --plan-only)");
  if (g.sparse_initializer_size())
    error("graph", "sparse initializers are not supported");
  for (const auto &in : g.input())
    if (!isInitializer.count(in.name()))
      model.inputs.push_back(convertValueInfo(in));
  for (const auto &out : g.output())
    model.outputs.push_back(convertValueInfo(out));
  for (const auto &vi : g.value_info())
    model.valueInfos.push_back(convertValueInfo(vi));
  int index = 0;
  for (const auto &n : g.node()) {
    Node node;
    node.name = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
    ++index;
    node.opType = n.op_type();
    node.domain = n.domain() == "ai.onnx" ? "" : n.domain();
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    for (const auto &a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS)
        node.hasSubgraph = true;
      node.attributes.push_back(convertAttribute(a, node.name));
    }
    model.nodes.push_back(std::move(node));
  }
  if (errors_.size() != errorsBefore)
    return std::nullopt;
  if (options_.keepSerialized) {
    // Float initializers become parameters (their data is in `initializers`
    // already): drop it here instead of serialising gigabytes twice.
    for (auto &init : *proto.mutable_graph()->mutable_initializer()) {
      std::optional<DType> dtype = convertElementType(init.data_type(), init.name());
      if (!dtype || !isFloat(*dtype))
        continue;
      init.clear_raw_data();
      init.clear_float_data();
      init.clear_double_data();
      init.clear_int32_data();
      init.clear_external_data();
      init.clear_data_location();
    }
    model.serialized = proto.SerializeAsString();
  }
  return model;
}

} // namespace

std::optional<Model> loadModel(const std::string &path, const LoadOptions &options,
                               std::vector<std::string> &errors) {
  try {
    return Loader(path, options, errors).load();
  } catch (const std::bad_alloc &) {
    errors.push_back(path + ": out of memory while loading the model");
  } catch (const std::exception &e) {
    errors.push_back(path + ": " + e.what());
  }
  return std::nullopt;
}

} // namespace longctx::onnx_import
