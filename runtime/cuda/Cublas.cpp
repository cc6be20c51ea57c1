//===- Cublas.cpp - cuBLAS, loaded at run time -----------------------------===//
#include "runtime/cuda/Cublas.h"
#include "runtime/cuda/KernelWorkspace.h"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <string>

namespace longctx {
namespace cuda {
namespace {

struct Loaded {
  CublasApi api;
  std::string error; // empty when usable
};

template <typename Fn> bool resolve(void *lib, const char *name, Fn &fn) {
  fn = reinterpret_cast<Fn>(dlsym(lib, name));
  return fn != nullptr;
}

const Loaded &loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] {
    void *lib = nullptr;
    std::string tried;
    for (const char *name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib)
        break;
      tried += std::string(tried.empty() ? "" : ", ") + name;
    }
    if (!lib) {
      l.error = "cannot load cuBLAS (tried " + tried + ")";
      return;
    }
    CublasApi &a = l.api;
    if (!resolve(lib, "cublasCreate_v2", a.create) ||
        !resolve(lib, "cublasDestroy_v2", a.destroy) ||
        !resolve(lib, "cublasSetStream_v2", a.setStream) ||
        !resolve(lib, "cublasSetWorkspace_v2", a.setWorkspace) ||
        !resolve(lib, "cublasSgemm_v2", a.sgemm) || !resolve(lib, "cublasDgemm_v2", a.dgemm) ||
        !resolve(lib, "cublasSgemmStridedBatched", a.sgemmStridedBatched) ||
        !resolve(lib, "cublasDgemmStridedBatched", a.dgemmStridedBatched))
      l.error = "the loaded cuBLAS lacks an entry point longctx needs";
  });
  return l;
}

/// The handles made, one per stream that ran a GEMM, until releaseCublas.
std::mutex &handlesMutex() {
  static std::mutex mutex;
  return mutex;
}
std::map<cudaStream_t, cublasHandle_t> &handles() {
  static std::map<cudaStream_t, cublasHandle_t> map;
  return map;
}

} // namespace

Result<Cublas> cublasFor(const char *op, cudaStream_t stream, const DeviceWorkspace &workspace) {
  const Loaded &l = loaded();
  if (!l.error.empty())
    return Status::error(std::string(op) + ": " + l.error);
  const uint64_t needed = gemmWorkspace().bytes();
  if (!workspace.data || workspace.bytes < needed)
    return Status::error(std::string(op) + ": needs a workspace of " + std::to_string(needed) +
                         " bytes, the step has " + std::to_string(workspace.bytes) +
                         " (recompile the artifact with --device cuda)");
  std::lock_guard<std::mutex> lock(handlesMutex());
  cublasHandle_t &handle = handles()[stream];
  if (!handle) {
    if (l.api.create(&handle) != CUBLAS_STATUS_SUCCESS) {
      handle = nullptr;
      return Status::error(std::string(op) + ": cublasCreate failed (no GPU, or out of memory)");
    }
    if (Status s = cublasStatus(op, l.api.setStream(handle, stream)); !s) {
      l.api.destroy(handle); // not to be reused unbound
      handles().erase(stream);
      return s;
    }
  }
  if (Status s = cublasStatus(op, l.api.setWorkspace(handle, workspace.data, needed)); !s)
    return s;
  return Cublas{&l.api, handle};
}

void releaseCublas(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(handlesMutex());
  auto it = handles().find(stream);
  if (it == handles().end())
    return;
  if (it->second)
    loaded().api.destroy(it->second);
  handles().erase(it);
}

Status cublasStatus(const char *op, cublasStatus_t status) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status();
  return Status::error(std::string(op) + ": cuBLAS error " + std::to_string(int(status)));
}

} // namespace cuda
} // namespace longctx
