//===- MemoryReport.cpp - Where an artifact's bytes go ----------------------===//
#include "runtime/MemoryReport.h"
#include "runtime/Liveness.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace longctx {

const char *memoryCategoryName(MemoryCategory category) {
  switch (category) {
  case MemoryCategory::Gradients: return "gradients";
  case MemoryCategory::SavedActivations: return "saved_activations";
  case MemoryCategory::Transient: return "transient";
  case MemoryCategory::InputsOutputs: return "inputs_outputs";
  case MemoryCategory::Workspace: return "workspace";
  }
  return "transient";
}

uint64_t dataSectionBytes(const Manifest &m) {
  uint64_t bytes = 0;
  for (const TensorDesc &t : m.tensors)
    if (t.kind == TensorKind::Weight || t.kind == TensorKind::Constant)
      bytes += (t.bytes() + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  return bytes;
}

MemoryReport computeMemoryReport(const Manifest &m) {
  MemoryReport r;
  r.arenaBytes = m.arenaBytes;
  r.stateBytes = m.stateBytes;
  const int64_t steps = int64_t(m.schedule.size());
  ScheduleLiveness live = computeLiveness(m);
  // The loss step splits forward from backward (training artifacts).
  int64_t lossStep = -1;
  for (int64_t s = 0; s < steps && lossStep < 0; ++s)
    if (m.schedule[size_t(s)].op == "cross_entropy")
      lossStep = s;

  // Live arena bytes per category and step, by a sweep over interval ends.
  using Counts = std::array<int64_t, kNumArenaCategories>;
  std::vector<Counts> delta(size_t(steps + 2), Counts{});
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorDesc &t = m.tensors[i];
    if (t.kind == TensorKind::Weight)
      r.weightBytes += t.bytes();
    if (!isArenaTensor(t) || live.last[i] < live.first[i])
      continue;
    MemoryCategory category = MemoryCategory::Transient;
    if (t.kind == TensorKind::Workspace)
      category = MemoryCategory::Workspace;
    else if (t.name.rfind("grad/", 0) == 0)
      category = MemoryCategory::Gradients;
    else if (t.kind == TensorKind::Input || t.kind == TensorKind::Output)
      category = MemoryCategory::InputsOutputs;
    else if (lossStep >= 0 && live.first[i] < lossStep && live.last[i] > lossStep)
      category = MemoryCategory::SavedActivations;
    // An in-place output's bytes are its input's until that input dies.
    int64_t from = std::max<int64_t>(live.first[i] + (live.reuses[i] >= 0 ? 1 : 0), 0);
    int64_t to = std::min<int64_t>(live.last[i], steps);
    if (to < from)
      continue;
    delta[size_t(from)][size_t(category)] += int64_t(t.bytes());
    delta[size_t(to + 1)][size_t(category)] -= int64_t(t.bytes());
  }
  r.timeline.assign(size_t(steps + 1), {});
  Counts running{};
  for (int64_t s = 0; s <= steps; ++s) {
    uint64_t total = 0;
    for (size_t c = 0; c < kNumArenaCategories; ++c) {
      running[c] += delta[size_t(s)][c];
      r.timeline[size_t(s)][c] = uint64_t(running[c]);
      total += uint64_t(running[c]);
    }
    if (total > r.loadBytes) {
      r.loadBytes = total;
      r.peakStep = s;
    }
  }
  r.constantBytes = dataSectionBytes(m) - r.weightBytes;
  r.peakBytes = r.weightBytes + r.constantBytes + r.stateBytes + r.arenaBytes;
  r.byCategory = {{"weights", r.weightBytes},
                  {"constants", r.constantBytes},
                  {"optimizer_state", r.stateBytes}};
  for (size_t c = 0; c < kNumArenaCategories; ++c)
    r.byCategory[memoryCategoryName(MemoryCategory(c))] =
        r.peakStep >= 0 ? r.timeline[size_t(r.peakStep)][c] : 0;
  auto describe = [&](int64_t step) {
    const StepDesc &s = m.schedule[size_t(step)];
    return s.op + (s.location.empty() ? "" : " from '" + s.location + "'");
  };
  if (r.peakStep >= 0 && r.peakStep < steps)
    r.peakOp = describe(r.peakStep);
  if (r.peakStep >= 0) {
    std::map<std::string, uint64_t> byOp;
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      const TensorDesc &t = m.tensors[i];
      int64_t from = live.first[i] + (live.reuses[i] >= 0 ? 1 : 0);
      if (!isArenaTensor(t) || from > r.peakStep || live.last[i] < r.peakStep)
        continue;
      byOp[live.first[i] < 0 ? "input " + t.name : describe(live.first[i])] += t.bytes();
    }
    r.byOp.assign(byOp.begin(), byOp.end());
    std::stable_sort(r.byOp.begin(), r.byOp.end(),
                     [](const auto &a, const auto &b) { return a.second > b.second; });
    if (r.byOp.size() > 10)
      r.byOp.resize(10);
  }
  return r;
}

std::string formatBytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= (uint64_t(1) << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(uint64_t(1) << 30));
  else if (bytes >= (1 << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / (1 << 20));
  else if (bytes >= (1 << 10))
    std::snprintf(buf, sizeof buf, "%.2f KiB", double(bytes) / (1 << 10));
  else
    std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)bytes);
  return buf;
}

std::string memoryReportJson(const MemoryReport &r) {
  nlohmann::json j;
  j["peak_bytes"] = r.peakBytes;
  j["arena_bytes"] = r.arenaBytes;
  j["load_bytes"] = r.loadBytes;
  j["arena_over_load"] = r.loadBytes ? double(r.arenaBytes) / double(r.loadBytes) : 1.0;
  j["by_category"] = r.byCategory;
  j["by_op"] = nlohmann::json::array();
  for (const auto &[op, bytes] : r.byOp)
    j["by_op"].push_back({{"op", op}, {"bytes", bytes}});
  j["peak_step"] = r.peakStep;
  j["peak_op"] = r.peakOp;
  return j.dump(2);
}

} // namespace longctx
