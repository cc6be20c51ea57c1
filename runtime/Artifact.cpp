//===- Artifact.cpp - Reading and writing .lcx artifacts -------------------===//
#include "runtime/Artifact.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <limits>

namespace longctx {
namespace {

using json = nlohmann::json;

constexpr char kMagic[8] = {'L', 'C', 'X', 'A', 'R', 'T', 'F', '\x1a'};
constexpr uint32_t kSectionManifest = 1, kSectionData = 2, kSectionIr = 3, kSectionSourceModel = 4;
constexpr uint64_t kSectionAlignment = 64;
constexpr uint64_t kMaxManifestBytes = uint64_t(1) << 30;
constexpr uint32_t kMaxSections = 64;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t sectionCount;
  uint64_t fileBytes;
  uint64_t reserved[5];
};
static_assert(sizeof(FileHeader) == 64, "header layout is part of the format");

struct SectionEntry {
  uint32_t kind;
  uint32_t flags;
  uint64_t offset;
  uint64_t bytes;
  uint64_t checksum;
};
static_assert(sizeof(SectionEntry) == 32, "section layout is part of the format");

/// FNV-1a, 64-bit: cheap, and enough to tell a damaged file from a good one.
uint64_t checksum(const void *data, uint64_t n) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t alignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

json attrsToJson(const AttrMap &attrs) {
  json j = json::object();
  for (const auto &[name, value] : attrs.values())
    std::visit([&, &name = name](const auto &v) { j[name] = v; }, value);
  return j;
}

Status attrsFromJson(const json &j, AttrMap &attrs, const std::string &where) {
  if (!j.is_object())
    return Status::error(where + ": attrs must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const json &v = it.value();
    if (v.is_number_integer())
      attrs.set(it.key(), v.get<int64_t>());
    else if (v.is_number_float())
      attrs.set(it.key(), v.get<double>());
    else if (v.is_string())
      attrs.set(it.key(), v.get<std::string>());
    else if (v.is_array()) {
      bool allInts = true;
      for (const json &e : v) {
        if (!e.is_number())
          return Status::error(where + ": attribute '" + it.key() + "' has a non-numeric element");
        allInts &= e.is_number_integer();
      }
      if (allInts)
        attrs.set(it.key(), v.get<std::vector<int64_t>>());
      else
        attrs.set(it.key(), v.get<std::vector<double>>());
    } else {
      return Status::error(where + ": attribute '" + it.key() + "' has an unsupported type");
    }
  }
  return Status();
}

Result<TensorKind> parseKind(const std::string &s) {
  for (TensorKind k : {TensorKind::Input, TensorKind::Output, TensorKind::Weight,
                       TensorKind::Constant, TensorKind::Transient, TensorKind::State,
                       TensorKind::Workspace})
    if (s == tensorKindName(k))
      return k;
  return Status::error("unknown tensor kind '" + s + "'");
}

/// Parses and checks the manifest against the sizes of the file's sections.
/// A parallel group's steps must be contiguous and its workers must not
/// exchange tensors: they run concurrently.
Status checkParallelGroups(const Manifest &m) {
  std::map<int64_t, size_t> lastStepOf;                    // group -> its last step so far
  std::map<int64_t, std::pair<int64_t, int64_t>> writerOf; // tensor -> (group, worker)
  auto where = [&](size_t i) {
    return "step " + std::to_string(i) + " (" + m.schedule[i].op + "): ";
  };
  for (size_t i = 0; i < m.schedule.size(); ++i) {
    const StepDesc &step = m.schedule[i];
    if (step.group < 0)
      continue;
    auto [it, first] = lastStepOf.try_emplace(step.group, i);
    if (!first && it->second + 1 != i)
      return Status::error(where(i) + "parallel group " + std::to_string(step.group) +
                           " is not contiguous");
    it->second = i;
    std::vector<int64_t> written = step.outputs;
    if (step.workspace >= 0) // scratch is written too: two workers may not share it
      written.push_back(step.workspace);
    for (int64_t id : written) {
      auto [w, fresh] = writerOf.try_emplace(id, step.group, step.worker);
      if (!fresh && w->second != std::make_pair(step.group, step.worker))
        return Status::error(where(i) + "tensor '" + m.tensors[size_t(id)].name +
                             "' is written by two workers");
    }
  }
  for (size_t i = 0; i < m.schedule.size(); ++i) {
    const StepDesc &step = m.schedule[i];
    if (step.group >= 0)
      for (int64_t id : step.inputs)
        if (auto w = writerOf.find(id); w != writerOf.end() && w->second.first == step.group &&
                                        w->second.second != step.worker)
          return Status::error(where(i) + "worker " + std::to_string(step.worker) +
                               " of parallel group " + std::to_string(step.group) +
                               " reads tensor '" + m.tensors[size_t(id)].name + "' that worker " +
                               std::to_string(w->second.second) + " writes");
  }
  return Status();
}

Result<Manifest> parseManifest(const std::string &text, uint64_t dataBytes) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::error("manifest is not valid JSON");
  Manifest m;
  try {
    m.version = j.at("version").get<uint32_t>();
    if (m.version != kArtifactVersion)
      return Status::error("manifest version " + std::to_string(m.version) +
                           " is not the supported version " + std::to_string(kArtifactVersion));
    m.producer = j.value("producer", "");
    m.mode = j.at("mode").get<std::string>();
    m.source = j.value("source", "");
    m.arenaBytes = j.at("arena_bytes").get<uint64_t>();
    m.stateBytes = j.value("state_bytes", uint64_t(0));
    if (Status st = attrsFromJson(j.value("training", json::object()), m.training, "training"); !st)
      return st;
    for (const json &t : j.at("tensors")) {
      TensorDesc d;
      d.name = t.at("name").get<std::string>();
      std::string where = "tensor '" + d.name + "'";
      auto dtype = parseDType(t.at("dtype").get<std::string>());
      if (!dtype)
        return Status::error(where + ": unknown dtype");
      d.dtype = *dtype;
      d.shape = t.at("shape").get<Shape>();
      // Bound the element count before anything multiplies it.
      uint64_t elements = 1;
      for (int64_t dim : d.shape) {
        if (dim < 0 || (dim > 0 && elements > (uint64_t(1) << 56) / uint64_t(dim)))
          return Status::error(where + ": invalid shape");
        elements *= uint64_t(dim);
      }
      auto kind = parseKind(t.at("kind").get<std::string>());
      if (!kind)
        return Status::error(where + ": " + kind.status().message());
      d.kind = *kind;
      d.offset = t.at("offset").get<uint64_t>();
      bool inData = d.kind == TensorKind::Weight || d.kind == TensorKind::Constant;
      bool inState = d.kind == TensorKind::State;
      uint64_t limit = inData ? dataBytes : inState ? m.stateBytes : m.arenaBytes;
      // As the builder places them: a misaligned tensor would fault on a
      // GPU (cuBLAS and double atomics need their alignment).
      const uint64_t alignment = inData || inState ? kDataAlignment : kArenaAlignment;
      if (d.offset % alignment != 0)
        return Status::error(where + ": offset " + std::to_string(d.offset) +
                             " is not a multiple of " + std::to_string(alignment));
      if (d.offset > limit || d.bytes() > limit - d.offset)
        return Status::error(where + ": bytes [" + std::to_string(d.offset) + ", +" +
                             std::to_string(d.bytes()) + ") lie outside its " +
                             (inData ? "data section" : inState ? "state block" : "arena") +
                             " of " + std::to_string(limit) + " bytes");
      m.tensors.push_back(std::move(d));
    }
    auto checkId = [&](int64_t id, const std::string &where) -> Status {
      if (id < 0 || id >= int64_t(m.tensors.size()))
        return Status::error(where + ": tensor id " + std::to_string(id) + " out of range");
      return Status();
    };
    m.inputs = j.at("inputs").get<std::vector<int64_t>>();
    m.outputs = j.at("outputs").get<std::vector<int64_t>>();
    for (const auto &[ids, where] : {std::pair{&m.inputs, "inputs"}, {&m.outputs, "outputs"}})
      for (int64_t id : *ids) {
        if (Status s = checkId(id, where); !s)
          return s;
        if (m.tensors[size_t(id)].kind == TensorKind::Workspace)
          return Status::error(std::string(where) + ": '" + m.tensors[size_t(id)].name +
                               "' is a workspace");
      }
    for (const json &s : j.at("schedule")) {
      StepDesc step;
      step.op = s.at("op").get<std::string>();
      step.location = s.value("loc", "");
      std::string where = "step " + std::to_string(m.schedule.size()) + " (" + step.op + ")";
      step.inputs = s.at("inputs").get<std::vector<int64_t>>();
      step.outputs = s.at("outputs").get<std::vector<int64_t>>();
      for (int64_t id : step.inputs) {
        if (Status st = checkId(id, where); !st)
          return st;
        if (m.tensors[size_t(id)].kind == TensorKind::Workspace)
          return Status::error(where + ": reads workspace '" + m.tensors[size_t(id)].name +
                               "' as an input");
      }
      for (int64_t id : step.outputs) {
        if (Status st = checkId(id, where); !st)
          return st;
        TensorKind k = m.tensors[id].kind;
        bool updatable = (k == TensorKind::Weight || k == TensorKind::State) && isInPlaceUpdate(step.op);
        if (!updatable && (k == TensorKind::Weight || k == TensorKind::Constant ||
                           k == TensorKind::Input || k == TensorKind::State ||
                           k == TensorKind::Workspace))
          return Status::error(where + ": writes read-only tensor '" + m.tensors[id].name + "'");
      }
      if (Status st = attrsFromJson(s.value("attrs", json::object()), step.attrs, where); !st)
        return st;
      if (s.contains("lane")) {
        const json &lane = s.at("lane");
        if (!lane.is_array() || lane.size() != 2 || !lane[0].is_number_integer() ||
            !lane[1].is_number_integer() || lane[0].get<int64_t>() < 0 ||
            lane[1].get<int64_t>() < 0 || lane[1].get<int64_t>() >= kMaxWorkers ||
            lane[0].get<int64_t>() > int64_t(m.schedule.size()))
          return Status::error(where + ": lane must be [group, worker] with worker < " +
                               std::to_string(kMaxWorkers));
        step.group = lane[0].get<int64_t>();
        step.worker = lane[1].get<int64_t>();
      }
      if (s.contains("workspace")) {
        step.workspace = s.at("workspace").get<int64_t>();
        if (Status st = checkId(step.workspace, where); !st)
          return st;
        if (m.tensors[size_t(step.workspace)].kind != TensorKind::Workspace)
          return Status::error(where + ": its workspace '" +
                               m.tensors[size_t(step.workspace)].name +
                               "' is not a workspace tensor (kind " +
                               tensorKindName(m.tensors[size_t(step.workspace)].kind) + ")");
      }
      m.schedule.push_back(std::move(step));
    }
    if (Status st = checkParallelGroups(m); !st)
      return st;
    m.device = j.value("device", "cpu");
    if (m.device != "cpu" && m.device != "cuda")
      return Status::error("manifest: unknown device '" + m.device + "'");
    for (const json &k : j.value("kernels", json::array())) {
      DeviceKernel kernel{k.at("name").get<std::string>(), k.at("arch").get<std::string>(),
                          k.at("entry").get<std::string>(), k.at("ptx").get<std::string>()};
      if (kernel.name.empty() || kernel.entry.empty() || kernel.arch.rfind("sm_", 0) != 0)
        return Status::error("manifest: kernel '" + kernel.name + "' has no entry or a bad arch '" +
                             kernel.arch + "'");
      m.kernels.push_back(std::move(kernel));
    }
  } catch (const json::exception &e) {
    return Status::error(std::string("manifest is malformed: ") + e.what());
  }
  return m;
}

} // namespace

