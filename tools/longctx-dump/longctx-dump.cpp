//===- longctx-dump.cpp - Shows what an artifact holds ---------------------===//
#include "runtime/Artifact.h"
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/MemoryReport.h"
#include "tools/common/StandardFlags.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <string>

using namespace longctx;

namespace {

constexpr const char *kHelp = R"(longctx-dump: shows what a longctx artifact (.lcx) holds

Usage: longctx-dump ARTIFACT.lcx [sections]

Sections (default: all of summary, tensors, schedule, ir):
  --summary     format version, producer, mode, arena and weight sizes
  --tensors     every tensor: kind, dtype, shape, offset
  --schedule    the kernel launches in execution order
  --ir          the `lc` IR the artifact was built from
  --memory      the memory report: peak, arena, LOAD bound, bytes by category
                and the largest buffers live at the peak, by the op making them
  --memory-plot FILE.svg
                draw live bytes over the schedule, stacked by category, with
                the LOAD bound and the arena marked
  --kernels     the generated device kernels (--device cuda artifacts): name,
                target architecture, the steps launching it, and its PTX
  --json        the raw manifest as JSON (instead of the sections)

General:
  --help, --version

Examples:
  longctx-dump model.lcx
  longctx-dump model.lcx --schedule
  longctx-dump model.lcx --json > manifest.json
  longctx-dump train.lcx --memory --memory-plot mem.svg
)";

std::string attrText(const AttrValue &value) {
  return std::visit(
      [](const auto &v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>)
          return std::to_string(v);
        else if constexpr (std::is_same_v<T, double>) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%g", v);
          return buf;
        } else if constexpr (std::is_same_v<T, std::string>)
          return "\"" + v + "\"";
        else {
          std::string s = "[";
          for (size_t i = 0; i < v.size(); ++i)
            s += (i ? ", " : "") + std::to_string(v[i]);
          return s + "]";
        }
      },
      value);
}

void printSummary(const Artifact &a) {
  const Manifest &m = a.manifest;
  uint64_t weights = 0, constants = 0;
  for (const TensorDesc &t : m.tensors)
    (t.kind == TensorKind::Weight ? weights : t.kind == TensorKind::Constant ? constants : weights) +=
        (t.kind == TensorKind::Weight || t.kind == TensorKind::Constant) ? t.bytes() : 0;
  std::cout << "artifact format version " << m.version << ", produced by " << m.producer << "\n"
            << "mode: " << m.mode << "\nsource: " << m.source << "\n"
            << "device: " << m.device;
  if (!m.kernels.empty())
    std::cout << " (" << m.kernels.size() << " generated kernels)";
  std::cout << "\n"
            << "tensors: " << m.tensors.size() << ", kernel launches: " << m.schedule.size() << "\n"
            << "arena: " << formatBytes(m.arenaBytes) << ", weights: " << formatBytes(weights)
            << ", constants: " << formatBytes(constants) << "\n";
  for (int64_t id : m.inputs)
    std::cout << "input  " << m.tensors[id].name << ": " << dtypeName(m.tensors[id].dtype) << " "
              << shapeToString(m.tensors[id].shape) << "\n";
  for (int64_t id : m.outputs)
    std::cout << "output " << m.tensors[id].name << ": " << dtypeName(m.tensors[id].dtype) << " "
              << shapeToString(m.tensors[id].shape) << "\n";
}

void printTensors(const Manifest &m) {
  std::cout << "\n# tensors (id kind dtype shape offset bytes name)\n";
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorDesc &t = m.tensors[i];
    std::printf("%5zu %-9s %-4s %-20s %12llu %12llu %s\n", i, tensorKindName(t.kind),
                dtypeName(t.dtype), shapeToString(t.shape).c_str(),
                (unsigned long long)t.offset, (unsigned long long)t.bytes(), t.name.c_str());
  }
}

void printKernels(const Manifest &m) {
  std::cout << "\n# Kernels (device " << m.device << ")\n";
  std::vector<std::string> missing = missingCudaKernels(m);
  std::cout << "cuda: ";
  if (missing.empty())
    std::cout << "every step has a CUDA kernel\n";
  for (size_t i = 0; i < missing.size(); ++i)
    std::cout << (i ? ", " : "no CUDA kernel for: ") << missing[i]
              << (i + 1 == missing.size() ? "\n" : "");
  if (m.kernels.empty())
    std::cout << "none: the artifact has no generated device kernels (compile with --device "
                 "cuda)\n";
  for (const DeviceKernel &k : m.kernels) {
    std::vector<size_t> steps;
    for (size_t i = 0; i < m.schedule.size(); ++i)
      if (m.schedule[i].attrs.getString("cuda_kernel") == k.name)
        steps.push_back(i);
    std::cout << "kernel " << k.name << " (" << k.arch << ", entry " << k.entry << ", "
              << k.ptx.size() << " bytes of PTX), launched by step";
    for (size_t i : steps)
      std::cout << " " << i;
    std::cout << "\n" << k.ptx << (k.ptx.empty() || k.ptx.back() == '\n' ? "" : "\n");
  }
}

