//===- CudaKernels.h - An artifact's generated CUDA kernels -----*- C++ -*-===//
#pragma once

#include "runtime/Artifact.h"
#include "runtime/Status.h"

#include <string>
#include <vector>

namespace longctx {

/// Generates PTX for every fused elementwise step of `manifest`, for each of
/// `archs` ("sm_80", "sm_90"): the kernels go into manifest.kernels, each
/// step names its kernel in `cuda_kernel`, and the device becomes "cuda".
Status addCudaKernels(Manifest &manifest, const std::vector<std::string> &archs);

} // namespace longctx