bool isInPlaceUpdate(const std::string &op) {
  return op == "adamw_update" || op == "sgd_update";
}

const char *tensorKindName(TensorKind kind) {
  switch (kind) {
  case TensorKind::Input: return "input";
  case TensorKind::Output: return "output";
  case TensorKind::Weight: return "weight";
  case TensorKind::Constant: return "constant";
  case TensorKind::Transient: return "transient";
  case TensorKind::State: return "state";
  case TensorKind::Workspace: return "workspace";
  }
  return "?";
}

std::string manifestToJson(const Manifest &m, int indent) {
  json j;
  j["format"] = "longctx-artifact";
  j["version"] = m.version;
  j["producer"] = m.producer;
  j["mode"] = m.mode;
  j["source"] = m.source;
  j["arena_bytes"] = m.arenaBytes;
  j["state_bytes"] = m.stateBytes;
  if (!m.training.values().empty())
    j["training"] = attrsToJson(m.training);
  if (m.device != "cpu")
    j["device"] = m.device;
  if (!m.kernels.empty()) {
    j["kernels"] = json::array();
    for (const DeviceKernel &k : m.kernels)
      j["kernels"].push_back(
          {{"name", k.name}, {"arch", k.arch}, {"entry", k.entry}, {"ptx", k.ptx}});
  }
  j["tensors"] = json::array();
  for (const TensorDesc &t : m.tensors)
    j["tensors"].push_back({{"name", t.name},
                            {"dtype", dtypeName(t.dtype)},
                            {"shape", t.shape},
                            {"kind", tensorKindName(t.kind)},
                            {"offset", t.offset},
                            {"bytes", t.bytes()}});
  j["inputs"] = m.inputs;
  j["outputs"] = m.outputs;
  j["schedule"] = json::array();
  for (const StepDesc &s : m.schedule) {
    json step = {{"op", s.op},
                 {"inputs", s.inputs},
                 {"outputs", s.outputs},
                 {"attrs", attrsToJson(s.attrs)},
                 {"loc", s.location}};
    if (s.group >= 0)
      step["lane"] = {s.group, s.worker};
    if (s.workspace >= 0)
      step["workspace"] = s.workspace;
    j["schedule"].push_back(std::move(step));
  }
  return j.dump(indent);
}

