//===- CrossEntropy.cu - Token cross-entropy and its gradient on CUDA ------===//
//
// The CPU twins' shapes and attributes (cpu/OperandChecks.h), one block per
// row: the row's max and sum of exponentials in double (blockMax,
// blockSum), then the loss term or the gradient. Labels are resolved on the
// device; the lowest position whose label is outside [0, V) is recorded and
// the launch fails naming it, as the CPU does. The mean's count is counted
// on the device too.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#include "runtime/cuda/kernels/CudaKernelUtil.cuh"

#include <cstring>

namespace longctx {
namespace cuda {
namespace {

using cpu::CrossEntropyShape;
using cpu::CrossEntropyStep;

constexpr unsigned long long kNoBadLabel = ~0ull;

/// Device scratch of one launch: the summed loss, the counted rows, the
/// lowest position (in targets) of a label out of range.
struct Scratch {
  double total;
  unsigned long long count;
  unsigned long long bad;
};

/// Row r's label, or -1 when the row is not counted.
template <typename I>
__device__ inline int64_t labelOf(const I *targets, int64_t r, const CrossEntropyShape &s,
                                  unsigned long long *bad) {
  if (s.shift && r % s.seqLen == s.seqLen - 1)
    return -1; // the last position of a sequence predicts nothing
  const int64_t t = int64_t(targets[r + s.shift]);
  if (t == s.ignoreIndex)
    return -1;
  if (t < 0 || t >= s.vocab) {
    atomicMin(bad, static_cast<unsigned long long>(r + s.shift));
    return -1;
  }
  return t;
}

/// max and sum of exp(x - max) of a row, every thread of the block.
template <typename T>
__device__ inline void rowStats(const T *row, int64_t v, double &max, double &sum) {
  double m = -INFINITY;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x)
    m = fmax(m, double(row[i]));
  max = blockMax(m);
  double s = 0;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x)
    s += exp(double(row[i]) - max);
  sum = blockSum(s);
}

template <typename T, typename I>
__global__ void countRows(const I *targets, CrossEntropyShape s, Scratch *scratch) {
  for (int64_t r = globalIndex(); r < s.rows; r += globalStride())
    if (labelOf(targets, r, s, &scratch->bad) >= 0)
      atomicAdd(&scratch->count, 1ull);
}

/// Loss terms (Loss) and/or gradient rows (dx non-null) scaled by
/// `dloss` (rank 0 on the device, or 1 when null) over the count (or not,
/// with `sum`).
template <typename T, typename I>
__global__ void rowsKernel(const T *logits, const I *targets, CrossEntropyShape s,
                           Scratch *scratch, bool loss, T *dx, const void *dloss, int dlossType,
                           bool sum) {
  double scale = 0;
  if (dx) {
    const double d = dloss ? readScalar(dloss, dlossType) : 1.0;
    scale = sum ? d : scratch->count ? d / double(scratch->count) : 0.0;
  }
  for (int64_t r = blockIdx.x; r < s.rows; r += gridDim.x) {
    const int64_t label = labelOf(targets, r, s, &scratch->bad); // the same for the block
    const T *row = logits + r * s.vocab;
    T *out = dx ? dx + r * s.vocab : nullptr;
    if (label < 0) {
      if (out)
        for (int64_t i = threadIdx.x; i < s.vocab; i += blockDim.x)
          out[i] = T(0);
      continue;
    }
    double max, total;
    rowStats(row, s.vocab, max, total);
    if (out)
      for (int64_t i = threadIdx.x; i < s.vocab; i += blockDim.x)
        out[i] = T((exp(double(row[i]) - max) / total - (i == label ? 1.0 : 0.0)) * scale);
    if (loss && threadIdx.x == 0) {
      atomicAdd(&scratch->total, max + log(total) - double(row[label]));
      if (!dx)
        atomicAdd(&scratch->count, 1ull);
    }
  }
}

template <typename T>
__global__ void finishLoss(const Scratch *scratch, T *loss, bool sum) {
  *loss = T(sum ? scratch->total
                : scratch->count ? scratch->total / double(scratch->count) : 0.0);
}

Status badLabelMessage(const char *op, int64_t label, unsigned long long position,
                       int64_t vocab) {
  return opError(op, "target " + std::to_string(label) + " at position " +
                         std::to_string(position) + " out of range for " +
                         std::to_string(vocab) + " classes");
}

/// The error for a label out of range at position `bad` of `targets`
/// (device memory: the label is read back), or OK for kNoBadLabel.
Status badLabelError(const char *op, const TensorRef &targets, unsigned long long bad,
                     int64_t vocab) {
  if (bad == kNoBadLabel)
    return Status();
  int64_t label = 0;
  const size_t width = dtypeSize(targets.dtype);
  int32_t narrow = 0;
  void *dst = width == 8 ? static_cast<void *>(&label) : static_cast<void *>(&narrow);
  if (cudaMemcpy(dst, static_cast<const char *>(targets.data) + bad * width, width,
                 cudaMemcpyDeviceToHost) != cudaSuccess)
    return launchStatus(op);
  if (width != 8)
    label = narrow;
  return badLabelMessage(op, label, bad, vocab);
}

__global__ void resetScratch(Scratch *scratch) { *scratch = Scratch{0.0, 0, kNoBadLabel}; }

/// A deferred check's record: the bad position + 1 (0: none) and its label,
/// read now (the targets may be overwritten by the time the step is done).
struct LabelRecord {
  unsigned long long positionPlusOne;
  long long label;
};

template <typename I>
__global__ void keepBadLabel(const Scratch *scratch, const I *targets, LabelRecord *record) {
  const unsigned long long bad = scratch->bad;
  *record = bad == kNoBadLabel ? LabelRecord{0, 0}
                               : LabelRecord{bad + 1, (long long)(targets[bad])};
}



/// Runs `launch(scratch)` with zeroed scratch (in `workspace`), then fails
/// naming the lowest position with a bad label and its label (the host
/// waits for the stream), or, given a record, leaves that position there
/// for after the step.
template <typename Launch>
Status withScratch(const char *op, const TensorRef &targets, int64_t vocab, cudaStream_t stream,
                   const Workspace &workspace, Launch &&launch) {
  static_assert(sizeof(Scratch) <= 24, "KernelWorkspace.cpp plans 24 bytes");
  static_assert(sizeof(LabelRecord) <= kCheckRecordBytes, "a record holds the position");
  Scratch *scratch = nullptr;
  if (Status s = carveWorkspace(op, workspace, crossEntropyWorkspace(), &scratch); !s)
    return s;
  resetScratch<<<1, 1, 0, stream>>>(scratch);
  Status s = launchStatus(op);
  if (s)
    s = launch(scratch);
  if (workspace.record) {
    if (!s)
      return s;
    dispatchIndex(targets.dtype, [&](auto tag) {
      using I = decltype(tag);
      keepBadLabel<I><<<1, 1, 0, stream>>>(scratch, targets.as<I>(),
                                           static_cast<LabelRecord *>(workspace.record));
    });
    return launchStatus(op);
  }
  unsigned long long bad = kNoBadLabel;
  if (s && cudaMemcpyAsync(&bad, &scratch->bad, sizeof bad, cudaMemcpyDeviceToHost, stream) !=
               cudaSuccess)
    s = launchStatus(op);
  if (cudaStreamSynchronize(stream) != cudaSuccess && s)
    s = launchStatus(op);
  return s ? badLabelError(op, targets, bad, vocab) : s;
}

unsigned rowBlocks(int64_t rows) {
  return unsigned(std::min<int64_t>(std::max<int64_t>(rows, 1), 65535));
}

template <typename Fn>
Status dispatchLabelled(const char *op, DType logits, DType targets, Fn &&fn) {
  return dispatchFloat(op, logits, [&](auto tag) {
    dispatchIndex(targets, [&](auto index) { fn(tag, index); });
  });
}

Status crossEntropy(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                    const AttrMap &attrs, cudaStream_t stream, Workspace workspace) {
  const char *op = "cross_entropy";
  CrossEntropyShape shape;
  if (Status s = cpu::resolveCrossEntropyOperands(op, CrossEntropyStep::Loss, inputs, outputs,
                                                  attrs, shape);
      !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1], &loss = outputs[0];
  const bool sum = attrs.getInt("reduction", 0) == 1;
  return withScratch(op, targets, shape.vocab, stream, workspace, [&](Scratch *scratch) {
    return dispatchLabelled(op, logits.dtype, targets.dtype, [&](auto t, auto i) {
      using T = decltype(t);
      using I = decltype(i);
      rowsKernel<T, I><<<rowBlocks(shape.rows), kThreads, 0, stream>>>(
          logits.as<T>(), targets.as<I>(), shape, scratch, true, nullptr, nullptr, 0, sum);
      finishLoss<T><<<1, 1, 0, stream>>>(scratch, loss.as<T>(), sum);
    });
  });
}

Status crossEntropyGrad(const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                        cudaStream_t stream, Workspace workspace) {
  const char *op = "cross_entropy_grad";
  CrossEntropyShape shape;
  if (Status s = cpu::resolveCrossEntropyOperands(op, CrossEntropyStep::Grad, inputs, outputs,
                                                  attrs, shape);
      !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1], &dloss = inputs[2],
                  &dx = outputs[0];
  const bool sum = attrs.getInt("reduction", 0) == 1;
  return withScratch(op, targets, shape.vocab, stream, workspace, [&](Scratch *scratch) {
    return dispatchLabelled(op, logits.dtype, targets.dtype, [&](auto t, auto i) {
      using T = decltype(t);
      using I = decltype(i);
      if (!sum)
        countRows<T, I><<<gridFor(shape.rows), kThreads, 0, stream>>>(targets.as<I>(), shape,
                                                                       scratch);
      rowsKernel<T, I><<<rowBlocks(shape.rows), kThreads, 0, stream>>>(
          logits.as<T>(), targets.as<I>(), shape, scratch, false, dx.as<T>(), dloss.data,
          int(dloss.dtype), sum);
    });
  });
}

/// The summed loss (no shift) and its gradient for dloss = 1.
Status crossEntropyAndGrad(const std::vector<TensorRef> &inputs,
                           const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                           cudaStream_t stream, Workspace workspace) {
  const char *op = "cross_entropy_and_grad";
  CrossEntropyShape shape;
  if (Status s = cpu::resolveCrossEntropyOperands(op, CrossEntropyStep::LossAndGrad, inputs,
                                                  outputs, attrs, shape);
      !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1], &loss = outputs[0],
                  &dx = outputs[1];
  return withScratch(op, targets, shape.vocab, stream, workspace, [&](Scratch *scratch) {
    return dispatchLabelled(op, logits.dtype, targets.dtype, [&](auto t, auto i) {
      using T = decltype(t);
      using I = decltype(i);
      rowsKernel<T, I><<<rowBlocks(shape.rows), kThreads, 0, stream>>>(
          logits.as<T>(), targets.as<I>(), shape, scratch, true, dx.as<T>(), nullptr, 0, true);
      finishLoss<T><<<1, 1, 0, stream>>>(scratch, loss.as<T>(), true);
    });
  });
}

/// The deferred check: the position recorded (the step's operands were
/// checked when it ran; the classes are logits' last dim).
Status labelRecord(const char *op, const void *record, const std::vector<TensorRef> &inputs,
                   const std::vector<TensorRef> &, const AttrMap &) {
  LabelRecord kept;
  std::memcpy(&kept, record, sizeof kept);
  return kept.positionPlusOne == 0 ? Status()
                                   : badLabelMessage(op, kept.label, kept.positionPlusOne - 1,
                                                     inputs[0].shape.back());
}

} // namespace

void addCrossEntropyKernels(CudaKernelTable &table) {
  table.insert(table.end(), {{"cross_entropy", crossEntropy, labelRecord},
                             {"cross_entropy_grad", crossEntropyGrad, labelRecord},
                             {"cross_entropy_and_grad", crossEntropyAndGrad, labelRecord}});
}

} // namespace cuda
} // namespace longctx
