//===- ArtifactBuilder.h - `lc` function -> .lcx artifact -------*- C++ -*-===//
#pragma once

#include "compiler/import/WeightStore.h"
#include "runtime/Artifact.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace longctx {

struct ArtifactOptions {
  std::string mode = "inference";
  std::string source; // the model file, recorded in the manifest
  /// Training configuration for the runtime (lr schedule), see Manifest.
  AttrMap training;
  /// The source ModelProto (binary); stored without the parameters' data.
  std::string sourceModel;
  /// Plan only: parameters need no data (shapes suffice), nothing is copied.
  bool planOnly = false;
  /// With architectures ("sm_90", ...), the artifact is for --device cuda:
  /// the generated kernels' PTX for each goes in (compiler/cuda).
  std::vector<std::string> cudaArchs;
};

/// Lowers `func.func @main` of `module` to the artifact's manifest: one
/// kernel launch per op in program order, tensors bound to weights,
/// constants or planned arena offsets. Large splat constants become `fill`
/// launches instead of data. Fails (with a diagnostic on the op) when an op
/// has no runtime kernel or a parameter has no data.
mlir::LogicalResult buildManifest(mlir::ModuleOp module, const WeightStore &weights,
                                  const ArtifactOptions &options, Manifest &manifest,
                                  std::vector<uint8_t> &data);

/// buildManifest, then writes the artifact (with the module's IR) to `path`;
/// the manifest is also returned through `manifestOut` when given.
mlir::LogicalResult writeArtifactFile(mlir::ModuleOp module, const WeightStore &weights,
                                      const ArtifactOptions &options, const std::string &path,
                                      Manifest *manifestOut = nullptr);

} // namespace longctx
