//===- Cublas.cpp - cuBLAS, loaded at run time -----------------------------===//
#include "runtime/cuda/Cublas.h"

#include <dlfcn.h>

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
        !resolve(lib, "cublasSetStream_v2", a.setStream) ||
        !resolve(lib, "cublasSetWorkspace_v2", a.setWorkspace) ||
        !resolve(lib, "cublasSgemm_v2", a.sgemm) || !resolve(lib, "cublasDgemm_v2", a.dgemm) ||
        !resolve(lib, "cublasSgemmStridedBatched", a.sgemmStridedBatched) ||
        !resolve(lib, "cublasDgemmStridedBatched", a.dgemmStridedBatched)) {
      l.error = "the loaded cuBLAS lacks an entry point longctx needs";
      return;
    }
    if (a.create(&a.handle) != CUBLAS_STATUS_SUCCESS) {
      l.error = "cublasCreate failed (no GPU, or out of memory)";
      return;
    }
    void *workspace = nullptr;
    if (cudaMalloc(&workspace, kCublasWorkspaceBytes) != cudaSuccess ||
        a.setWorkspace(a.handle, workspace, kCublasWorkspaceBytes) != CUBLAS_STATUS_SUCCESS)
      l.error = "cannot give cuBLAS its " + std::to_string(kCublasWorkspaceBytes >> 20) +
                " MiB workspace";
  });
  return l;
}

} // namespace

Result<const CublasApi *> cublasFor(const char *op, cudaStream_t stream) {
  const Loaded &l = loaded();
  if (!l.error.empty())
    return Status::error(std::string(op) + ": " + l.error);
  if (Status s = cublasStatus(op, l.api.setStream(l.api.handle, stream)); !s)
    return s;
  return &l.api;
}

Status cublasStatus(const char *op, cublasStatus_t status) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status();
  return Status::error(std::string(op) + ": cuBLAS error " + std::to_string(int(status)));
}

} // namespace cuda
} // namespace longctx
