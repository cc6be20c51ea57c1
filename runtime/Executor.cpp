//===- Executor.cpp - Runs an artifact's schedule on the CPU ---------------===//
#include "runtime/Executor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include <omp.h>

namespace longctx {

Result<CpuExecutor> CpuExecutor::create(Artifact artifact) {
  CpuExecutor exec;
  exec.artifact_ = std::move(artifact);
  const Manifest &m = exec.artifact_.manifest;

  std::set<std::string> missing;
  for (const StepDesc &step : m.schedule)
    if (!lookupCpuKernel(step.op))
      missing.insert(step.op);
  if (!missing.empty()) {
    std::string list;
    for (const std::string &op : missing)
      list += (list.empty() ? "" : ", ") + op;
    return Status::error("this runtime has no CPU kernel for: " + list +
                         " (artifact from a newer compiler?)");
  }

  try {
    exec.arena_ = std::make_shared<Tensor>(DType::U8, Shape{int64_t(m.arenaBytes)});
    exec.state_ = std::make_shared<Tensor>(DType::U8, Shape{int64_t(m.stateBytes)});
  } catch (const std::bad_alloc &) {
    return Status::error("cannot allocate the " + std::to_string(m.arenaBytes + m.stateBytes) +
                         "-byte arena and optimizer state: not enough memory");
  }
  auto *arena = static_cast<uint8_t *>(exec.arena_->data());
  auto *data = static_cast<uint8_t *>(exec.artifact_.data->data());
  auto *state = static_cast<uint8_t *>(exec.state_->data());
  for (const TensorDesc &t : m.tensors) {
    uint8_t *base = t.kind == TensorKind::Weight || t.kind == TensorKind::Constant ? data
                    : t.kind == TensorKind::State                                  ? state
                                                                                   : arena;
    exec.refs_.push_back({t.dtype, t.shape, base + t.offset});
  }
  for (const StepDesc &step : m.schedule) {
    BoundStep bound{lookupCpuKernel(step.op), {}, {}};
    for (int64_t id : step.inputs)
      bound.inputs.push_back(exec.refs_[size_t(id)]);
    for (int64_t id : step.outputs)
      bound.outputs.push_back(exec.refs_[size_t(id)]);
    exec.steps_.push_back(std::move(bound));
  }
  exec.groups_ = parallelGroups(m);
  return exec;
}

std::vector<ParallelGroup> parallelGroups(const Manifest &m) {
  std::vector<ParallelGroup> groups;
  for (size_t i = 0; i < m.schedule.size(); ++i) {
    const StepDesc &step = m.schedule[i];
    if (step.group < 0)
      continue;
    if (groups.empty() || groups.back().end != i ||
        m.schedule[groups.back().begin].group != step.group)
      groups.push_back({i, i, {}});
    ParallelGroup &group = groups.back();
    group.end = i + 1;
    if (size_t(step.worker) >= group.workers.size())
      group.workers.resize(size_t(step.worker) + 1);
    group.workers[size_t(step.worker)].push_back(i);
  }
  return groups;
}

Result<int64_t> Executor::inputFor(const std::string &name, const TensorRef &value) const {
  const Manifest &m = manifest();
  for (int64_t id : m.inputs) {
    const TensorDesc &t = m.tensors[size_t(id)];
    if (t.name != name)
      continue;
    if (t.dtype != value.dtype || t.shape != value.shape)
      return Status::error("input '" + name + "' expects " + dtypeName(t.dtype) + " " +
                           shapeToString(t.shape) + ", got " + dtypeName(value.dtype) + " " +
                           shapeToString(value.shape));
    return id;
  }
  std::string names;
  for (int64_t id : m.inputs)
    names += (names.empty() ? "" : ", ") + m.tensors[size_t(id)].name;
  return Status::error("the model has no input '" + name + "' (inputs: " + names + ")");
}

Status CpuExecutor::setInput(const std::string &name, const TensorRef &value) {
  Result<int64_t> id = inputFor(name, value);
  if (!id)
    return id.status();
  std::memcpy(refs_[size_t(*id)].data, value.data, value.bytes());
  return Status();
}

Status CpuExecutor::write(int64_t id, const void *host) {
  if (id < 0 || size_t(id) >= refs_.size())
    return Status::error("no tensor " + std::to_string(id));
  std::memcpy(refs_[size_t(id)].data, host, refs_[size_t(id)].bytes());
  return Status();
}

Status CpuExecutor::runStep(size_t i) {
  const Manifest &m = artifact_.manifest;
  const BoundStep &step = steps_[i];
  auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  Status s = step.kernel(step.inputs, step.outputs, m.schedule[i].attrs);
  if (profiling_) {
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
#pragma omp critical(longctx_profile)
    {
      auto &[total, launches] = profile_[m.schedule[i].op];
      total += seconds;
      ++launches;
    }
  }
  if (!s)
    return Status::error("step " + std::to_string(i) + " (" + m.schedule[i].op + " from '" +
                         m.schedule[i].location + "'): " + s.message());
  return Status();
}

/// One thread per worker (fewer when fewer are available: a thread then
/// runs several workers, which the memory plan allows). Inside, OpenMP
/// regions of the kernels are nested and so run on their worker's thread,
/// as does OpenBLAS (it goes single-threaded inside a parallel region).
Status CpuExecutor::runGroup(const ParallelGroup &group) {
  const int64_t workers = int64_t(group.workers.size());
  std::vector<Status> failures(group.workers.size());
  const int threads = int(std::min<int64_t>(workers, omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t w = 0; w < workers; ++w)
    for (size_t i : group.workers[size_t(w)])
      if (Status s = runStep(i); !s) {
        failures[size_t(w)] = std::move(s);
        break;
      }
  for (Status &s : failures)
    if (!s)
      return std::move(s);
  return Status();
}

Status CpuExecutor::run() {
  auto group = groups_.begin();
  for (size_t i = 0; i < steps_.size();) {
    if (group != groups_.end() && group->begin == i) {
      if (Status s = runGroup(*group); !s)
        return s;
      i = group->end;
      ++group;
      continue;
    }
    if (Status s = runStep(i++); !s)
      return s;
  }
  return Status();
}

uint64_t Executor::plannedBytes() const {
  return manifest().arenaBytes + uint64_t(artifact().data->bytes()) + manifest().stateBytes;
}

} // namespace longctx