void printSchedule(const Manifest &m) {
  std::cout << "\n# schedule (step: [group/worker] outputs = op(inputs) {attrs} workspace "
               "bytes from node; the workers of a parallel group run concurrently)\n";
  for (size_t i = 0; i < m.schedule.size(); ++i) {
    const StepDesc &s = m.schedule[i];
    std::string line = std::to_string(i) + ": ";
    if (s.group >= 0)
      line += "[" + std::to_string(s.group) + "/" + std::to_string(s.worker) + "] ";
    for (size_t j = 0; j < s.outputs.size(); ++j)
      line += (j ? ", %" : "%") + std::to_string(s.outputs[j]);
    line += " = " + s.op + "(";
    for (size_t j = 0; j < s.inputs.size(); ++j)
      line += (j ? ", %" : "%") + std::to_string(s.inputs[j]);
    line += ")";
    if (!s.attrs.values().empty()) {
      line += " {";
      bool first = true;
      for (const auto &[name, value] : s.attrs.values()) {
        line += (first ? "" : ", ") + name + " = " + attrText(value);
        first = false;
      }
      line += "}";
    }
    if (s.workspace >= 0)
      line += " workspace %" + std::to_string(s.workspace) + " " +
              formatBytes(m.tensors[size_t(s.workspace)].bytes());
    if (!s.location.empty())
      line += "  from '" + s.location + "'";
    std::cout << line << "\n";
  }
}

} // namespace

int main(int argc, char **argv) {
  if (answerHelpOrVersion(argc, argv, "longctx-dump", kHelp))
    return 0;
  std::string path;
  std::set<std::string> sections;
  std::string plotPath;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--memory-plot" || a.rfind("--memory-plot=", 0) == 0) {
      if (a == "--memory-plot" && i + 1 >= argc) {
        std::cerr << "longctx-dump: error: --memory-plot needs a file name\n";
        return 1;
      }
      plotPath = a == "--memory-plot" ? argv[++i] : a.substr(14);
      sections.insert("memory-plot");
    } else if (a == "--summary" || a == "--tensors" || a == "--schedule" || a == "--ir" || a == "--json" ||
        a == "--memory" || a == "--kernels")
      sections.insert(a.substr(2));
    else if (a.rfind("-", 0) == 0) {
      std::cerr << "longctx-dump: error: unknown option '" << a << "' (see --help)\n";
      return 1;
    } else if (path.empty())
      path = a;
    else {
      std::cerr << "longctx-dump: error: unexpected argument '" << a << "'\n";
      return 1;
    }
  }
  if (path.empty()) {
    std::cerr << "longctx-dump: error: no artifact given (see --help)\n";
    return 1;
  }
  Result<Artifact> artifact = readArtifact(path);
  if (!artifact) {
    std::cerr << "longctx-dump: error: " << artifact.status().message() << "\n";
    return 1;
  }
  if (sections.count("json")) {
    std::cout << manifestToJson(artifact->manifest, 2) << "\n";
    return 0;
  }
  if (!plotPath.empty()) {
    std::ofstream out(plotPath);
    out << memoryPlotSvg(computeMemoryReport(artifact->manifest), path);
    if (!out) {
      std::cerr << "longctx-dump: error: cannot write " << plotPath << "\n";
      return 1;
    }
    sections.erase("memory-plot");
    if (sections.empty())
      return 0; // only the plot was asked for
  }
  bool all = sections.empty();
  if (all || sections.count("summary"))
    printSummary(*artifact);
  if (sections.count("memory")) {
    MemoryReport r = computeMemoryReport(artifact->manifest);
    std::cout << "peak: " << formatBytes(r.peakBytes) << " (weights " << formatBytes(r.weightBytes)
              << " + constants " << formatBytes(r.constantBytes) << " + optimizer state "
              << formatBytes(r.stateBytes) << " + arena "
              << formatBytes(r.arenaBytes) << ")\n"
              << "arena: " << formatBytes(r.arenaBytes) << ", LOAD bound: " << formatBytes(r.loadBytes)
              << " (arena/LOAD " << (r.loadBytes ? double(r.arenaBytes) / double(r.loadBytes) : 1.0)
              << ")\n"
              << "at the peak (step " << r.peakStep << ", " << r.peakOp << "):\n";
    for (const auto &[category, bytes] : r.byCategory)
      std::cout << "  " << category << ": " << formatBytes(bytes) << "\n";
    std::cout << "largest live at the peak, by the op that made them:\n";
    for (const auto &[op, bytes] : r.byOp)
      std::cout << "  " << formatBytes(bytes) << "  " << op << "\n";
  }
  if (all || sections.count("tensors"))
    printTensors(artifact->manifest);
  if (all || sections.count("schedule"))
    printSchedule(artifact->manifest);
  if (sections.count("kernels"))
    printKernels(artifact->manifest);
  if (all || sections.count("ir"))
    std::cout << "\n# IR\n" << artifact->irText;
  return 0;
}
