//===- Nvrtc.cpp - CUDA C to PTX with NVRTC, loaded at run time -----------===//
#include "compiler/cuda/Nvrtc.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace longctx {
namespace {

// The few NVRTC entry points used, declared here so that no toolkit header
// is needed to build (nvrtcResult is an enum, nvrtcProgram a pointer).
using Program = struct _nvrtcProgram *;
struct NvrtcApi {
  int (*createProgram)(Program *, const char *, const char *, int, const char *const *,
                       const char *const *) = nullptr;
  int (*compileProgram)(Program, int, const char *const *) = nullptr;
  int (*getPtxSize)(Program, size_t *) = nullptr;
  int (*getPtx)(Program, char *) = nullptr;
  int (*getLogSize)(Program, size_t *) = nullptr;
  int (*getLog)(Program, char *) = nullptr;
  int (*destroyProgram)(Program *) = nullptr;
  const char *(*errorString)(int) = nullptr;
  std::string error; // empty when loaded
};

const NvrtcApi &nvrtc() {
  static NvrtcApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char *env = std::getenv("LONGCTX_NVRTC"); env && *env)
      candidates.push_back(env);
    for (const char *name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so",
                             "/usr/local/cuda/lib64/libnvrtc.so"})
      candidates.push_back(name);
    std::string tried;
    for (const std::string &path : candidates) {
      void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        tried += (tried.empty() ? "" : ", ") + path;
        continue;
      }
      auto sym = [&](auto &fn, const char *symbol) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, symbol));
        return fn != nullptr;
      };
      if (sym(api.createProgram, "nvrtcCreateProgram") &&
          sym(api.compileProgram, "nvrtcCompileProgram") &&
          sym(api.getPtxSize, "nvrtcGetPTXSize") && sym(api.getPtx, "nvrtcGetPTX") &&
          sym(api.getLogSize, "nvrtcGetProgramLogSize") &&
          sym(api.getLog, "nvrtcGetProgramLog") &&
          sym(api.destroyProgram, "nvrtcDestroyProgram") &&
          sym(api.errorString, "nvrtcGetErrorString"))
        return;
      tried += (tried.empty() ? "" : ", ") + path + " (incomplete)";
      dlclose(handle);
    }
    api.error = "cannot load NVRTC (tried " + tried +
                "): install the CUDA toolkit or set LONGCTX_NVRTC to libnvrtc.so";
  });
  return api;
}

} // namespace

Result<std::string> compileToPtx(const std::string &source, const std::string &name,
                                 const std::string &arch) {
  const NvrtcApi &api = nvrtc();
  if (!api.error.empty())
    return Status::error("kernel '" + name + "': " + api.error);
  if (arch.rfind("sm_", 0) != 0 || arch.size() < 5)
    return Status::error("kernel '" + name + "': bad architecture '" + arch + "' (want sm_XY)");
  Program program = nullptr;
  const std::string file = name + ".cu";
  if (int r = api.createProgram(&program, source.c_str(), file.c_str(), 0, nullptr, nullptr))
    return Status::error("kernel '" + name + "': " + api.errorString(r));
  const std::string archOption = "--gpu-architecture=compute_" + arch.substr(3);
  const char *options[] = {archOption.c_str(), "--std=c++17", "-default-device"};
  int compiled = api.compileProgram(program, 3, options);
  std::string result;
  if (compiled != 0) {
    size_t size = 0;
    api.getLogSize(program, &size);
    std::string log(size, '\0');
    if (size)
      api.getLog(program, log.data());
    api.destroyProgram(&program);
    return Status::error("kernel '" + name + "' does not compile for " + arch + ": " +
                         api.errorString(compiled) + "\n" + log);
  }
  size_t size = 0;
  api.getPtxSize(program, &size);
  result.assign(size, '\0');
  api.getPtx(program, result.data());
  api.destroyProgram(&program);
  while (!result.empty() && result.back() == '\0')
    result.pop_back();
  return result;
}

} // namespace longctx
