//===- TrainingLoop.cpp - The training loop of longctx-run -----------------===//
#include "runtime/training/TrainingLoop.h"
#include "runtime/Npy.h"
#include "runtime/training/Checkpoint.h"
#include "runtime/training/LrSchedule.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

namespace fs = std::filesystem;

namespace longctx {
namespace {

const TensorDesc *findInput(const Manifest &m, const std::string &name, int64_t *id = nullptr) {
  for (int64_t i : m.inputs)
    if (m.tensors[i].name == name) {
      if (id)
        *id = i;
      return &m.tensors[i];
    }
  return nullptr;
}

Status setScalar(Executor &exec, int64_t id, double value) {
  if (exec.manifest().tensors[size_t(id)].dtype == DType::F64)
    return exec.write(id, &value);
  float narrow = float(value);
  return exec.write(id, &narrow);
}

double readScalar(const TensorRef &t) {
  return t.dtype == DType::F64 ? t.as<double>()[0] : double(t.as<float>()[0]);
}

Status dumpGradients(Executor &exec, const std::string &dir) {
  const Manifest &m = exec.manifest();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Status::error(dir + ": cannot create directory: " + ec.message());
  int written = 0;
  for (int64_t id : m.outputs) {
    std::string name = m.tensors[id].name;
    if (name.rfind("grad/", 0) != 0)
      continue;
    ++written;
    name = name.substr(5);
    for (char &c : name)
      if (c == '/')
        c = '_';
    Result<TensorRef> t = exec.read(id);
    if (!t)
      return t.status();
    if (Status s = writeNpy((fs::path(dir) / (name + ".npy")).string(), *t); !s)
      return s;
  }
  if (!written)
    return Status::error("this artifact keeps no gradients to dump (compiled with "
                         "--optimizer-in-backward?): recompile without it");
  return Status();
}

} // namespace

Result<TrainingSummary> runTraining(Executor &exec, const TrainingOptions &options) {
  const Manifest &m = exec.manifest();
  int64_t idsId = -1, lrId = -1, stepId = -1;
  const TensorDesc *ids = findInput(m, "input_ids", &idsId);
  findInput(m, "lr", &lrId);
  findInput(m, "step", &stepId);
  if (options.data) {
    if (!ids || ids->shape.size() != 2 || ids->dtype != DType::I64)
      return Status::error("--data needs a model whose input_ids is an int64 [batch, seq] tensor");
    if (options.data->size() < ids->shape[1])
      return Status::error("the data holds " + std::to_string(options.data->size()) +
                           " tokens, fewer than one sequence of " + std::to_string(ids->shape[1]));
  }
  std::ofstream log;
  if (!options.logJson.empty()) {
    log.open(options.logJson, std::ios::trunc);
    if (!log)
      return Status::error(options.logJson + ": cannot open for writing");
  }

  int64_t startStep = 0;
  if (!options.resumePath.empty()) {
    Result<int64_t> done = loadCheckpoint(exec, options.resumePath);
    if (!done)
      return done.status();
    startStep = *done;
    if (startStep >= options.steps)
      return Status::error(options.resumePath + ": already " + std::to_string(startStep) +
                           " steps done; --steps counts from the start, so ask for more");
  }
  LrSchedule schedule = LrSchedule::fromManifest(m.training, options.steps);
  Tensor batch = ids ? Tensor(DType::I64, ids->shape) : Tensor();
  int64_t tokensPerStep = ids ? numElements(ids->shape) : 0;
  TrainingSummary summary;
  std::vector<double> losses;
  auto start = std::chrono::steady_clock::now();
  for (int64_t t = startStep; t < options.steps; ++t) {
    if (options.data) {
      // Seeded per step, so a resumed run draws the batches it would have.
      std::mt19937_64 rng(options.seed + 0x9E3779B97F4A7C15ull * uint64_t(t + 1));
      options.data->sample(rng, batch);
      if (Status s = exec.setInput("input_ids", batch.ref()); !s)
        return s;
    }
    double lr = options.lr ? *options.lr : schedule.at(t);
    if (lrId >= 0)
      if (Status s = setScalar(exec, lrId, lr); !s)
        return s;
    if (stepId >= 0)
      if (Status s = setScalar(exec, stepId, double(t + 1)); !s)
        return s;
    auto stepStart = std::chrono::steady_clock::now();
    if (Status s = exec.run(); !s)
      return Status::error("step " + std::to_string(t + 1) + ": " + s.message());
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stepStart).count();
    Result<TensorRef> lossTensor = exec.read(m.outputs[0]);
    if (!lossTensor)
      return lossTensor.status();
    double loss = readScalar(*lossTensor);
    losses.push_back(loss);
    if (t == startStep && !options.dumpGrads.empty())
      if (Status s = dumpGradients(exec, options.dumpGrads); !s)
        return s;
    bool last = t + 1 == options.steps;
    if (!options.savePath.empty() &&
        (last || (options.saveEvery > 0 && (t + 1) % options.saveEvery == 0)))
      if (Status s = saveCheckpoint(exec, options.savePath, t + 1); !s)
        return s;
    double tokensPerSecond = seconds > 0 ? double(tokensPerStep) / seconds : 0;
    uint64_t peak = exec.allocatedBytes();
    if (log) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"tokens_per_s\": %.1f, "
                    "\"peak_bytes\": %llu, \"planned_bytes\": %llu, \"step_seconds\": %.6f}\n",
                    (long long)(t + 1), loss, lr, tokensPerSecond, (unsigned long long)peak,
                    (unsigned long long)exec.plannedBytes(), seconds);
      log << line;
    }
    if (options.progressBar) {
      int width = 30, filled = int(width * (t + 1) / options.steps);
      std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld loss %.4f lr %.2e %.0f tok/s ",
                   filled, "##############################", width - filled, "",
                   (long long)(t + 1), (long long)options.steps, loss, lr, tokensPerSecond);
      if (t + 1 == options.steps)
        std::fprintf(stderr, "\n");
    } else {
      std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.3e tokens/s %.0f peak %.1f MiB\n",
                   (long long)(t + 1), (long long)options.steps, loss, lr, tokensPerSecond,
                   double(peak) / (1 << 20));
    }
  }
  summary.steps = options.steps - startStep;
  summary.startStep = startStep;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.firstLoss = losses.front();
  summary.lastLoss = losses.back();
  size_t tail = std::min<size_t>(20, losses.size());
  for (size_t i = losses.size() - tail; i < losses.size(); ++i)
    summary.tailLoss += losses[i] / double(tail);
  return summary;
}

} // namespace longctx
