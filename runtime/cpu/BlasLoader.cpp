//===- BlasLoader.cpp - Loading BLAS at run time ---------------------------===//
#include "runtime/cpu/Blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace longctx {
namespace cpu {
namespace {

struct LoadedBlas {
  BlasApi api;
  std::string error; // empty when loaded
};

/// Opens `path` and resolves the entry points; says why not in `why`.
bool tryLoad(const std::string &path, BlasApi &api, std::string &why) {
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *e = dlerror();
    why = e ? e : "cannot open";
    if (why.rfind(path + ": ", 0) == 0) // dlerror repeats the path
      why.erase(0, path.size() + 2);
    return false;
  }
  api.sgemm = reinterpret_cast<decltype(api.sgemm)>(dlsym(handle, "cblas_sgemm"));
  api.dgemm = reinterpret_cast<decltype(api.dgemm)>(dlsym(handle, "cblas_dgemm"));
  api.getNumThreads =
      reinterpret_cast<decltype(api.getNumThreads)>(dlsym(handle, "openblas_get_num_threads"));
  api.setNumThreads =
      reinterpret_cast<decltype(api.setNumThreads)>(dlsym(handle, "openblas_set_num_threads"));
  if (!api.sgemm || !api.dgemm) {
    why = "it has no cblas_sgemm/cblas_dgemm";
    dlclose(handle);
    api = BlasApi();
    return false;
  }
  return true; // stays loaded for the process's life
}

const LoadedBlas &loaded() {
  static LoadedBlas blas;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char *env = std::getenv("LONGCTX_BLAS"); env && *env) {
      candidates.push_back(env);
    } else {
#ifdef LONGCTX_OPENBLAS_PATH
      candidates.push_back(LONGCTX_OPENBLAS_PATH);
#endif
      candidates.push_back("libopenblas.so.0");
    }
    std::string tried;
    for (const std::string &path : candidates) {
      std::string why;
      if (tryLoad(path, blas.api, why))
        return;
      tried += (tried.empty() ? "" : "; ") + path + ": " + why;
    }
    blas.error = "cannot load BLAS (" + tried +
                 "): install libopenblas0-openmp, or set LONGCTX_BLAS to a libopenblas.so";
  });
  return blas;
}

} // namespace

Status loadBlas(const char *op) {
  const LoadedBlas &blas = loaded();
  if (blas.error.empty())
    return Status();
  return Status::error(std::string(op) + ": " + blas.error);
}

const BlasApi &blasApi() { return loaded().api; }

} // namespace cpu
} // namespace longctx
