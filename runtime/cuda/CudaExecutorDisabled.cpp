//===- CudaExecutorDisabled.cpp - The CUDA executor of a build without CUDA ===//
#include "runtime/cuda/CudaExecutor.h"

namespace longctx {

struct CudaExecutor::State {};

CudaExecutor::CudaExecutor() = default;
CudaExecutor::~CudaExecutor() = default;

Result<std::unique_ptr<CudaExecutor>> CudaExecutor::create(Artifact) {
  return Status::error("this longctx was built without CUDA: use --device cpu");
}

// Never called: no CudaExecutor exists in this build.
const Artifact &CudaExecutor::artifact() const { std::abort(); }
Status CudaExecutor::setInput(const std::string &, const TensorRef &) { return Status(); }
Status CudaExecutor::run() { return Status(); }
Result<TensorRef> CudaExecutor::read(int64_t) { return Status::error("no CUDA"); }
Status CudaExecutor::write(int64_t, const void *) { return Status(); }
uint64_t CudaExecutor::allocatedBytes() const { return 0; }
uint64_t CudaExecutor::plannedBytes() const { return 0; }
const std::string &CudaExecutor::deviceName() const { std::abort(); }

} // namespace longctx