Status writeArtifact(const std::string &path, const Manifest &manifest, const void *data,
                     uint64_t dataBytes, const std::string &irText, const std::string &sourceModel) {
  std::string manifestText = manifestToJson(manifest);
  struct Pending {
    uint32_t kind;
    const void *data;
    uint64_t bytes;
  };
  Pending sections[] = {{kSectionManifest, manifestText.data(), manifestText.size()},
                        {kSectionData, data, dataBytes},
                        {kSectionIr, irText.data(), irText.size()},
                        {kSectionSourceModel, sourceModel.data(), sourceModel.size()}};
  constexpr uint32_t count = 4;

  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kArtifactVersion;
  header.sectionCount = count;
  SectionEntry entries[count]{};
  uint64_t offset = alignUp(sizeof(FileHeader) + sizeof(entries), kSectionAlignment);
  for (uint32_t i = 0; i < count; ++i) {
    entries[i].kind = sections[i].kind;
    entries[i].offset = offset;
    entries[i].bytes = sections[i].bytes;
    entries[i].checksum = checksum(sections[i].data, sections[i].bytes);
    offset = alignUp(offset + sections[i].bytes, kSectionAlignment);
  }
  header.fileBytes = offset;

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return Status::error(path + ": cannot open for writing");
  out.write(reinterpret_cast<const char *>(&header), sizeof(header));
  out.write(reinterpret_cast<const char *>(entries), sizeof(entries));
  static const char zeros[kSectionAlignment] = {};
  uint64_t written = sizeof(header) + sizeof(entries);
  for (uint32_t i = 0; i < count; ++i) {
    out.write(zeros, std::streamsize(entries[i].offset - written));
    out.write(static_cast<const char *>(sections[i].data), std::streamsize(sections[i].bytes));
    written = entries[i].offset + sections[i].bytes;
  }
  out.write(zeros, std::streamsize(header.fileBytes - written));
  out.close();
  if (!out)
    return Status::error(path + ": write failed (disk full?)");
  return Status();
}

