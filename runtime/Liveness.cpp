//===- Liveness.cpp - When each tensor of a schedule is live ---------------===//
#include "runtime/Liveness.h"
#include "runtime/cpu/Kernels.h"

#include <algorithm>

namespace longctx {

bool isArenaTensor(const TensorDesc &t) {
  return t.kind == TensorKind::Input || t.kind == TensorKind::Output ||
         t.kind == TensorKind::Transient || t.kind == TensorKind::Workspace;
}

std::vector<StepLane> stepLanes(const Manifest &m) {
  std::vector<StepLane> lanes;
  for (const StepDesc &step : m.schedule)
    lanes.push_back({step.group, step.worker});
  return lanes;
}

ScheduleLiveness computeLiveness(const Manifest &m) {
  const int64_t steps = int64_t(m.schedule.size());
  ScheduleLiveness l;
  l.first.assign(m.tensors.size(), steps);
  l.last.assign(m.tensors.size(), -1);
  l.reuses.assign(m.tensors.size(), -1);
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t id : m.schedule[size_t(s)].outputs)
      l.first[size_t(id)] = std::min(l.first[size_t(id)], s);
    for (int64_t id : m.schedule[size_t(s)].inputs)
      l.last[size_t(id)] = std::max(l.last[size_t(id)], s);
    for (int64_t id : m.schedule[size_t(s)].outputs)
      l.last[size_t(id)] = std::max(l.last[size_t(id)], s);
    if (int64_t w = m.schedule[size_t(s)].workspace; w >= 0) {
      l.first[size_t(w)] = std::min(l.first[size_t(w)], s);
      l.last[size_t(w)] = std::max(l.last[size_t(w)], s);
    }
  }
  for (int64_t id : m.inputs) {
    l.first[size_t(id)] = -1;
    l.last[size_t(id)] = steps;
  }
  for (int64_t id : m.outputs)
    l.last[size_t(id)] = steps;
  ConcurrentLifetimes concurrent(stepLanes(m));
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t id : m.schedule[size_t(s)].inputs)
      concurrent.touch(size_t(id), s);
    for (int64_t id : m.schedule[size_t(s)].outputs)
      concurrent.touch(size_t(id), s);
    if (int64_t w = m.schedule[size_t(s)].workspace; w >= 0)
      concurrent.touch(size_t(w), s);
  }
  for (int64_t id : m.inputs)
    concurrent.touch(size_t(id), -1);
  for (int64_t id : m.outputs)
    concurrent.touch(size_t(id), steps);
  l.lane.resize(m.tensors.size());
  for (size_t t = 0; t < m.tensors.size(); ++t)
    if (l.first[t] <= l.last[t])
      l.lane[t] = concurrent.finish(t, l.first[t], l.last[t]);

  std::vector<bool> taken(m.tensors.size(), false);
  for (int64_t s = 0; s < steps; ++s) {
    const StepDesc &step = m.schedule[size_t(s)];
    if (step.outputs.empty() || !cpuKernelAllowsInPlace(step.op))
      continue;
    int64_t out = step.outputs[0];
    const TensorDesc &o = m.tensors[size_t(out)];
    if (o.kind != TensorKind::Transient || l.first[size_t(out)] != s)
      continue;
    for (int64_t in : step.inputs) {
      const TensorDesc &t = m.tensors[size_t(in)];
      if (t.kind == TensorKind::Transient && !taken[size_t(in)] && l.last[size_t(in)] == s &&
          t.dtype == o.dtype && t.bytes() == o.bytes() && in != out &&
          concurrent.mayShareInPlace(size_t(in), size_t(out))) {
        l.reuses[size_t(out)] = in;
        taken[size_t(in)] = true;
        break;
      }
    }
  }
  return l;
}

} // namespace longctx
