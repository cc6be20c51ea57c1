//===- CudaKernels.cpp - An artifact's generated CUDA kernels -------------===//
#include "compiler/cuda/CudaKernels.h"
#include "compiler/cuda/FusedKernelSource.h"
#include "compiler/cuda/Nvrtc.h"

namespace longctx {

Status addCudaKernels(Manifest &manifest, const std::vector<std::string> &archs) {
  manifest.device = "cuda";
  int count = 0;
  for (StepDesc &step : manifest.schedule) {
    if (step.op != "fused_elementwise")
      continue;
    const std::string name = "lc_fused_" + std::to_string(count++);
    std::vector<bool> scalar;
    for (int64_t id : step.inputs)
      scalar.push_back(manifest.tensors[size_t(id)].shape.empty());
    const DType dtype = manifest.tensors[size_t(step.outputs.at(0))].dtype;
    Result<std::string> source =
        fusedKernelSource(name, step.attrs.getString("program"), scalar, dtype);
    if (!source)
      return Status::error(step.location + ": " + source.status().message());
    for (const std::string &arch : archs) {
      Result<std::string> ptx = compileToPtx(*source, name, arch);
      if (!ptx)
        return Status::error(step.location + ": " + ptx.status().message());
      manifest.kernels.push_back({name, arch, name, std::move(*ptx)});
    }
    step.attrs.set("cuda_kernel", name);
  }
  return Status();
}

} // namespace longctx
