//===- longctx-compile.cpp - ONNX model -> .lcx artifact -------------------===//
#include "compiler/artifact/ArtifactBuilder.h"
#include "compiler/import/NodeLocation.h"
#include "compiler/import/OnnxImporter.h"
#include "compiler/onnx/OnnxModel.h"
#include "compiler/planning/LengthSearch.h"
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "runtime/Artifact.h"
#include "runtime/MemoryReport.h"

#include "llvm/Support/CommandLine.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace longctx;

namespace {

cl::OptionCategory category("longctx-compile options");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx|model.json>"),
                               cl::Required, cl::cat(category));
cl::opt<std::string> outputFile("o", cl::desc("Output file (default: stdout for IR stages, "
                                              "MODEL.lcx for the artifact)"),
                                cl::value_desc("file"), cl::cat(category));
cl::opt<bool> inference("inference", cl::desc("Compile the forward graph for inference"),
                        cl::cat(category));
cl::opt<bool> train("train",
                    cl::desc("Compile a training step: next-token loss and the gradient of "
                             "every parameter"),
                    cl::cat(category));
cl::OptionCategory trainCategory("Training options (with --train)");
cl::opt<std::string> optimizer("optimizer", cl::desc("adamw (default), sgd, or none (gradients only)"),
                               cl::init("adamw"), cl::cat(trainCategory));
cl::opt<double> lr("lr", cl::desc("Peak learning rate (default 1e-3)"), cl::init(1e-3),
                   cl::cat(trainCategory));
cl::opt<double> weightDecay("weight-decay",
                            cl::desc("Weight decay: decoupled for adamw (default 0.01, as "
                                     "torch.optim.AdamW), L2 for sgd (default 0)"),
                            cl::init(0.0), cl::cat(trainCategory));
cl::opt<double> beta1("beta1", cl::desc("AdamW beta1 (default 0.9)"), cl::init(0.9),
                      cl::cat(trainCategory));
cl::opt<double> beta2("beta2", cl::desc("AdamW beta2 (default 0.999)"), cl::init(0.999),
                      cl::cat(trainCategory));
cl::opt<double> adamEps("eps", cl::desc("AdamW epsilon (default 1e-8)"), cl::init(1e-8),
                        cl::cat(trainCategory));
cl::opt<double> momentum("momentum", cl::desc("SGD momentum (default 0)"), cl::init(0.0),
                         cl::cat(trainCategory));
cl::opt<bool> nesterov("nesterov", cl::desc("SGD Nesterov momentum"), cl::cat(trainCategory));
cl::opt<double> clipNorm("clip-norm", cl::desc("Clip the global gradient norm (default: off)"),
                         cl::init(0.0), cl::cat(trainCategory));
cl::opt<bool> optimizerInBackward(
    "optimizer-in-backward",
    cl::desc("Update each parameter as soon as its gradient is complete, so not all "
             "gradients live at once (no --clip-norm, no --dump-grads)"),
    cl::cat(trainCategory));
cl::opt<int> warmup("warmup", cl::desc("Linear warmup steps (default 0)"), cl::init(0),
                    cl::cat(trainCategory));
cl::opt<std::string> schedule("schedule",
                              cl::desc("constant (default) or cosine (decays to 10% of --lr "
                                       "over the run's --steps)"),
                              cl::init("constant"), cl::cat(trainCategory));
cl::opt<std::string> reportJson("report-json",
                                cl::desc("Write the memory report (peak_bytes, arena_bytes, "
                                         "load_bytes, by_category) as JSON"),
                                cl::value_desc("file"), cl::cat(category));
cl::opt<bool> planOnly("plan-only",
                       cl::desc("Plan memory without weights (their external data may be "
                                "absent) and report it; writes no artifact"),
                       cl::cat(category));
cl::opt<std::string> dtype("dtype",
                          cl::desc("f32 (default), or bf16/f16 for pure low-precision training "
                                   "plans (with --plan-only)"),
                          cl::init("f32"), cl::cat(category));