Result<Artifact> readArtifact(const std::string &path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return Status::error(path + ": cannot open artifact (missing file or no permission)");
  return readArtifactAt(path, 0, uint64_t(in.tellg()));
}

Result<Artifact> readArtifactAt(const std::string &path, uint64_t base, uint64_t fileBytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open artifact (missing file or no permission)");
  in.seekg(std::streamoff(base));
  auto fail = [&](const std::string &why) { return Status::error(path + ": " + why); };

  FileHeader header{};
  if (fileBytes < sizeof(header) || !in.read(reinterpret_cast<char *>(&header), sizeof(header)))
    return fail("not a longctx artifact (file too small)");
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0)
    return fail("not a longctx artifact (bad magic)");
  if (header.version != kArtifactVersion)
    return fail("artifact format version " + std::to_string(header.version) +
                " is not supported by this runtime (expects " +
                std::to_string(kArtifactVersion) + "): recompile the model");
  if (header.fileBytes != fileBytes)
    return fail("artifact is truncated or has trailing bytes (header says " +
                std::to_string(header.fileBytes) + " bytes, file has " +
                std::to_string(fileBytes) + ")");
  if (header.sectionCount == 0 || header.sectionCount > kMaxSections)
    return fail("artifact has an invalid section count");
  std::vector<SectionEntry> entries(header.sectionCount);
  if (!in.read(reinterpret_cast<char *>(entries.data()),
               std::streamsize(entries.size() * sizeof(SectionEntry))))
    return fail("artifact section table is truncated");

  Artifact artifact;
  std::string manifestText;
  bool haveManifest = false;
  uint64_t dataBytes = 0;
  for (const SectionEntry &e : entries) {
    if (e.offset > fileBytes || e.bytes > fileBytes - e.offset)
      return fail("section " + std::to_string(e.kind) + " lies outside the file");
    in.seekg(std::streamoff(base + e.offset));
    uint64_t sum = 0;
    if (e.kind == kSectionManifest || e.kind == kSectionIr || e.kind == kSectionSourceModel) {
      if (e.bytes > kMaxManifestBytes)
        return fail("section " + std::to_string(e.kind) + " is implausibly large");
      std::string &text = e.kind == kSectionManifest ? manifestText
                          : e.kind == kSectionIr     ? artifact.irText
                                                     : artifact.sourceModel;
      text.resize(e.bytes);
      if (!in.read(text.data(), std::streamsize(e.bytes)))
        return fail("cannot read section " + std::to_string(e.kind));
      sum = checksum(text.data(), e.bytes);
      haveManifest |= e.kind == kSectionManifest;
    } else if (e.kind == kSectionData) {
      artifact.data = std::make_shared<Tensor>(DType::U8, Shape{int64_t(e.bytes)});
      if (!in.read(static_cast<char *>(artifact.data->data()), std::streamsize(e.bytes)))
        return fail("cannot read the data section");
      sum = checksum(artifact.data->data(), e.bytes);
      dataBytes = e.bytes;
    } else {
      continue; // Unknown sections from newer minor revisions are skipped.
    }
    if (sum != e.checksum)
      return fail("section " + std::to_string(e.kind) + " is corrupt (checksum mismatch)");
  }
  if (!haveManifest)
    return fail("artifact has no manifest");
  if (!artifact.data)
    artifact.data = std::make_shared<Tensor>(DType::U8, Shape{0});
  Result<Manifest> manifest = parseManifest(manifestText, dataBytes);
  if (!manifest)
    return fail(manifest.status().message());
  artifact.manifest = std::move(*manifest);
  return artifact;
}

std::optional<EmbeddedArtifact> findEmbeddedArtifact(const std::string &path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return std::nullopt;
  uint64_t fileBytes = uint64_t(in.tellg());
  constexpr uint64_t trailer = 24;
  if (fileBytes < trailer)
    return std::nullopt;
  in.seekg(std::streamoff(fileBytes - trailer));
  EmbeddedArtifact e;
  char magic[8];
  in.read(reinterpret_cast<char *>(&e.offset), 8);
  in.read(reinterpret_cast<char *>(&e.size), 8);
  in.read(magic, 8);
  if (!in || std::memcmp(magic, kEmbeddedMagic, 8) != 0 || e.offset > fileBytes - trailer ||
      e.size > fileBytes - trailer - e.offset)
    return std::nullopt;
  return e;
}

} // namespace longctx
