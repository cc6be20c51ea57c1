//===- longctx-run.cpp - Runs a longctx artifact ---------------------------===//
#include "runtime/Executor.h"
#include "runtime/Npy.h"
#include "runtime/cuda/CudaDevice.h"
#include "tools/common/StandardFlags.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace longctx;
namespace fs = std::filesystem;

namespace {

constexpr const char *kHelp = R"(longctx-run: runs a longctx artifact (.lcx)

Usage: longctx-run ARTIFACT.lcx [options]

Inputs and outputs:
  --inputs NAME=FILE.npy[,NAME=FILE.npy...]   graph inputs as .npy (repeatable)
  --outputs DIR                               write every graph output as DIR/<name>.npy

Training (artifacts compiled with --train):
  --steps N                                   training steps to run
  --dump-grads DIR                            write the first step's gradient of every
                                              parameter as DIR/<initializer name>.npy
                                              ('/' in names becomes '_') and print the loss

Execution:
  --device cpu|cuda                           where to run (default: cpu)
  --list-devices                              print the devices this machine offers
  --threads N                                 CPU threads (default: all cores)
  --repeat N                                  run N times and report the mean time

General:
  --help, --version

Examples:
  longctx-run model.lcx --inputs input_ids=ids.npy --outputs out/
  longctx-run model.lcx --inputs input_ids=ids.npy --outputs out/ --threads 2
  longctx-run train.lcx --inputs input_ids=ids.npy --steps 1 --dump-grads grads/
)";

int fail(const std::string &message) {
  std::cerr << "longctx-run: error: " << message << "\n";
  return 1;
}

struct Options {
  std::string artifact;
  std::vector<std::pair<std::string, std::string>> inputs;
  std::string outputs;
  std::string device = "cpu";
  int threads = 0;
  int repeat = 1;
  int steps = 0;
  std::string dumpGrads;
};

bool parseInt(const std::string &s, int &out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::stoi(s);
  return out > 0;
}

std::optional<std::string> parseArgs(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool hasValue = false;
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos &&
        arg.rfind("--inputs", 0) != 0) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
      hasValue = true;
    }
    auto next = [&]() -> std::optional<std::string> {
      if (hasValue)
        return value;
      if (i + 1 >= argc)
        return std::nullopt;
      return std::string(argv[++i]);
    };
    if (arg == "--inputs") {
      auto v = next();
      if (!v)
        return "--inputs needs NAME=FILE.npy";
      size_t pos = 0;
      while (pos <= v->size()) {
        size_t comma = v->find(',', pos);
        std::string item = v->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
          return "--inputs '" + item + "' is malformed: expected NAME=FILE.npy";
        o.inputs.push_back({item.substr(0, eq), item.substr(eq + 1)});
        if (comma == std::string::npos)
          break;
        pos = comma + 1;
      }
    } else if (arg == "--outputs") {
      auto v = next();
      if (!v)
        return "--outputs needs a directory";
      o.outputs = *v;
    } else if (arg == "--device") {
      auto v = next();
      if (!v || (*v != "cpu" && *v != "cuda"))
        return "--device must be cpu or cuda";
      o.device = *v;
    } else if (arg == "--threads") {
      auto v = next();
      if (!v || !parseInt(*v, o.threads))
        return "--threads needs a positive integer";
    } else if (arg == "--steps") {
      auto v = next();
      if (!v || !parseInt(*v, o.steps))
        return "--steps needs a positive integer";
    } else if (arg == "--dump-grads") {
      auto v = next();
      if (!v)
        return "--dump-grads needs a directory";
      o.dumpGrads = *v;
    } else if (arg == "--repeat") {
      auto v = next();
      if (!v || !parseInt(*v, o.repeat))
        return "--repeat needs a positive integer";
    } else if (arg.rfind("-", 0) == 0) {
      return "unknown option '" + arg + "' (see --help)";
    } else if (o.artifact.empty()) {
      o.artifact = arg;
    } else {
      return "unexpected argument '" + arg + "'";
    }
  }
  if (o.artifact.empty())
    return std::string("no artifact given (see --help)");
  return std::nullopt;
}

/// The value of a rank-0 float tensor (the loss).
double lossValue(const TensorRef &t) {
  return t.dtype == DType::F64 ? t.as<double>()[0] : double(t.as<float>()[0]);
}

} // namespace

