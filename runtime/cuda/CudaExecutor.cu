//===- CudaExecutor.cu - Runs an artifact's schedule on a GPU --------------===//
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/cuda/Cublas.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/KernelWorkspace.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

namespace longctx {
namespace {

Status cudaCheck(cudaError_t err, const std::string &what) {
  if (err == cudaSuccess)
    return Status();
  return Status::error(what + ": " + cudaGetErrorString(err));
}

/// "sm_90" -> 90; 0 when malformed.
int archNumber(const std::string &arch) {
  return arch.rfind("sm_", 0) == 0 ? std::atoi(arch.c_str() + 3) : 0;
}

/// Launch size of a generated fused kernel (a 64-bit grid-stride loop).
constexpr unsigned kFusedThreads = 256;

/// The PTX of a fused step's kernel for the newest architecture at most
/// `arch` (PTX runs on its architecture and newer; 0: any), or null.
const DeviceKernel *bestPtx(const Manifest &m, const StepDesc &step, int arch) {
  const std::string name = step.attrs.getString("cuda_kernel");
  const DeviceKernel *best = nullptr;
  for (const DeviceKernel &k : m.kernels)
    if (k.name == name && (arch == 0 || archNumber(k.arch) <= arch) &&
        (!best || archNumber(k.arch) > archNumber(best->arch)))
      best = &k;
  return best;
}

} // namespace

std::vector<std::string> missingCudaKernels(const Manifest &m, int arch) {
  std::set<std::string> missing;
  for (const StepDesc &step : m.schedule) {
    if (step.op == "fused_elementwise") {
      if (step.attrs.getString("cuda_kernel").empty())
        missing.insert("fused_elementwise (compile with --device cuda)");
      else if (!bestPtx(m, step, arch))
        missing.insert("fused_elementwise (no PTX for sm_" + std::to_string(arch) +
                       " or older: compile with --cuda-arch sm_" + std::to_string(arch) + ")");
    } else if (!cuda::findCudaKernel(step.op)) {
      missing.insert(step.op);
    }
  }
  return std::vector<std::string>(missing.begin(), missing.end());
}

struct CudaExecutor::State {
  Artifact artifact;
  std::string deviceName;
  int arch = 0;
  void *arena = nullptr, *data = nullptr, *optimizerState = nullptr;
  std::vector<TensorRef> refs; // device memory
  struct Step {
    const cuda::CudaKernelEntry *kernel = nullptr;
    cudaKernel_t fused = nullptr; // a generated kernel (fused_elementwise)
    std::vector<TensorRef> inputs, outputs;
    DeviceWorkspace workspace; // the step's planned scratch, if any
  };
  std::vector<Step> steps;
  std::vector<ParallelGroup> groups;
  cudaStream_t main = nullptr;
  std::vector<cudaStream_t> workerStreams;
  cudaEvent_t fork = nullptr;
  std::vector<cudaEvent_t> joins;
  std::vector<cudaLibrary_t> libraries;
  std::vector<std::unique_ptr<Tensor>> mirrors; // host copies for read()
  std::vector<bool> fresh;                      // mirror matches the device
  size_t baselineUsed = 0;
  uint64_t peakUsed = 0;
  uint64_t buffersUsed = 0; // the planned buffers, by the driver's count
  bool syncEachStep = false; // LONGCTX_CUDA_SYNC=1: find the step that faults
  // CUDA graph (CudaOptions::graph): eager first run, then one capture.
  bool graph = false;
  int64_t eagerRuns = 0;
  bool capturing = false;
  cudaGraphExec_t graphExec = nullptr;
  std::string graphFallback; // why the step runs eagerly after all
  void *records = nullptr;       // kCheckRecordBytes per data-checking step
  int64_t recordCount = 0;
  std::vector<int64_t> recordOf; // per step: its record, or -1

