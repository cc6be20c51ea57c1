//===- longctx-run.cpp - Runs a longctx artifact ---------------------------===//
#include "runtime/Executor.h"
#include "runtime/Npy.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/training/ModelExport.h"
#include "runtime/training/TrainingLoop.h"
#include "tools/common/StandardFlags.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <algorithm>
#include <map>
#include <optional>
#include <unistd.h>
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
  --data FILE                                 token data: raw bytes (byte-level tokens), a
                                              .npy int array, or flat uint16/uint32 tokens
  --data-dtype auto|bytes|npy|u16|u32         how to read FILE (default: auto, by extension)
  --steps N                                   training steps to run (default 1)
  --batch B                                   batch size; must equal the compiled one
  --seed S                                    seed of the batch sampler (default 0)
  --lr X                                      override the compiled learning rate
                                              (0 leaves the weights untouched)
  --log-json FILE                             one JSON object per step: step, loss, lr,
                                              tokens_per_s, peak_bytes (measured on a GPU),
                                              planned_bytes, step_seconds
  --save FILE.safetensors                     write parameters and optimizer state (names:
                                              ONNX initializer names) at the end
  --save-every K                              ... and every K steps
  --resume FILE.safetensors                   continue from a checkpoint (bit-for-bit; --steps
                                              counts from the first step of the first run)
  --export-onnx FILE.onnx                     after training, write the source model with
                                              the trained weights
  --dump-grads DIR                            write the first step's gradient of every
                                              parameter as DIR/<initializer name>.npy
                                              ('/' in names becomes '_') and print the loss

Execution:
  --device cpu|cuda                           where to run (default: cpu)
  --list-devices                              print the devices this machine offers
  --threads N                                 CPU threads (default: all cores)
  --repeat N                                  run N times and report the mean time
  --profile                                   print the time spent per kernel
  --cuda-graph                                with --device cuda: capture the step as a CUDA
                                              graph after its first run and replay it (one
                                              launch per step; checks reported after it)

General:
  --help, --version

Examples:
  longctx-run model.lcx --inputs input_ids=ids.npy --outputs out/
  longctx-run model.lcx --inputs input_ids=ids.npy --outputs out/ --threads 2
  longctx-run train.lcx --data /usr/share/common-licenses/GPL-3 --steps 300 --log-json log.jsonl
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
  std::string data;
  TokenFormat dataFormat = TokenFormat::Auto;
  int batch = 0;
  uint64_t seed = 0;
  std::optional<double> lr;
  std::string logJson;
  bool profile = false;
  bool cudaGraph = false;
  std::string save, resume, exportOnnx;
  int saveEvery = 0;
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
    } else if (arg == "--save") {
      auto v = next();
      if (!v)
        return "--save needs a file";
      o.save = *v;
    } else if (arg == "--export-onnx") {
      auto v = next();
      if (!v)
        return "--export-onnx needs a file";
      o.exportOnnx = *v;
    } else if (arg == "--resume") {
      auto v = next();
      if (!v)
        return "--resume needs a checkpoint file";
      o.resume = *v;
    } else if (arg == "--save-every") {
      auto v = next();
      if (!v || !parseInt(*v, o.saveEvery))
        return "--save-every needs a positive integer";
    } else if (arg == "--profile") {
      o.profile = true;
    } else if (arg == "--cuda-graph") {
      o.cudaGraph = true;
    } else if (arg == "--data") {
      auto v = next();
      if (!v)
        return "--data needs a file";
      o.data = *v;
    } else if (arg == "--data-dtype") {
      auto v = next();
      static const std::map<std::string, TokenFormat> formats = {
          {"auto", TokenFormat::Auto}, {"bytes", TokenFormat::Bytes}, {"npy", TokenFormat::Npy},
          {"u16", TokenFormat::U16},   {"uint16", TokenFormat::U16},  {"u32", TokenFormat::U32},
          {"uint32", TokenFormat::U32}};
      if (!v || !formats.count(*v))
        return "--data-dtype must be auto, bytes, npy, u16 or u32";
      o.dataFormat = formats.at(*v);
    } else if (arg == "--batch") {
      auto v = next();
      if (!v || !parseInt(*v, o.batch))
        return "--batch needs a positive integer";
    } else if (arg == "--seed") {
      auto v = next();
      int seed = 0;
      if (!v || (!parseInt(*v, seed) && *v != "0"))
        return "--seed needs a non-negative integer";
      o.seed = uint64_t(seed);
    } else if (arg == "--lr") {
      auto v = next();
      char *end = nullptr;
      double lr = v ? std::strtod(v->c_str(), &end) : -1;
      if (!v || !end || *end || lr < 0)
        return "--lr needs a non-negative number";
      o.lr = lr;
    } else if (arg == "--log-json") {
      auto v = next();
      if (!v)
        return "--log-json needs a file";
      o.logJson = *v;
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
  if (o.cudaGraph && o.device != "cuda")
    return "--cuda-graph needs --device cuda";
  return std::nullopt;
}

} // namespace