int main(int argc, char **argv) {
  if (answerHelpOrVersion(argc, argv, "longctx-run", kHelp))
    return 0;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--list-devices") {
      std::cout << "cpu: " << std::thread::hardware_concurrency() << " threads\n";
      CudaDevices devices = probeCudaDevices();
      for (size_t d = 0; d < devices.names.size(); ++d)
        std::cout << "cuda:" << d << ": " << devices.names[d] << "\n";
      if (devices.names.empty())
        std::cout << "cuda: none (" << devices.whyNone << ")\n";
      return 0;
    }
  }
  Options options;
  if (auto err = parseArgs(argc, argv, options))
    return fail(*err);

  if (options.device == "cuda") {
    CudaDevices devices = probeCudaDevices();
    if (devices.names.empty())
      return fail("no CUDA device: use --device cpu (" + devices.whyNone + ")");
    return fail("found " + devices.names.front() +
                ", but this artifact has no CUDA code: the CUDA backend is not built yet; use --device cpu");
  }
#ifdef _OPENMP
  if (options.threads)
    omp_set_num_threads(options.threads);
#endif

  Result<Artifact> artifact = readArtifact(options.artifact);
  if (!artifact)
    return fail(artifact.status().message());
  Result<CpuExecutor> executor = CpuExecutor::create(std::move(*artifact));
  if (!executor)
    return fail(options.artifact + ": " + executor.status().message());
  const Manifest &m = executor->manifest();

  std::map<std::string, bool> given;
  for (const auto &[name, path] : options.inputs) {
    if (given.count(name))
      return fail("input '" + name + "' is given twice");
    given[name] = true;
    Result<Tensor> value = readNpy(path);
    if (!value)
      return fail(value.status().message());
    if (Status s = executor->setInput(name, value->ref()); !s)
      return fail(path + ": " + s.message());
  }
  std::string missing;
  for (int64_t id : m.inputs)
    if (!given.count(m.tensors[id].name))
      missing += (missing.empty() ? "" : ", ") + m.tensors[id].name + " (" +
                 dtypeName(m.tensors[id].dtype) + " " + shapeToString(m.tensors[id].shape) + ")";
  if (!missing.empty())
    return fail("missing inputs: " + missing + "; pass them with --inputs NAME=FILE.npy");

  double totalSeconds = 0;
  int runs = std::max(options.repeat, options.steps);
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = executor->run(); !s)
      return fail(s.message());
    totalSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  if (m.mode == "train") {
    // Outputs are the loss, then one gradient per parameter ("grad/<name>").
    std::printf("loss: %.6f\n", double(lossValue(executor->tensor(m.outputs[0]))));
    if (!options.dumpGrads.empty()) {
      std::error_code ec;
      fs::create_directories(options.dumpGrads, ec);
      if (ec)
        return fail(options.dumpGrads + ": cannot create directory: " + ec.message());
      for (size_t i = 1; i < m.outputs.size(); ++i) {
        std::string name = m.tensors[m.outputs[i]].name;
        if (name.rfind("grad/", 0) == 0)
          name = name.substr(5);
        for (char &c : name)
          if (c == '/')
            c = '_';
        std::string path = (fs::path(options.dumpGrads) / (name + ".npy")).string();
        if (Status s = writeNpy(path, executor->tensor(m.outputs[i])); !s)
          return fail(s.message());
      }
    }
  } else if (!options.dumpGrads.empty()) {
    return fail("--dump-grads needs an artifact compiled with --train");
  }

  if (!options.outputs.empty()) {
    std::error_code ec;
    fs::create_directories(options.outputs, ec);
    if (ec)
      return fail(options.outputs + ": cannot create directory: " + ec.message());
    for (int64_t id : m.outputs) {
      std::string file = m.tensors[id].name;
      for (char &c : file)
        if (c == '/')
          c = '_';
      std::string path = (fs::path(options.outputs) / (file + ".npy")).string();
      if (Status s = writeNpy(path, executor->tensor(id)); !s)
        return fail(s.message());
    }
  }
  std::fprintf(stderr, "longctx-run: %zu steps, %.3f ms per run, arena %.2f MiB\n",
               m.schedule.size(), 1e3 * totalSeconds / runs,
               double(executor->arenaBytes()) / (1 << 20));
  return 0;
}