  ~State() {
    cudaDeviceSynchronize(); // workers may still run code from the libraries
    if (graphExec)
      cudaGraphExecDestroy(graphExec);
    if (records)
      cudaFree(records);
    for (cudaStream_t s : workerStreams) {
      cuda::releaseCublas(s);
      cudaStreamDestroy(s);
    }
    for (cudaEvent_t e : joins)
      cudaEventDestroy(e);
    if (fork)
      cudaEventDestroy(fork);
    if (main) {
      cuda::releaseCublas(main);
      cudaStreamDestroy(main);
    }
    for (cudaLibrary_t lib : libraries)
      cudaLibraryUnload(lib);
    for (void *p : {arena, data, optimizerState})
      if (p)
        cudaFree(p);
  }

  Status launch(size_t i, cudaStream_t stream) {
    const StepDesc &desc = artifact.manifest.schedule[i];
    const Step &step = steps[i];
    Status s;
    if (step.fused) {
      std::vector<void *> pointers;
      for (const TensorRef &t : step.inputs)
        pointers.push_back(t.data);
      pointers.push_back(step.outputs[0].data);
      long long n = step.outputs[0].numElements();
      std::vector<void *> args;
      for (void *&p : pointers)
        args.push_back(&p);
      args.push_back(&n);
      const unsigned blocks =
          unsigned(std::clamp<long long>((n + kFusedThreads - 1) / kFusedThreads, 1, 65535 * 8));
      s = cudaCheck(cudaLaunchKernel(reinterpret_cast<const void *>(step.fused), dim3(blocks),
                                     dim3(kFusedThreads), args.data(), 0, stream),
                    "launch of " + desc.attrs.getString("cuda_kernel"));
    } else {
      DeviceWorkspace workspace = step.workspace;
      if (recordOf[i] >= 0 && (capturing || step.kernel->recordsAlways))
        workspace.record = static_cast<char *>(records) + recordOf[i] * kCheckRecordBytes;
      s = step.kernel->fn(step.inputs, step.outputs, desc.attrs, stream, workspace);
    }
    if (s && syncEachStep && !capturing)
      s = cudaCheck(cudaStreamSynchronize(stream), "after the step");
    if (!s)
      return Status::error("step " + std::to_string(i) + " (" + desc.op + " from '" +
                           desc.location + "'): " + s.message());
    return Status();
  }
};

CudaExecutor::CudaExecutor() : state_(std::make_unique<State>()) {}
CudaExecutor::~CudaExecutor() = default;

Result<std::unique_ptr<CudaExecutor>> CudaExecutor::create(Artifact artifact,
                                                           CudaOptions options) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    return Status::error("no CUDA device: use --device cpu (" + devices.whyNone + ")");
  std::unique_ptr<CudaExecutor> exec(new CudaExecutor());
  State &st = *exec->state_;
  st.artifact = std::move(artifact);
  const char *sync = std::getenv("LONGCTX_CUDA_SYNC");
  st.syncEachStep = sync && std::string(sync) == "1";
  st.graph = options.graph && !st.syncEachStep; // syncing after each step: eager
  const Manifest &m = st.artifact.manifest;
  if (Status s = cudaCheck(cudaSetDevice(0), "cudaSetDevice"); !s)
    return s;
  cudaDeviceProp prop{};
  if (Status s = cudaCheck(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties"); !s)
    return s;
  st.arch = prop.major * 10 + prop.minor;
  st.deviceName = std::string(prop.name) + " (sm_" + std::to_string(st.arch) + ")";

  // Every step's kernel, or all that are missing at once.
  auto fusedKernel = [&](const StepDesc &step) { return bestPtx(m, step, st.arch); };
  std::vector<std::string> missing = missingCudaKernels(m, st.arch);
  if (!missing.empty()) {
    std::string list;
    for (const std::string &op : missing)
      list += (list.empty() ? "" : ", ") + op;
    return Status::error("the CUDA backend has no kernel yet for: " + list + "; use --device cpu");
  }

  size_t freeBytes = 0, totalBytes = 0;
  if (Status s = cudaCheck(cudaMemGetInfo(&freeBytes, &totalBytes), "cudaMemGetInfo"); !s)
    return s;
  st.baselineUsed = totalBytes - freeBytes;
  const uint64_t dataBytes = uint64_t(st.artifact.data->bytes());
  auto allocate = [&](void **p, uint64_t bytes, const char *what) {
    return cudaCheck(cudaMalloc(p, std::max<uint64_t>(bytes, 1)),
                     std::string("cannot allocate the ") + std::to_string(bytes) + "-byte " + what +
                         " on " + st.deviceName);
  };
  if (Status s = allocate(&st.arena, m.arenaBytes, "arena"); !s)
    return s;
  if (Status s = allocate(&st.data, dataBytes, "weights"); !s)
    return s;
  if (Status s = allocate(&st.optimizerState, m.stateBytes, "optimizer state"); !s)
    return s;
  // Everything below is ordered on the schedule's stream (non-blocking: the
  // legacy default stream would not order against it), then waited for.
  if (Status s = cudaCheck(cudaStreamCreateWithFlags(&st.main, cudaStreamNonBlocking),
                           "cudaStreamCreate");
      !s)
    return s;
  if (Status s = cudaCheck(cudaMemcpyAsync(st.data, st.artifact.data->data(), dataBytes,
                                           cudaMemcpyHostToDevice, st.main),
                           "uploading the weights");
      !s)
    return s;
  if (Status s = cudaCheck(cudaMemsetAsync(st.optimizerState, 0,
                                           std::max<uint64_t>(m.stateBytes, 1), st.main),
                           "zeroing the optimizer state");
      !s)
    return s;
  if (Status s = cudaCheck(cudaMemsetAsync(st.arena, 0, std::max<uint64_t>(m.arenaBytes, 1),
                                           st.main),
                           "zeroing the arena");
      !s)
    return s;
  if (Status s = cudaCheck(cudaStreamSynchronize(st.main), "uploading the weights"); !s)
    return s;
  if (cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess &&
      totalBytes - freeBytes > st.baselineUsed)
    st.buffersUsed = totalBytes - freeBytes - st.baselineUsed;
  for (const TensorDesc &t : m.tensors) {
    void *base = t.kind == TensorKind::Weight || t.kind == TensorKind::Constant ? st.data
                 : t.kind == TensorKind::State                                  ? st.optimizerState
                                                                                : st.arena;
    st.refs.push_back({t.dtype, t.shape, static_cast<uint8_t *>(base) + t.offset});
  }
  st.mirrors.resize(m.tensors.size());
  st.fresh.assign(m.tensors.size(), false);

  // Generated kernels: each library loaded once, from the PTX of the newest
  // architecture the device runs.
  std::map<std::string, cudaKernel_t> loaded;
  for (const StepDesc &step : m.schedule) {
    State::Step bound;
    for (int64_t id : step.inputs)
      bound.inputs.push_back(st.refs[size_t(id)]);
    for (int64_t id : step.outputs)
      bound.outputs.push_back(st.refs[size_t(id)]);
    if (step.workspace >= 0) {
      const TensorRef &scratch = st.refs[size_t(step.workspace)];
      bound.workspace = {scratch.data, scratch.bytes()};
    }
    if (step.op == "fused_elementwise") {
      const DeviceKernel *k = fusedKernel(step);
      auto it = loaded.find(k->name);
      if (it == loaded.end()) {
        cudaLibrary_t lib = nullptr;
        if (Status s = cudaCheck(cudaLibraryLoadData(&lib, k->ptx.c_str(), nullptr, nullptr, 0,
                                                     nullptr, nullptr, 0),
                                 "loading the PTX of " + k->name + " (" + k->arch + ")");
            !s)
          return s;
        st.libraries.push_back(lib);
        cudaKernel_t kernel = nullptr;
        if (Status s = cudaCheck(cudaLibraryGetKernel(&kernel, lib, k->entry.c_str()),
                                 "finding " + k->entry + " in its PTX");
            !s)
          return s;
        it = loaded.emplace(k->name, kernel).first;
      }
      bound.fused = it->second;
      // The PTX reads each input as a full tensor of n elements or a scalar:
      // an untrusted artifact must not make it read out of bounds.
      if (bound.outputs.size() != 1 ||
          (bound.outputs[0].dtype != DType::F32 && bound.outputs[0].dtype != DType::F64))
        return Status::error("fused step " + k->name + " must have one f32 or f64 output");
      for (const TensorRef &in : bound.inputs)
        if (in.dtype != bound.outputs[0].dtype ||
            (in.numElements() != bound.outputs[0].numElements() && in.rank() != 0))
          return Status::error("fused step " + k->name + ": an input of " + dtypeName(in.dtype) +
                               " " + shapeToString(in.shape) + " does not fit its output " +
                               shapeToString(bound.outputs[0].shape));
    } else {
      bound.kernel = cuda::findCudaKernel(step.op);
      // Scratch the artifact does not plan would fail mid-step: say so now.
      const uint64_t needed = cuda::cudaWorkspaceBytes(step.op, bound.inputs, bound.outputs,
                                                       step.attrs);
      if (needed > bound.workspace.bytes)
        return Status::error("step " + std::to_string(st.steps.size()) + " (" + step.op +
                             " from '" + step.location + "') needs a workspace of " +
                             std::to_string(needed) + " bytes, the artifact plans " +
                             std::to_string(bound.workspace.bytes) +
                             ": compile it with --device cuda");
    }
    st.steps.push_back(std::move(bound));
  }

  // A record for each step that checks data on the device, for the checks
  // read after the step (captured steps; kernels that always defer them).
  for (const State::Step &step : st.steps) {
    const bool defers = step.kernel && step.kernel->checkRecord &&
                        (st.graph || step.kernel->recordsAlways);
    st.recordOf.push_back(defers ? st.recordCount++ : -1);
  }
  if (st.recordCount > 0)
    if (Status s = allocate(&st.records, uint64_t(st.recordCount) * kCheckRecordBytes,
                            "check records");
        !s)
      return s;

  // Streams: the schedule's (made above), one per worker of the widest group.
  st.groups = parallelGroups(m);
  size_t widest = 0;
  for (const ParallelGroup &g : st.groups)
    widest = std::max(widest, g.workers.size());
  if (widest) {
    if (Status s = cudaCheck(cudaEventCreateWithFlags(&st.fork, cudaEventDisableTiming),
                             "cudaEventCreate");
        !s)
      return s;
    st.workerStreams.resize(widest);
    st.joins.resize(widest);
    for (size_t w = 0; w < widest; ++w) {
      if (Status s = cudaCheck(cudaStreamCreateWithFlags(&st.workerStreams[w],
                                                         cudaStreamNonBlocking),
                               "cudaStreamCreate");
          !s)
        return s;
      if (Status s = cudaCheck(cudaEventCreateWithFlags(&st.joins[w], cudaEventDisableTiming),
                               "cudaEventCreate");
          !s)
        return s;
    }
  }
  return Result<std::unique_ptr<CudaExecutor>>(std::move(exec));
}

const Artifact &CudaExecutor::artifact() const { return state_->artifact; }

const std::string &CudaExecutor::deviceName() const { return state_->deviceName; }

Status CudaExecutor::setInput(const std::string &name, const TensorRef &value) {
  Result<int64_t> id = inputFor(name, value);
  if (!id)
    return id.status();
  return write(*id, value.data);
}

Status CudaExecutor::run() {
  State &st = *state_;
  const Manifest &m = manifest();
  std::fill(st.fresh.begin(), st.fresh.end(), false);
  const bool replay = st.graph && st.eagerRuns > 0 && !profiling_;
  Status s = replay ? runGraph() : enqueueSteps();
  if (s)
    s = cudaCheck(cudaStreamSynchronize(st.main),
                  "the step failed on the device (rerun with LONGCTX_CUDA_SYNC=1 to find the "
                  "kernel)");
  if (!s) {
    cudaDeviceSynchronize(); // a failure may leave workers running
    return s;
  }
  if (!st.graphExec)
    ++st.eagerRuns;
  // The checks left for after the step, in step order: every one after a
  // replay, those of kernels that always defer after an eager run. The step
  // ran to its end: later steps ran without what the failing one skipped.
  if (st.recordCount > 0) {
    std::vector<unsigned char> records(uint64_t(st.recordCount) * kCheckRecordBytes);
    if (Status c = cudaCheck(cudaMemcpy(records.data(), st.records, records.size(),
                                        cudaMemcpyDeviceToHost),
                             "reading the step's checks");
        !c)
      return c;
    for (size_t i = 0; i < st.recordOf.size(); ++i) {
      if (st.recordOf[i] < 0 || !(replay || st.steps[i].kernel->recordsAlways))
        continue;
      const StepDesc &desc = m.schedule[i];
      if (Status c = cudaCheckRecord(desc.op, records.data() + st.recordOf[i] * kCheckRecordBytes,
                                     st.steps[i].inputs, st.steps[i].outputs, desc.attrs);
          !c)
        return Status::error("step " + std::to_string(i) + " (" + desc.op + " from '" +
                             desc.location + "'): " + c.message() +
                             " (checked after the step ran to its end)");
    }
  }
  size_t freeBytes = 0, totalBytes = 0;
  if (cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess &&
      totalBytes - freeBytes > st.baselineUsed) // others may have freed memory since
    st.peakUsed = std::max<uint64_t>(st.peakUsed, totalBytes - freeBytes - st.baselineUsed);
  return Status();
}

Status CudaExecutor::enqueueSteps() {
  State &st = *state_;
  const Manifest &m = manifest();
  auto timed = [&](size_t i, cudaStream_t stream) -> Status {
    if (!profiling_)
      return st.launch(i, stream);
    auto start = std::chrono::steady_clock::now();
    Status s = st.launch(i, stream);
    if (s)
      s = cudaCheck(cudaStreamSynchronize(stream), "profiling sync");
    auto &[seconds, launches] = profile_[m.schedule[i].op];
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++launches;
    return s;
  };
  if (st.recordCount > 0) // the checks left for after the step start clear
    if (Status s = cudaCheck(cudaMemsetAsync(st.records, 0,
                                             uint64_t(st.recordCount) * kCheckRecordBytes, st.main),
                             "clearing the step's checks");
        !s)
      return s;
  auto group = st.groups.begin();
  for (size_t i = 0; i < st.steps.size();) {
    if (group != st.groups.end() && group->begin == i) {
      // Workers fork from the schedule's stream and join back into it, also
      // when one fails (a capture must end with every stream joined).
      if (Status s = cudaCheck(cudaEventRecord(st.fork, st.main), "fork"); !s)
        return s;
      Status workers; // the first failure, after which the rest is skipped
      for (size_t w = 0; w < group->workers.size(); ++w) {
        cudaStream_t stream = st.workerStreams[w];
        if (Status s = cudaCheck(cudaStreamWaitEvent(stream, st.fork, 0), "fork"); !s)
          return s;
        for (size_t step : group->workers[w])
          if (workers)
            workers = timed(step, stream);
        if (Status s = cudaCheck(cudaEventRecord(st.joins[w], stream), "join"); !s)
          return s;
        if (Status s = cudaCheck(cudaStreamWaitEvent(st.main, st.joins[w], 0), "join"); !s)
          return s;
      }
      if (!workers)
        return workers;
      i = group->end;
      ++group;
      continue;
    }
    if (Status s = timed(i++, st.main); !s)
      return s;
  }
  return Status();
}

Status CudaExecutor::runGraph() {
  State &st = *state_;
  if (!st.graphExec) {
    // Capture once: the kernels' host code runs now, their launches (and
    // the workers' fork/join) become the graph's nodes.
    if (Status s = cudaCheck(cudaStreamBeginCapture(st.main, cudaStreamCaptureModeThreadLocal),
                             "starting the step's CUDA graph capture");
        !s)
      return s;
    st.capturing = true;
    Status s = enqueueSteps();
    st.capturing = false;
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(st.main, &graph);
    if (s)
      s = cudaCheck(ended, "capturing the step as a CUDA graph");
    if (s)
      s = cudaCheck(cudaGraphInstantiate(&st.graphExec, graph, 0),
                    "instantiating the step's CUDA graph");
    if (graph)
      cudaGraphDestroy(graph);
    if (!s) {
      // Run eagerly from now on: clear the capture's error so no later
      // launch is blamed for it, and run this step the eager way.
      cudaGetLastError();
      if (st.graphExec)
        cudaGraphExecDestroy(st.graphExec);
      st.graphExec = nullptr;
      st.graph = false;
      st.graphFallback = s.message();
      return enqueueSteps();
    }
  }
  return cudaCheck(cudaGraphLaunch(st.graphExec, st.main), "launching the step's CUDA graph");
}

const std::string &CudaExecutor::graphFallbackReason() const { return state_->graphFallback; }

Result<TensorRef> CudaExecutor::read(int64_t id) {
  State &st = *state_;
  if (id < 0 || size_t(id) >= st.refs.size())
    return Status::error("no tensor " + std::to_string(id));
  const TensorRef &device = st.refs[size_t(id)];
  std::unique_ptr<Tensor> &mirror = st.mirrors[size_t(id)];
  if (!mirror)
    mirror = std::make_unique<Tensor>(device.dtype, device.shape);
  if (!st.fresh[size_t(id)]) {
    if (Status s = cudaCheck(cudaMemcpyAsync(mirror->data(), device.data, device.bytes(),
                                             cudaMemcpyDeviceToHost, st.main),
                             "reading '" + manifest().tensors[size_t(id)].name + "'");
        !s)
      return s;
    if (Status s = cudaCheck(cudaStreamSynchronize(st.main), "reading"); !s)
      return s;
    st.fresh[size_t(id)] = true;
  }
  return mirror->ref();
}

Status CudaExecutor::write(int64_t id, const void *host) {
  State &st = *state_;
  if (id < 0 || size_t(id) >= st.refs.size())
    return Status::error("no tensor " + std::to_string(id));
  // Tensors may share arena bytes: every host copy is stale after a write.
  std::fill(st.fresh.begin(), st.fresh.end(), false);
  // Ordered on the schedule's stream; waited for, as `host` may go away.
  if (Status s = cudaCheck(cudaMemcpyAsync(st.refs[size_t(id)].data, host,
                                           st.refs[size_t(id)].bytes(), cudaMemcpyHostToDevice,
                                           st.main),
                           "writing '" + manifest().tensors[size_t(id)].name + "'");
      !s)
    return s;
  return cudaCheck(cudaStreamSynchronize(st.main), "writing");
}

uint64_t CudaExecutor::allocatedBytes() const {
  return state_->peakUsed > 0 ? state_->peakUsed : plannedBytes(); // measured once run
}

uint64_t CudaExecutor::measuredBytes() const { return state_->peakUsed; }

uint64_t CudaExecutor::runtimeOverheadBytes() const {
  return state_->peakUsed > state_->buffersUsed ? state_->peakUsed - state_->buffersUsed : 0;
}


} // namespace longctx
