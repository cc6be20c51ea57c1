//===- Checkpoint.cpp - Parameters and optimizer state as safetensors ------===//
//
// safetensors: an 8-byte little-endian header length, a JSON header mapping
// each name to {dtype, shape, data_offsets} (plus "__metadata__"), then the
// raw row-major data. PyTorch loads it with safetensors.torch.load_file.
//
//===----------------------------------------------------------------------===//
#include "runtime/training/Checkpoint.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

namespace longctx {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;

const char *safetensorsDType(DType d) {
  switch (d) {
  case DType::F32: return "F32";
  case DType::F64: return "F64";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  case DType::I64: return "I64";
  case DType::I32: return "I32";
  case DType::I8: return "I8";
  case DType::U8: return "U8";
  case DType::Bool: return "BOOL";
  }
  return "?";
}

/// The persistent tensors of a training step: parameters and optimizer state.
std::map<std::string, int64_t> persistentTensors(const Manifest &m) {
  std::map<std::string, int64_t> ids;
  for (size_t i = 0; i < m.tensors.size(); ++i)
    if (m.tensors[i].kind == TensorKind::Weight || m.tensors[i].kind == TensorKind::State)
      ids[m.tensors[i].name] = int64_t(i);
  return ids;
}

} // namespace

Status saveCheckpoint(Executor &exec, const std::string &path, int64_t completedSteps) {
  const Manifest &m = exec.manifest();
  std::map<std::string, int64_t> ids = persistentTensors(m);
  json header = json::object();
  uint64_t offset = 0;
  for (const auto &[name, id] : ids) {
    const TensorDesc &t = m.tensors[id];
    header[name] = {{"dtype", safetensorsDType(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  header["__metadata__"] = {{"format", "pt"},
                            {"producer", "longctx-run " LONGCTX_VERSION},
                            {"step", std::to_string(completedSteps)}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out)
      return Status::error(temp + ": cannot open for writing");
    uint64_t n = text.size();
    out.write(reinterpret_cast<const char *>(&n), 8);
    out << text;
    for (const auto &[name, id] : ids) {
      Result<TensorRef> t = exec.read(id);
      if (!t)
        return t.status();
      out.write(static_cast<const char *>(t->data), std::streamsize(t->bytes()));
    }
    out.close();
    if (!out) {
      std::remove(temp.c_str());
      return Status::error(temp + ": write failed (disk full?)");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return Status::error(path + ": cannot replace the checkpoint");
  }
  return Status();
}

Result<int64_t> loadCheckpoint(Executor &exec, const std::string &path) {
  auto fail = [&](const std::string &why) { return Status::error(path + ": " + why); };
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return fail("cannot open the checkpoint");
  uint64_t fileBytes = uint64_t(in.tellg());
  in.seekg(0);
  uint64_t headerBytes = 0;
  if (fileBytes < 8 || !in.read(reinterpret_cast<char *>(&headerBytes), 8))
    return fail("not a safetensors file (too small)");
  if (headerBytes > kMaxHeaderBytes || headerBytes > fileBytes - 8)
    return fail("not a safetensors file (header length " + std::to_string(headerBytes) +
                " does not fit the file)");
  std::string text(headerBytes, '\0');
  in.read(text.data(), std::streamsize(headerBytes));
  json header = json::parse(text, nullptr, false);
  if (!in || header.is_discarded() || !header.is_object())
    return fail("the safetensors header is not valid JSON");
  uint64_t dataStart = 8 + headerBytes, dataBytes = fileBytes - dataStart;

  const Manifest &m = exec.manifest();
  std::map<std::string, int64_t> ids = persistentTensors(m);
  struct Copy {
    int64_t id;
    uint64_t begin;
  };
  std::vector<Copy> copies;
  int64_t steps = 0;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (it->contains("step"))
          steps = std::stoll(it->at("step").get<std::string>());
        continue;
      }
      auto found = ids.find(it.key());
      if (found == ids.end())
        return fail("holds '" + it.key() + "', which this model does not have (a checkpoint of another model?)");
      const TensorDesc &t = m.tensors[found->second];
      std::string dtype = it->at("dtype").get<std::string>();
      Shape shape = it->at("shape").get<Shape>();
      auto offsets = it->at("data_offsets").get<std::vector<uint64_t>>();
      if (dtype != safetensorsDType(t.dtype) || shape != t.shape)
        return fail("'" + it.key() + "' is " + dtype + " " + shapeToString(shape) + ", the model needs " +
                    safetensorsDType(t.dtype) + " " + shapeToString(t.shape));
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > dataBytes ||
          offsets[1] - offsets[0] != t.bytes())
        return fail("'" + it.key() + "' has data offsets outside the file or of the wrong size (truncated?)");
      copies.push_back({found->second, offsets[0]});
      ids.erase(found);
    }
  } catch (const std::exception &e) {
    return fail(std::string("malformed safetensors header: ") + e.what());
  }
  if (!ids.empty())
    return fail("lacks '" + ids.begin()->first + "'" +
                (ids.size() > 1 ? " and " + std::to_string(ids.size() - 1) + " more tensors" : ""));
  if (steps < 0)
    return fail("negative step count in the metadata");
  // Every check passed: now overwrite the model's tensors.
  std::vector<char> bytes;
  for (const Copy &c : copies) {
    bytes.resize(m.tensors[size_t(c.id)].bytes());
    in.seekg(std::streamoff(dataStart + c.begin));
    if (!in.read(bytes.data(), std::streamsize(bytes.size())))
      return fail("cannot read tensor data");
    if (Status s = exec.write(c.id, bytes.data()); !s)
      return fail(s.message());
  }
  return steps;
}

} // namespace longctx