cl::opt<bool> maxSeqLen("max-seq-len",
                        cl::desc("With --memory-budget: search the longest sequence whose plan "
                                 "fits, re-pinning dim 1 of the --shape given, and report it"),
                        cl::cat(category));
cl::opt<std::string> memoryBudget("memory-budget",
                                  cl::desc("Fail unless the step fits in this much memory, e.g. "
                                           "80GiB, 512MiB, 2e9 (bytes)"),
                                  cl::value_desc("size"), cl::cat(category));
cl::opt<std::string> recompute(
    "recompute",
    cl::desc("Activation checkpointing: none (default), layer (every layer keeps only its "
             "input and recomputes the rest in the backward), or auto (the fewest layers "
             "that make the plan fit --memory-budget)"),
    cl::init("none"), cl::cat(trainCategory));
cl::opt<std::string> miniSequence(
    "mini-sequence",
    cl::desc("Chunk the MLPs and the LM head + loss over M chunks of tokens (Mini-Sequence "
             "Transformer): M (1 = off, the default), or auto: the fewest chunks (and, unless "
             "--recompute is given, the lightest recompute policy) whose plan fits "
             "--memory-budget"),
    cl::init("1"), cl::cat(category));
cl::opt<int64_t> adjointShard(
    "adjoint-shard",
    cl::desc("Shard every residual SSM layer over K time shards, carrying the scan state "
             "(adjoint sharding, exact): the forward keeps each layer's input and the states "
             "at shard boundaries; the backward sweeps the shards in reverse (default 1: off)"),
    cl::value_desc("K"), cl::init(1), cl::cat(category));
cl::opt<std::string> device(
    "device",
    cl::desc("cpu (default) or cuda: a CUDA artifact also carries PTX of its generated kernels "
             "(fused elementwise chains, NVRTC) for each --cuda-arch; it runs on the CPU too"),
    cl::init("cpu"), cl::cat(category));
cl::list<std::string> cudaArch("cuda-arch",
                               cl::desc("With --device cuda: GPU architectures (default "
                                        "sm_80,sm_90)"),
                               cl::value_desc("sm_XY,..."), cl::CommaSeparated,
                               cl::cat(category));
cl::opt<bool> fuseElementwise(
    "fuse-elementwise",
    cl::desc("Fuse chains of elementwise ops into one kernel each (lc-fuse-elementwise): one "
             "pass over the elements, no intermediates in memory"),
    cl::init(false), cl::cat(category));
cl::opt<int64_t> adjointTruncate(
    "adjoint-truncate",
    cl::desc("With --adjoint-shard: truncated adjoint sharding, each cotangent reaches back at "
             "most T steps into the scans' states (default 0: all, exact; T >= the sequence "
             "length is exact)"),
    cl::value_desc("T"), cl::init(0), cl::cat(category));
cl::opt<int64_t> adjointParallel(
    "adjoint-parallel",
    cl::desc("With --adjoint-shard: backward shards that run at once (default 1: one after the "
             "other). W > 1 passes the state cotangent between shards as Mamba-2 passes states "
             "(lc-adjoint-state-passing): the shards' backward runs on W concurrent workers, at "
             "the price of recomputing each shard's dy once more and W shards' memory at once"),
    cl::value_desc("W"), cl::init(1), cl::cat(category));
cl::opt<std::string> adjointMode(
    "adjoint-mode",
    cl::desc("With --adjoint-shard: exact (default: gradients equal backprop) or paper (every "
             "layer driven by the top layer's cotangent, as the paper's Proposition 3; exact "
             "only for the top layer, for comparison)"),
    cl::init("exact"), cl::cat(category));
cl::list<std::string> freeze("freeze", cl::desc("Parameters that get no gradient (with --train)"),
                             cl::value_desc("NAME,..."), cl::CommaSeparated, cl::cat(trainCategory));
