//===- ModelExport.cpp - Trained weights back into the source ONNX model ---===//
#include "runtime/training/ModelExport.h"
#include "runtime/OnnxInitializers.h"

#include <cstdio>
#include <fstream>
#include <map>

namespace longctx {

Status exportOnnx(Executor &exec, const std::string &path) {
  const Artifact &artifact = exec.artifact();
  if (artifact.sourceModel.empty())
    return Status::error("this artifact does not carry its source model; recompile it to export");
  std::map<std::string, TensorRef> weights;
  const Manifest &m = artifact.manifest;
  for (size_t i = 0; i < m.tensors.size(); ++i)
    if (m.tensors[i].kind == TensorKind::Weight) {
      Result<TensorRef> t = exec.read(int64_t(i));
      if (!t)
        return t.status();
      weights[m.tensors[i].name] = *t;
    }
  Result<std::string> model = rewriteOnnxInitializers(
      artifact.sourceModel, [&](const std::string &name) -> std::optional<std::string_view> {
        auto it = weights.find(name);
        if (it == weights.end())
          return std::nullopt;
        return std::string_view(static_cast<const char *>(it->second.data), it->second.bytes());
      });
  if (!model)
    return Status::error("cannot rebuild the model: " + model.status().message());
  std::string temp = path + ".tmp";
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out)
    return Status::error(temp + ": cannot open for writing");
  out << *model;
  out.close();
  if (!out || std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return Status::error(path + ": write failed");
  }
  return Status();
}

} // namespace longctx
