//===- Artifact.h - The .lcx file: the compiler/runtime contract -----------===//
//
// One versioned file holds everything a run needs: a JSON manifest (tensors,
// the kernel schedule, the arena plan), the weights and constants, the IR the
// artifact was built from (for longctx-dump) and, later, device code. The
// layout is specified in docs/artifact-format.md; this file is its only
// reader and writer.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AttrMap.h"
#include "runtime/DType.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace longctx {

constexpr uint32_t kArtifactVersion = 1;
constexpr uint64_t kArenaAlignment = 256;
/// Weights, constants and optimizer state start at multiples of this.
constexpr uint64_t kDataAlignment = 64;

/// Weight: parameters (data section, updated in place by optimizer steps).
/// State: optimizer state (zero-initialised at load, persistent, in-place).
/// Workspace: a step's device scratch (runtime/cuda/KernelWorkspace.h), in
/// the arena for that step only; it is no step's input or output.
enum class TensorKind { Input, Output, Weight, Constant, Transient, State, Workspace };
const char *tensorKindName(TensorKind kind);

struct TensorDesc {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  TensorKind kind = TensorKind::Transient;
  /// Weight/Constant: offset in the data section; State: in the state block;
  /// others: offset in the arena.
  uint64_t offset = 0;
  uint64_t bytes() const { return uint64_t(numElements(shape)) * dtypeSize(dtype); }
};

/// One kernel launch: `op` reads `inputs` and writes `outputs` (tensor ids).
/// Workers of one parallel group, at most (an artifact is untrusted).
constexpr int64_t kMaxWorkers = 1024;

struct StepDesc {
  std::string op;
  std::vector<int64_t> inputs;
  std::vector<int64_t> outputs;
  AttrMap attrs;
  /// Where the step came from (the ONNX node name), for error messages.
  std::string location;
  /// A step of parallel group `group` (>= 0) runs on `worker`, concurrently
  /// with the group's other workers; the group's steps are contiguous.
  int64_t group = -1;
  int64_t worker = -1;
  /// The step's Workspace tensor (kernel scratch the CUDA backend plans),
  /// or -1.
  int64_t workspace = -1;
};

/// A device kernel the compiler generated (a fused elementwise chain), for
/// one GPU architecture: steps that launch it carry its name in their
/// `cuda_kernel` attribute.
struct DeviceKernel {
  std::string name;  // the step attribute's value, e.g. "lc_fused_3"
  std::string arch;  // e.g. "sm_90"
  std::string entry; // the PTX entry point
  std::string ptx;
};

struct Manifest {
  uint32_t version = kArtifactVersion;
  std::string producer;
  std::string mode;   // "inference" (training modes come with training)
  std::string source; // the model file compiled
  std::vector<TensorDesc> tensors;
  std::vector<int64_t> inputs;  // graph inputs, in order
  std::vector<int64_t> outputs; // graph outputs, in order
  std::vector<StepDesc> schedule;
  uint64_t arenaBytes = 0;
  /// Optimizer state, allocated zeroed at load and kept across steps.
  uint64_t stateBytes = 0;
  /// Training configuration the runtime applies (lr schedule); empty for
  /// inference artifacts. Keys: lr, warmup, schedule, min_lr_ratio.
  AttrMap training;
  /// The device the artifact was compiled for ("cpu" or "cuda"); a CUDA
  /// artifact runs on the CPU too.
  std::string device = "cpu";
  std::vector<DeviceKernel> kernels;
};

/// Kernels that update weights and optimizer state in place: their outputs
/// alias their first inputs, and only they may write Weight/State tensors.
bool isInPlaceUpdate(const std::string &op);

struct Artifact {
  Manifest manifest;
  /// Weights and constants, 64-byte aligned, addressed by TensorDesc::offset.
  std::shared_ptr<Tensor> data;
  std::string irText;
  /// The source ONNX model without the weights' data (binary ModelProto),
  /// for exporting trained weights; empty when not stored.
  std::string sourceModel;
};

/// Serialises the manifest (exposed for longctx-dump and tests).
std::string manifestToJson(const Manifest &manifest, int indent = -1);

/// Writes the artifact; `data` holds `dataBytes` bytes of the data section.
Status writeArtifact(const std::string &path, const Manifest &manifest,
                     const void *data, uint64_t dataBytes, const std::string &irText,
                     const std::string &sourceModel = {});

/// Reads and fully validates an artifact: magic, version, section bounds,
/// checksums, and every tensor, offset and step of the manifest. Never
/// trusts a size before checking it against the file.
Result<Artifact> readArtifact(const std::string &path);

/// The same, for an artifact stored at [offset, offset + size) of a larger
/// file (a training binary carries its artifact after the executable).
Result<Artifact> readArtifactAt(const std::string &path, uint64_t offset, uint64_t size);

/// Executables made by `longctx-compile --emit=exe` end with this trailer:
/// the embedded artifact's offset and size, then the magic.
struct EmbeddedArtifact {
  uint64_t offset = 0, size = 0;
};
constexpr char kEmbeddedMagic[8] = {'L', 'C', 'X', 'E', 'M', 'B', 'E', 'D'};

/// Finds an artifact embedded in the executable `path`; nullopt if none.
std::optional<EmbeddedArtifact> findEmbeddedArtifact(const std::string &path);

} // namespace longctx