cl::list<std::string> shapes("shape",
                             cl::desc("Pin the dims of a graph input, e.g. input_ids=1x4096 "
                                      "(repeatable)"),
                             cl::value_desc("NAME=DxD..."), cl::cat(category));

enum class Stage { Import, Lc, Artifact, Executable };
cl::opt<Stage> emit("emit", cl::desc("Where to stop and what to write"),
                    cl::values(clEnumValN(Stage::Import, "import",
                                          "the `lc` IR as imported, before folding"),
                               clEnumValN(Stage::Lc, "lc",
                                          "the `lc` IR after folding and clean-up"),
                               clEnumValN(Stage::Artifact, "lcx", "the artifact (default)"),
                               clEnumValN(Stage::Executable, "exe",
                                          "a self-contained binary: longctx-run with the "
                                          "artifact embedded (same flags as longctx-run)")),
                    cl::init(Stage::Artifact), cl::cat(category));

void printVersion(raw_ostream &os) { os << "longctx-compile " << LONGCTX_VERSION << "\n"; }

constexpr const char *kOverview = R"(longctx-compile: compiles an ONNX model into a longctx artifact (.lcx)

Examples:
  longctx-compile model.onnx --inference --shape input_ids=1x256 -o model.lcx
  longctx-compile model.json --inference --shape input_ids=1x64 --emit=lc
  longctx-compile model.onnx --inference --emit=import -o model.mlir
  longctx-compile model.onnx --train --shape input_ids=4x256 --optimizer adamw --lr 3e-3 -o train.lcx
  longctx-compile model.onnx --train --shape input_ids=4x256 --emit=exe -o train_bin
)";

/// Writes `out`: the runner executable, then the artifact, then the
/// trailer findEmbeddedArtifact looks for; marked executable.
std::string embedArtifact(const std::string &runner, const std::string &artifact,
                          const std::string &out) {
  auto runnerBytes = MemoryBuffer::getFile(runner, /*IsText=*/false);
  if (!runnerBytes)
    return runner + ": cannot read the runner to embed the artifact into (" +
           runnerBytes.getError().message() + ")";
  auto artifactBytes = MemoryBuffer::getFile(artifact, /*IsText=*/false);
  if (!artifactBytes)
    return artifact + ": " + artifactBytes.getError().message();
  std::error_code ec;
  raw_fd_ostream os(out, ec);
  if (ec)
    return out + ": " + ec.message();
  uint64_t offset = (*runnerBytes)->getBufferSize(), size = (*artifactBytes)->getBufferSize();
  os << (*runnerBytes)->getBuffer() << (*artifactBytes)->getBuffer();
  os.write(reinterpret_cast<const char *>(&offset), 8);
  os.write(reinterpret_cast<const char *>(&size), 8);
  os.write(kEmbeddedMagic, 8);
  os.close();
  if (os.has_error())
    return out + ": write failed";
  sys::fs::setPermissions(out, sys::fs::perms::all_read | sys::fs::perms::all_exe |
                                   sys::fs::perms::owner_write);
  return {};
}