/// The device memory the driver counts against the plan's, and what of it
/// lies outside the planned buffers; and a CUDA graph that fell back.
static void printDeviceReport(const CudaExecutor &gpu) {
  const double measured = double(gpu.measuredBytes()), planned = double(gpu.plannedBytes());
  std::fprintf(stderr,
               "longctx-run: %s: device memory %.2f MiB measured, %.2f MiB planned (%+.1f%%; "
               "%.2f MiB of it outside the planned buffers: CUDA runtime, cuBLAS, kernel "
               "code)\n",
               gpu.deviceName().c_str(), measured / (1 << 20), planned / (1 << 20),
               planned > 0 ? 100 * (measured - planned) / planned : 0.0,
               double(gpu.runtimeOverheadBytes()) / (1 << 20));
  if (!gpu.graphFallbackReason().empty())
    std::fprintf(stderr, "longctx-run: warning: the step ran eagerly (%s)\n",
                 gpu.graphFallbackReason().c_str());
}

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
  }
#ifdef _OPENMP
  if (options.threads)
    omp_set_num_threads(options.threads);
#endif

  // A training binary (--emit=exe) carries its artifact after its own code.
  std::optional<EmbeddedArtifact> embedded = findEmbeddedArtifact("/proc/self/exe");
  if (embedded && !options.artifact.empty())
    return fail("this binary has its artifact built in; unexpected argument '" + options.artifact + "'");
  if (!embedded && options.artifact.empty())
    return fail("no artifact given (see --help)");
  Result<Artifact> artifact = embedded ? readArtifactAt("/proc/self/exe", embedded->offset, embedded->size)
                                       : readArtifact(options.artifact);
  if (!artifact)
    return fail(artifact.status().message());
  std::unique_ptr<Executor> executor;
  CudaExecutor *gpu = nullptr;
  if (options.device == "cuda") {
    CudaOptions cudaOptions;
    cudaOptions.graph = options.cudaGraph;
    Result<std::unique_ptr<CudaExecutor>> created =
        CudaExecutor::create(std::move(*artifact), cudaOptions);
    if (!created)
      return fail(options.artifact + ": " + created.status().message());
    gpu = created->get();
    executor = std::move(*created);
  } else {
    Result<CpuExecutor> created = CpuExecutor::create(std::move(*artifact));
    if (!created)
      return fail(options.artifact + ": " + created.status().message());
    executor = std::make_unique<CpuExecutor>(std::move(*created));
  }
  const Manifest &m = executor->manifest();
  executor->setProfiling(options.profile);
  // Printed however the run ends (training returns early).
  struct ProfilePrinter {
    Executor &exec;
    ~ProfilePrinter() {
      std::vector<std::pair<double, std::string>> rows;
      double total = 0;
      for (const auto &[op, entry] : exec.profile()) {
        rows.push_back({entry.first, op});
        total += entry.first;
      }
      std::sort(rows.rbegin(), rows.rend());
      for (const auto &[seconds, op] : rows)
        std::fprintf(stderr, "  %-22s %9.2f ms %5.1f%% %7lld launches\n", op.c_str(), 1e3 * seconds,
                     total > 0 ? 100 * seconds / total : 0.0,
                     (long long)exec.profile().at(op).second);
    }
  } profilePrinter{*executor};

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
    if (!given.count(m.tensors[id].name) &&
        !(m.mode == "train" && (m.tensors[id].name == "lr" || m.tensors[id].name == "step" ||
                                (m.tensors[id].name == "input_ids" && !options.data.empty()))))
      missing += (missing.empty() ? "" : ", ") + m.tensors[id].name + " (" +
                 dtypeName(m.tensors[id].dtype) + " " + shapeToString(m.tensors[id].shape) + ")";
  if (!missing.empty())
    return fail("missing inputs: " + missing + "; pass them with --inputs NAME=FILE.npy");

  if (m.mode == "train") {
    std::optional<TokenData> data;
    if (!options.data.empty()) {
      Result<TokenData> loaded = TokenData::load(options.data, options.dataFormat);
      if (!loaded)
        return fail(loaded.status().message());
      data = std::move(*loaded);
    }
    for (int64_t id : m.inputs) {
      const TensorDesc &t = m.tensors[id];
      if (t.name == "input_ids" && options.batch && t.shape.size() == 2 && t.shape[0] != options.batch)
        return fail("--batch " + std::to_string(options.batch) + " differs from the compiled batch " +
                    std::to_string(t.shape[0]) + " (recompile with --shape input_ids=" +
                    std::to_string(options.batch) + "x" + std::to_string(t.shape[1]) + ")");
    }
    TrainingOptions training;
    training.steps = std::max(1, options.steps);
    training.seed = options.seed;
    training.data = data ? &*data : nullptr;
    training.lr = options.lr;
    training.logJson = options.logJson;
    training.dumpGrads = options.dumpGrads;
    training.progressBar = isatty(fileno(stderr));
    training.savePath = options.save;
    training.saveEvery = options.saveEvery;
    training.resumePath = options.resume;
    if (options.saveEvery && options.save.empty())
      return fail("--save-every needs --save FILE");
    Result<TrainingSummary> summary = runTraining(*executor, training);
    if (!summary)
      return fail(summary.status().message());
    if (!options.dumpGrads.empty())
      std::printf("loss: %.6f\n", summary->firstLoss);
    if (!options.exportOnnx.empty())
      if (Status s = exportOnnx(*executor, options.exportOnnx); !s)
        return fail(s.message());
    std::fprintf(stderr,
                 "longctx-run: %lld steps in %.2f s, loss %.4f -> %.4f (mean of the last %d: %.4f)\n",
                 (long long)summary->steps, summary->seconds, summary->firstLoss, summary->lastLoss,
                 int(std::min<int64_t>(20, summary->steps)), summary->tailLoss);
    if (gpu)
      printDeviceReport(*gpu);
    return 0;
  }
  if (!options.dumpGrads.empty() || !options.data.empty() || !options.save.empty() ||
      !options.resume.empty() || !options.exportOnnx.empty())
    return fail("--data, --dump-grads, --save, --resume and --export-onnx need an artifact "
                "compiled with --train");

  double totalSeconds = 0;
  int runs = options.repeat;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = executor->run(); !s)
      return fail(s.message());
    totalSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
      Result<TensorRef> value = executor->read(id);
      if (!value)
        return fail(value.status().message());
      if (Status s = writeNpy(path, *value); !s)
        return fail(s.message());
    }
  }
  std::fprintf(stderr, "longctx-run: %zu steps, %.3f ms per run, arena %.2f MiB\n",
               m.schedule.size(), 1e3 * totalSeconds / runs,
               double(executor->arenaBytes()) / (1 << 20));
  if (gpu)
    printDeviceReport(*gpu);
  return 0;
}
