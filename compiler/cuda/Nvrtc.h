//===- Nvrtc.h - CUDA C to PTX with NVRTC, loaded at run time ---*- C++ -*-===//
//
// The compiler generates fused kernels' PTX with NVRTC from the CUDA toolkit.
// The library is dlopen'ed, so longctx-compile runs (and compiles for the CPU)
// where the toolkit is absent; only --device cuda needs it.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Status.h"

#include <string>

namespace longctx {

/// PTX of `source` for `arch` ("sm_80", "sm_90", ...), or an error naming
/// the kernel with NVRTC's log.
Result<std::string> compileToPtx(const std::string &source, const std::string &name,
                                 const std::string &arch);

} // namespace longctx
