//===- MemoryReport.cpp - Where an artifact's bytes go ----------------------===//
#include "runtime/MemoryReport.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace longctx {

MemoryReport computeMemoryReport(const Manifest &m) {
  MemoryReport r;
  r.arenaBytes = m.arenaBytes;
  const int64_t steps = int64_t(m.schedule.size());
  std::vector<int64_t> first(m.tensors.size(), steps), last(m.tensors.size(), -1);
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t id : m.schedule[s].outputs)
      first[id] = std::min(first[id], s);
    for (int64_t id : m.schedule[s].inputs)
      last[id] = std::max(last[id], s);
    for (int64_t id : m.schedule[s].outputs)
      last[id] = std::max(last[id], s);
  }
  for (int64_t id : m.inputs) {
    first[id] = -1;
    last[id] = steps;
  }
  for (int64_t id : m.outputs)
    last[id] = steps;
  // The loss step splits forward from backward (training artifacts).
  int64_t lossStep = -1;
  for (int64_t s = 0; s < steps && lossStep < 0; ++s)
    if (m.schedule[s].op == "cross_entropy")
      lossStep = s;

  auto inArena = [&](const TensorDesc &t) {
    return t.kind == TensorKind::Input || t.kind == TensorKind::Output ||
           t.kind == TensorKind::Transient;
  };
  // Live arena bytes per step, by a sweep over interval ends.
  std::vector<int64_t> delta(size_t(steps + 2), 0);
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorDesc &t = m.tensors[i];
    if (t.kind == TensorKind::Weight)
      r.weightBytes += t.bytes();
    else if (t.kind == TensorKind::State)
      r.stateBytes += t.bytes();
    if (!inArena(t) || last[i] < first[i])
      continue;
    delta[size_t(std::max<int64_t>(first[i], 0))] += int64_t(t.bytes());
    delta[size_t(std::min<int64_t>(last[i], steps) + 1)] -= int64_t(t.bytes());
  }
  int64_t live = 0;
  for (int64_t s = 0; s <= steps; ++s) {
    live += delta[size_t(s)];
    if (uint64_t(live) > r.loadBytes) {
      r.loadBytes = uint64_t(live);
      r.peakStep = s;
    }
  }
  r.peakBytes = r.weightBytes + r.stateBytes + r.arenaBytes;
  r.byCategory = {{"weights", r.weightBytes},    {"optimizer_state", r.stateBytes},
                  {"gradients", 0},              {"saved_activations", 0},
                  {"transient", 0},              {"inputs_outputs", 0}};
  if (r.peakStep >= 0) {
    if (r.peakStep < steps) {
      const StepDesc &s = m.schedule[size_t(r.peakStep)];
      r.peakOp = s.op + (s.location.empty() ? "" : " from '" + s.location + "'");
    }
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      const TensorDesc &t = m.tensors[i];
      if (!inArena(t) || first[i] > r.peakStep || last[i] < r.peakStep)
        continue;
      std::string category = "transient";
      if (t.name.rfind("grad/", 0) == 0)
        category = "gradients";
      else if (t.kind == TensorKind::Input || t.kind == TensorKind::Output)
        category = "inputs_outputs";
      else if (lossStep >= 0 && first[i] < lossStep && last[i] > lossStep)
        category = "saved_activations";
      r.byCategory[category] += t.bytes();
    }
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
  j["peak_step"] = r.peakStep;
  j["peak_op"] = r.peakOp;
  return j.dump(2);
}

} // namespace longctx
