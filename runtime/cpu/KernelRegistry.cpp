//===- KernelRegistry.cpp - Name to CPU kernel lookup ---------------------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/Kernels.h"

#include <algorithm>

namespace longctx {

namespace {

/// Built once (thread-safe static init), sorted for binary search.
const cpu::KernelTable &kernelTable() {
  static const cpu::KernelTable table = [] {
    cpu::KernelTable t;
    cpu::addElementwiseKernels(t);
    cpu::addMatMulKernels(t);
    cpu::addLayoutKernels(t);
    cpu::addReductionKernels(t);
    cpu::addNormalizationKernels(t);
    cpu::addSelectiveScanKernels(t);
    cpu::addCrossEntropyKernels(t);
    cpu::addOptimizerKernels(t);
    cpu::addAttentionKernels(t);
    cpu::addGatedMlpKernels(t);
    cpu::addFusedElementwiseKernels(t);
    std::sort(t.begin(), t.end(),
              [](const cpu::KernelEntry &a, const cpu::KernelEntry &b) {
                return a.name < b.name;
              });
    return t;
  }();
  return table;
}

} // namespace

KernelFn lookupCpuKernel(std::string_view op) {
  const cpu::KernelTable &table = kernelTable();
  auto it =
      std::lower_bound(table.begin(), table.end(), op,
                       [](const cpu::KernelEntry &e, std::string_view name) {
                         return e.name < name;
                       });
  if (it == table.end() || it->name != op)
    return nullptr;
  return it->fn;
}

bool cpuKernelAllowsInPlace(std::string_view op) {
  // Elementwise kernels: out[i] depends on in[i] (an operand with as many
  // elements as the output is not broadcast); reshape and identity copy.
  static constexpr std::string_view kInPlace[] = {
      "abs",  "add",     "cos",     "div", "erf",     "exp",  "identity", "log",
      "max",  "min",     "mul",     "neg", "pow",     "reciprocal",       "relu",
      "reshape", "sigmoid", "sin", "softplus", "sqrt", "sub", "tanh", "where"};
  return std::find(std::begin(kInPlace), std::end(kInPlace), op) != std::end(kInPlace);
}

std::vector<std::string> cpuKernelNames() {
  std::vector<std::string> names;
  for (const cpu::KernelEntry &e : kernelTable())
    names.emplace_back(e.name);
  return names;
}

Status runCpuKernel(std::string_view op, const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs) {
  KernelFn fn = lookupCpuKernel(op);
  if (!fn)
    return Status::error("no CPU kernel for op '" + std::string(op) + "'");
  return fn(inputs, outputs, attrs);
}

} // namespace longctx
