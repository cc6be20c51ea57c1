//===- KernelFamilies.h - CPU kernel family registration (private) --------===//
//
// Each op family file appends its (name, kernel) pairs; KernelRegistry.cpp
// gathers them once into a sorted table.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/cpu/Kernels.h"

#include <string_view>
#include <vector>

namespace longctx {
namespace cpu {

struct KernelEntry {
  std::string_view name;
  KernelFn fn;
};
using KernelTable = std::vector<KernelEntry>;

void addElementwiseKernels(KernelTable &table);
void addMatMulKernels(KernelTable &table);
void addLayoutKernels(KernelTable &table);
void addReductionKernels(KernelTable &table);
void addNormalizationKernels(KernelTable &table);
void addSelectiveScanKernels(KernelTable &table);
void addCrossEntropyKernels(KernelTable &table);
void addOptimizerKernels(KernelTable &table);
void addAttentionKernels(KernelTable &table);
void addGatedMlpKernels(KernelTable &table);
void addFusedElementwiseKernels(KernelTable &table);

} // namespace cpu
} // namespace longctx