/// Parses "80GiB", "512MiB", "1.5GB", "4096" (bytes); nullopt if malformed.
std::optional<uint64_t> parseSize(const std::string &text) {
  static const std::pair<const char *, double> units[] = {
      {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
      {"KB", 1e3},     {"MB", 1e6},        {"GB", 1e9},           {"TB", 1e12},
      {"B", 1.0}};
  std::string number = text;
  double scale = 1.0;
  for (const auto &[suffix, factor] : units) {
    std::string sfx(suffix);
    if (number.size() > sfx.size() && number.compare(number.size() - sfx.size(), sfx.size(), sfx) == 0) {
      number.resize(number.size() - sfx.size());
      scale = factor;
      break;
    }
  }
  char *end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (number.empty() || !end || *end || !(value > 0) || value * scale > 1.8e19)
    return std::nullopt;
  return uint64_t(value * scale);
}

/// What the memory passes do: lc-mini-sequence's chunks (1: off) and
/// lc-recompute's policy.
struct MemoryConfig {
  int64_t chunks = 1;
  std::string recompute = "none";
};

/// The pass pipeline from imported `lc` to a planned, runnable step;
/// `budget` (bytes, 0 for none) steers --recompute auto.
void addPipeline(mlir::PassManager &pm, const std::vector<std::string> &frozenNames,
                 uint64_t budget, const MemoryConfig &config) {
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  if (dtype != "f32") {
    LcConvertFloatTypeOptions convert;
    convert.to = dtype;
    pm.addPass(createLcConvertFloatType(convert));
  }
  // Fused ops keep less alive for the backward and run faster.
  pm.addPass(createLcFuseRmsNorm());
  pm.addPass(createLcFuseAttention());
  pm.addPass(mlir::createCanonicalizerPass());
  if (train)
    pm.addPass(createLcAppendLoss());
  if (config.chunks > 1) {
    LcMiniSequenceOptions chunking;
    chunking.chunks = config.chunks;
    pm.addNestedPass<mlir::func::FuncOp>(createLcMiniSequence(chunking));
  }
  const bool sharded = adjointShard > 1 || adjointTruncate > 0;
  if (sharded) {
    LcAdjointShardOptions sharding;
    sharding.shards = adjointShard;
    sharding.truncate = adjointTruncate;
    sharding.mode = adjointMode;
    sharding.parallel = adjointParallel;
    pm.addNestedPass<mlir::func::FuncOp>(createLcAdjointShard(sharding));
  }
  if (train) {
    LcAutodiffOptions autodiff;
    autodiff.freeze = frozenNames; // an ArrayRef: frozenNames outlives the pass manager
    pm.addPass(createLcAutodiff(autodiff));
    if (optimizer != "none") {
      LcOptimizerOptions opt;
      opt.kind = optimizer;
      opt.beta1 = beta1;
      opt.beta2 = beta2;
      opt.epsilon = adamEps;
      opt.weightDecay = weightDecay.getNumOccurrences() ? double(weightDecay)
                        : optimizer == "adamw"         ? 0.01
                                                       : 0.0;
      opt.momentum = momentum;
      opt.nesterov = nesterov;
      opt.clipNorm = clipNorm;
      opt.inBackward = optimizerInBackward;
      pm.addPass(createLcOptimizer(opt));
    }
    if (sharded && adjointMode == "paper")
      pm.addNestedPass<mlir::func::FuncOp>(createLcAdjointPaper());
    pm.addPass(mlir::createCanonicalizerPass());
    pm.addPass(mlir::createCSEPass());
  }
  // After the last CSE, which would merge recomputed forward ops (of the
  // chunks' backward, of checkpointed layers) with the forward's.
  if (sharded && train && adjointParallel > 1)
    pm.addNestedPass<mlir::func::FuncOp>(createLcAdjointStatePassing());
  if (config.chunks > 1 || sharded) {
    pm.addNestedPass<mlir::func::FuncOp>(createLcLowerMiniSequence());
    pm.addPass(mlir::createCanonicalizerPass());
  }
  if (train) {
    LcRecomputeOptions checkpointing;
    checkpointing.policy = config.recompute;
    checkpointing.budget = budget;
    pm.addNestedPass<mlir::func::FuncOp>(createLcRecompute(checkpointing));
    pm.addNestedPass<mlir::func::FuncOp>(createLcFuseScanRecompute());
  }
  // A GPU backend gains the most from one kernel per chain: on for cuda.
  if (fuseElementwise || device == "cuda")
    pm.addNestedPass<mlir::func::FuncOp>(createLcFuseElementwise());
  pm.addNestedPass<mlir::func::FuncOp>(createLcSchedule());
  pm.addNestedPass<mlir::func::FuncOp>(createLcPlanMemory());
  pm.addPass(createLcCheckKernels());
}

/// For --device cuda, tells the passes to plan the CUDA kernels' scratch
/// (the module's lc.device attribute).
void markDevice(mlir::ModuleOp module) {
  if (device == "cuda")
    module->setAttr(lc::kDeviceAttr, mlir::StringAttr::get(module.getContext(), "cuda"));
}

/// Plans the step for `options`' shapes under `config`: its memory report,
/// or nullopt when it does not compile.
std::optional<MemoryReport> planWith(const onnx_import::Model &model, const ImportOptions &options,
                                     const MemoryConfig &config, uint64_t budget) {
  mlir::MLIRContext context;
  mlir::ScopedDiagnosticHandler quiet(&context, [](mlir::Diagnostic &) { return mlir::success(); });
  WeightStore weights;
  std::vector<std::string> errors;
  mlir::OwningOpRef<mlir::ModuleOp> module = importOnnxModel(context, model, options, weights, errors);
  if (!module)
    return std::nullopt;
  markDevice(*module);
  std::vector<std::string> frozenNames(freeze.begin(), freeze.end());
  mlir::PassManager pm(&context);
  addPipeline(pm, frozenNames, budget, config);
  if (failed(pm.run(*module)))
    return std::nullopt;
  ArtifactOptions planOptions;
  planOptions.planOnly = true;
  Manifest manifest;
  std::vector<uint8_t> data;
  if (failed(buildManifest(*module, weights, planOptions, manifest, data)))
    return std::nullopt;
  return computeMemoryReport(manifest);
}

int fail(const std::string &message) {
  errs() << "longctx-compile: error: " << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::SetVersionPrinter(printVersion);
  cl::HideUnrelatedOptions({&category, &trainCategory});
  cl::ParseCommandLineOptions(argc, argv, kOverview);

  if (train == inference)
    return fail("say what to compile: --inference or --train");
  if (!freeze.empty() && !train)
    return fail("--freeze needs --train");
  if (optimizer != "adamw" && optimizer != "sgd" && optimizer != "none")
    return fail("--optimizer must be adamw, sgd or none");
  if (schedule != "constant" && schedule != "cosine")
    return fail("--schedule must be constant or cosine");
  if (lr < 0 || warmup < 0 || clipNorm < 0 || weightDecay < 0)
    return fail("--lr, --warmup, --clip-norm and --weight-decay must not be negative");

  ImportOptions importOptions;
  for (const std::string &spec : shapes) {
    size_t eq = spec.find('=');
    std::optional<std::vector<int64_t>> dims;
    if (eq != std::string::npos)
      dims = parseShapeSpec(spec.substr(eq + 1));
    if (eq == std::string::npos || eq == 0 || !dims)
      return fail("--shape '" + spec + "' is malformed: expected NAME=DxD..., e.g. input_ids=1x4096");
    importOptions.inputShapes[spec.substr(0, eq)] = *dims;
  }

  if (dtype != "f32" && dtype != "bf16" && dtype != "f16")
    return fail("--dtype must be f32, bf16 or f16");
  if (dtype != "f32" && !planOnly)
    return fail("--dtype " + dtype + " is for memory plans (--plan-only): the CPU backend "
                "executes f32");
  std::optional<uint64_t> budget;
  if (!memoryBudget.empty()) {
    budget = parseSize(memoryBudget);
    if (!budget)
      return fail("--memory-budget '" + memoryBudget + "' is malformed: use e.g. 80GiB, 512MiB or bytes");
  }
  if (adjointShard < 1 || adjointShard > 65536)
    return fail("--adjoint-shard must be a number of time shards from 1 to 65536");
  if (adjointMode != "exact" && adjointMode != "paper")
    return fail("--adjoint-mode must be exact or paper");
  if (adjointMode == "paper" && (adjointShard < 2 || !train))
    return fail("--adjoint-mode paper needs --train and --adjoint-shard K with K >= 2");
  if (device != "cpu" && device != "cuda")
    return fail("--device must be cpu or cuda");
  std::vector<std::string> cudaArchs(cudaArch.begin(), cudaArch.end());
  if (cudaArchs.empty())
    cudaArchs = {"sm_80", "sm_90"};
  if (!cudaArch.empty() && device != "cuda")
    return fail("--cuda-arch needs --device cuda");
  for (const std::string &arch : cudaArchs)
    if (arch.size() < 5 || arch.rfind("sm_", 0) != 0 ||
        arch.find_first_not_of("0123456789", 3) != std::string::npos)
      return fail("--cuda-arch '" + arch + "' is not an architecture like sm_80 or sm_90");
  if (adjointParallel < 1 || adjointParallel > 1024)
    return fail("--adjoint-parallel must be a number of concurrent shards from 1 to 1024");
  if (adjointParallel > 1 && (adjointShard < 2 || !train))
    return fail("--adjoint-parallel needs --train and --adjoint-shard K with K >= 2");
  if (adjointParallel > 1 && adjointTruncate > 0)
    return fail("--adjoint-parallel needs the exact backward: a truncated one (--adjoint-truncate) "
                "carries an adjoint window, which does not pass between shards as a state does");
  if (adjointTruncate < 0)
    return fail("--adjoint-truncate must be a number of steps >= 1 (0: exact)");
  if (adjointTruncate > 0 && !train)
    return fail("--adjoint-truncate needs --train (it changes only the backward)");
  if (recompute != "none" && recompute != "layer" && recompute != "auto")
    return fail("--recompute must be none, layer or auto");
  if (recompute != "none" && !train)
    return fail("--recompute needs --train (an inference step keeps no activations)");
  if (recompute == "auto" && !budget)
    return fail("--recompute auto needs --memory-budget (what the plan must fit)");
  const bool chunkingAuto = miniSequence == "auto";
  int64_t chunks = 1;
  if (!chunkingAuto) {
    char *end = nullptr;
    long long m = std::strtoll(miniSequence.c_str(), &end, 10);
    if (miniSequence.empty() || *end || m < 1 || m > 4096)
      return fail("--mini-sequence must be a number of chunks (1 to 4096) or auto, not '" +
                  miniSequence + "'");
    chunks = m;
  } else if (!budget) {
    return fail("--mini-sequence auto needs --memory-budget (what the plan must fit)");
  }

  std::vector<std::string> errors;
  auto report = [&](const std::string &what) {
    for (const std::string &e : errors)
      errs() << e << "\n";
    errs() << "longctx-compile: error: " << errors.size() << " problem"
           << (errors.size() == 1 ? "" : "s") << " " << what << "\n";
    return 1;
  };
  onnx_import::LoadOptions loadOptions;
  loadOptions.allowMissingWeights = planOnly;
  loadOptions.keepSerialized = train && !planOnly;
  std::optional<onnx_import::Model> model = onnx_import::loadModel(inputFile, loadOptions, errors);
  if (!model)
    return report("loading " + inputFile);

  // The memory configurations to consider: the one asked for, or, with
  // --mini-sequence auto, lightest recompute first, then fewest chunks.
  std::vector<MemoryConfig> configs;
  {
    std::vector<std::string> policies{recompute};
    if (chunkingAuto && !recompute.getNumOccurrences() && train)
      policies = {"none", "layer"};
    for (const std::string &policy : policies)
      for (int64_t m : chunkingAuto ? std::vector<int64_t>{1, 2, 4, 8, 16, 32}
                                    : std::vector<int64_t>{chunks})
        configs.push_back({m, policy});
  }
  auto describeConfig = [](const MemoryConfig &c) {
    return std::to_string(c.chunks) + " chunk" + (c.chunks == 1 ? "" : "s") + ", recompute " +
           c.recompute;
  };
  auto withConfig = [&](std::string json, const MemoryConfig &c) {
    json.insert(json.find('{') + 1, "\n  \"mini_sequence_chunks\": " + std::to_string(c.chunks) +
                                        ",\n  \"recompute\": \"" + c.recompute + "\",");
    return json;
  };
  auto fitsWith = [&](const ImportOptions &options, const MemoryConfig &c,
                      std::optional<MemoryReport> *out = nullptr) {
    std::optional<MemoryReport> r = planWith(*model, options, c, *budget);
    if (out)
      *out = r;
    return r && r->peakBytes <= *budget;
  };

  if (maxSeqLen) {
    if (!budget)
      return fail("--max-seq-len needs --memory-budget");
    if (importOptions.inputShapes.size() != 1 || importOptions.inputShapes.begin()->second.size() < 2)
      return fail("--max-seq-len needs one --shape NAME=BxS... whose dim 1 is the sequence");
    std::string input = importOptions.inputShapes.begin()->first;
    auto atLength = [&](int64_t seq) {
      ImportOptions options = importOptions;
      options.inputShapes[input][1] = seq;
      return options;
    };
    // The search uses the configuration that saves the most (the last);
    // the shortest list prefix that fits the longest length is reported.
    PeakAtLength peakAt = [&](int64_t seq) -> std::optional<uint64_t> {
      std::optional<MemoryReport> r = planWith(*model, atLength(seq), configs.back(), *budget);
      return r ? std::optional<uint64_t>(r->peakBytes) : std::nullopt;
    };
    LengthSearchResult found = searchLongestFitting(
        peakAt, *budget, importOptions.inputShapes.begin()->second[1], int64_t(1) << 26);
    const int64_t lo = found.length;
    if (lo == 0)
      return fail("even a sequence of 1 does not fit in --memory-budget " + formatBytes(*budget));
    std::optional<MemoryReport> best;
    MemoryConfig chosen = configs.back();
    for (const MemoryConfig &c : configs)
      if (fitsWith(atLength(lo), c, &best)) {
        chosen = c;
        break;
      }
    outs() << "max_seq_len: " << lo << " (peak " << formatBytes(best->peakBytes) << " of "
           << formatBytes(*budget) << "; " << describeConfig(chosen) << "), " << found.probes
           << " plans searched\n";
    if (!reportJson.empty()) {
      std::error_code ec;
      raw_fd_ostream os(reportJson, ec);
      if (ec)
        return fail(reportJson + ": " + ec.message());
      std::string json = withConfig(memoryReportJson(*best), chosen);
      json.insert(json.find('{') + 1, "\n  \"max_seq_len\": " + std::to_string(lo) +
                                          ",\n  \"search_plans\": " +
                                          std::to_string(found.probes) + ",");
      os << json << "\n";
    }
    return 0;
  }

  MemoryConfig config = configs.front();
  if (chunkingAuto) {
    config = configs.back(); // when nothing fits, the budget check below says so
    for (const MemoryConfig &c : configs)
      if (fitsWith(importOptions, c)) {
        config = c;
        break;
      }
    outs() << "mini-sequence: " << describeConfig(config) << "\n";
  }

  mlir::MLIRContext context;
  WeightStore weights;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      importOnnxModel(context, *model, importOptions, weights, errors);
  if (!module)
    return report("importing " + inputFile);
  markDevice(*module);

  // From here on, diagnostics print as `file:node: severity: message`.
  mlir::ScopedDiagnosticHandler diagnostics(&context, [&](mlir::Diagnostic &diag) {
    const char *severity = diag.getSeverity() == mlir::DiagnosticSeverity::Error     ? "error"
                           : diag.getSeverity() == mlir::DiagnosticSeverity::Warning ? "warning"
                                                                                     : "note";
    errs() << inputFile << ":" << describeNode(diag.getLocation()) << ": " << severity << ": "
           << diag.str() << "\n";
    return mlir::success();
  });
  auto writeIr = [&](mlir::ModuleOp m) {
    std::string path = outputFile.empty() ? "-" : outputFile.getValue();
    std::error_code ec;
    raw_fd_ostream os(path, ec);
    if (ec)
      return fail(path + ": " + ec.message());
    m.print(os, mlir::OpPrintingFlags().elideLargeElementsAttrs(64));
    return 0;
  };
  if (emit == Stage::Import)
    return writeIr(*module);

  std::vector<std::string> frozenNames(freeze.begin(), freeze.end());
  mlir::PassManager pm(&context);
  addPipeline(pm, frozenNames, budget.value_or(0), config);
  if (failed(pm.run(*module)))
    return fail("compilation failed (see the errors above)");
  if (emit == Stage::Lc)
    return writeIr(*module);

  std::string out = outputFile;
  if (out.empty()) {
    size_t dot = inputFile.getValue().find_last_of('.');
    out = inputFile.getValue().substr(0, dot) + (emit == Stage::Executable ? "" : ".lcx");
  }
  std::string artifactPath = emit == Stage::Executable ? out + ".lcx.tmp" : out;
  ArtifactOptions artifactOptions;
  artifactOptions.source = inputFile;
  artifactOptions.mode = train ? "train" : "inference";
  artifactOptions.sourceModel = std::move(model->serialized);
  if (train) {
    artifactOptions.training.set("optimizer", optimizer.getValue());
    artifactOptions.training.set("lr", double(lr));
    artifactOptions.training.set("warmup", int64_t(warmup));
    artifactOptions.training.set("schedule", schedule.getValue());
    artifactOptions.training.set("min_lr_ratio", 0.1);
  }
  artifactOptions.planOnly = planOnly;
  if (device == "cuda")
    artifactOptions.cudaArchs = cudaArchs;
  auto writeReport = [&](const MemoryReport &r) -> int {
    if (reportJson.empty())
      return 0;
    std::error_code ec;
    raw_fd_ostream os(reportJson, ec);
    if (ec)
      return fail(reportJson + ": " + ec.message());
    os << withConfig(memoryReportJson(r), config) << "\n";
    return 0;
  };
  if (budget || planOnly) {
    // Check the plan before writing anything.
    Manifest planned;
    std::vector<uint8_t> data;
    if (failed(buildManifest(*module, weights, artifactOptions, planned, data)))
      return fail("compilation failed (see the errors above)");
    MemoryReport r = computeMemoryReport(planned);
    if (planOnly) {
      outs() << "plan: peak " << formatBytes(r.peakBytes) << " (weights " << formatBytes(r.weightBytes)
             << ", optimizer state " << formatBytes(r.stateBytes) << ", arena "
             << formatBytes(r.arenaBytes) << "), LOAD bound " << formatBytes(r.loadBytes) << "\n";
      if (int rc = writeReport(r))
        return rc;
    }
    if (budget && r.peakBytes > *budget) {
      std::string what;
      std::vector<std::pair<uint64_t, std::string>> parts;
      for (const auto &[category, bytes] : r.byCategory)
        parts.push_back({bytes, category});
      std::sort(parts.rbegin(), parts.rend());
      for (const auto &[bytes, category] : parts)
        if (bytes)
          what += (what.empty() ? "" : ", ") + category + " " + formatBytes(bytes);
      return fail("the step needs " + formatBytes(r.peakBytes) + " but --memory-budget is " +
                  formatBytes(*budget) + "; at its peak (" + r.peakOp + "): " + what);
    }
    if (planOnly)
      return 0;
  }
  Manifest manifest;
  if (failed(writeArtifactFile(*module, weights, artifactOptions, artifactPath, &manifest)))
    return fail("could not write " + artifactPath);
  if (int rc = writeReport(computeMemoryReport(manifest)))
    return rc;
  if (emit == Stage::Executable) {
    std::string self = sys::fs::getMainExecutable(argv[0], reinterpret_cast<void *>(&printVersion));
    SmallString<256> runner(sys::path::parent_path(self));
    sys::path::append(runner, "longctx-run");
    std::string error = embedArtifact(runner.str().str(), artifactPath, out);
    sys::fs::remove(artifactPath);
    if (!error.empty())
      return fail(error);
  }
  return 0;
}
