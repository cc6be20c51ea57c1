//===- CudaExecutorDisabled.cpp - The CUDA executor of a build without CUDA ===//
#include "runtime/cuda/CudaExecutor.h"

#include <algorithm>
#include <cstdlib>

namespace longctx {

std::vector<std::string> missingCudaKernels(const Manifest &manifest, int) {
  std::vector<std::string> all;
  for (const StepDesc &step : manifest.schedule)
    all.push_back(step.op);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all; // no kernel at all in this build
}

struct CudaExecutor::State {};

CudaExecutor::CudaExecutor() = default;
CudaExecutor::~CudaExecutor() = default;

Result<std::unique_ptr<CudaExecutor>> CudaExecutor::create(Artifact, CudaOptions) {
  return Status::error("this longctx was built without CUDA: use --device cpu");
}

// Never called: no CudaExecutor exists in this build.
const Artifact &CudaExecutor::artifact() const { std::abort(); }
Status CudaExecutor::setInput(const std::string &, const TensorRef &) { return Status(); }
Status CudaExecutor::run() { return Status(); }
Result<TensorRef> CudaExecutor::read(int64_t) { return Status::error("no CUDA"); }
Status CudaExecutor::write(int64_t, const void *) { return Status(); }
uint64_t CudaExecutor::allocatedBytes() const { return 0; }
uint64_t CudaExecutor::measuredBytes() const { return 0; }
uint64_t CudaExecutor::runtimeOverheadBytes() const { return 0; }
const std::string &CudaExecutor::deviceName() const { std::abort(); }
const std::string &CudaExecutor::graphFallbackReason() const { std::abort(); }

} // namespace longctx
