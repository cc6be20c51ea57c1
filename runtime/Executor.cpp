//===- Executor.cpp - Runs an artifact's schedule on the CPU ---------------===//
#include "runtime/Executor.h"

#include <chrono>
#include <cstring>
#include <set>

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
  return exec;
}

Status CpuExecutor::setInput(const std::string &name, const TensorRef &value) {
  const Manifest &m = artifact_.manifest;
  for (int64_t id : m.inputs) {
    const TensorDesc &t = m.tensors[size_t(id)];
    if (t.name != name)
      continue;
    if (t.dtype != value.dtype || t.shape != value.shape)
      return Status::error("input '" + name + "' expects " + dtypeName(t.dtype) + " " +
                           shapeToString(t.shape) + ", got " + dtypeName(value.dtype) + " " +
                           shapeToString(value.shape));
    std::memcpy(refs_[size_t(id)].data, value.data, value.bytes());
    return Status();
  }
  std::string names;
  for (int64_t id : m.inputs)
    names += (names.empty() ? "" : ", ") + m.tensors[size_t(id)].name;
  return Status::error("the model has no input '" + name + "' (inputs: " + names + ")");
}

Status CpuExecutor::run() {
  const Manifest &m = artifact_.manifest;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const BoundStep &step = steps_[i];
    auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    Status s = step.kernel(step.inputs, step.outputs, m.schedule[i].attrs);
    if (profiling_) {
      auto &[seconds, launches] = profile_[m.schedule[i].op];
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++launches;
    }
    if (!s)
      return Status::error("step " + std::to_string(i) + " (" + m.schedule[i].op + " from '" +
                           m.schedule[i].location + "'): " + s.message());
  }
  return Status();
}

} // namespace longctx
