//===- CrossEntropy.cpp - Token cross-entropy loss and its gradient -------===//
//
// logits [..., V] score V classes at every position of targets [...]. With
// shift = 0 position p is labelled by targets[p]; with shift = 1 (next-token
// loss, the default) position s of a sequence (targets' last dim) is labelled
// by targets[..., s+1] and each sequence's last position is unused. Positions
// labelled ignore_index are not counted; the loss is the mean over counted
// positions of logsumexp(row) - row[label] (0 when none is counted), or
// their sum with reduction = 1 (a chunk of a mini-sequence: the caller
// divides by the global count).
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/OperandChecks.h"

namespace longctx {
namespace cpu {
namespace {

/// logits viewed as [rows, vocab]; label[r] is the class row r is scored
/// against, or -1 when the row is not counted.
struct LabelledRows {
  int64_t rows = 0, vocab = 0, count = 0;
  std::vector<int64_t> label;
};

/// Every row's label for a resolved `shape`; a label outside [0, vocab) is
/// an error.
Status resolveLabels(const char *op, const TensorRef &targets, const CrossEntropyShape &shape,
                     LabelledRows &lr) {
  const int64_t shift = shape.shift, ignore = shape.ignoreIndex, seqLen = shape.seqLen;
  lr.rows = shape.rows;
  lr.vocab = shape.vocab;
  lr.count = 0;
  lr.label.assign(size_t(lr.rows), -1);
  for (int64_t r = 0; r < lr.rows; ++r) {
    if (shift && r % seqLen == seqLen - 1)
      continue; // the last position of a sequence predicts nothing
    const int64_t src = r + shift;
    const int64_t t = indexAt(targets, src);
    if (t == ignore)
      continue;
    if (t < 0 || t >= lr.vocab)
      return opError(op, "target " + std::to_string(t) + " at position " +
                             std::to_string(src) + " out of range for " +
                             std::to_string(lr.vocab) + " classes");
    lr.label[r] = t;
    ++lr.count;
  }
  return Status();
}

/// Stable logsumexp of a row in double: max, then the sum of exp(x - max).
/// When `e` is given it receives exp(x - max) (softmax before the division).
template <typename T>
double rowLogSumExp(const T *x, int64_t n, double &max, double &sum,
                    T *e = nullptr) {
  max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i)
    max = std::max(max, double(x[i]));
  sum = 0;
  if (e) {
    for (int64_t i = 0; i < n; ++i) {
      const double v = std::exp(double(x[i]) - max);
      e[i] = T(v);
      sum += v;
    }
  } else {
    for (int64_t i = 0; i < n; ++i)
      sum += std::exp(double(x[i]) - max);
  }
  return max + std::log(sum);
}

/// One row's gradient, scale * (softmax(row) - onehot(label)), written to
/// `out` (zeros for an uncounted row, label < 0); returns the row's loss
/// logsumexp(row) - row[label] (0 when uncounted).
template <typename T>
double rowGradient(const T *row, int64_t v, int64_t label, double scale, T *out) {
  if (label < 0) {
    std::fill(out, out + v, T(0));
    return 0.0;
  }
  double max, sum;
  const double lse = rowLogSumExp(row, v, max, sum, out);
  const double k = scale / sum;
  const double pl = double(out[label]);
#pragma omp simd
  for (int64_t i = 0; i < v; ++i)
    out[i] = T(double(out[i]) * k);
  out[label] = T(pl * k - scale);
  return lse - double(row[label]);
}

Status crossEntropyKernel(const std::vector<TensorRef> &inputs,
                          const std::vector<TensorRef> &outputs,
                          const AttrMap &attrs) {
  const char *op = "cross_entropy";
  CrossEntropyShape shape;
  if (Status s = resolveCrossEntropyOperands(op, CrossEntropyStep::Loss, inputs, outputs, attrs,
                                             shape);
      !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1], &loss = outputs[0];
  LabelledRows lr;
  if (Status s = resolveLabels(op, targets, shape, lr); !s)
    return s;
  return dispatchFloat(op, logits.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = logits.as<T>();
    const int64_t rows = lr.rows, v = lr.vocab;
    const int64_t *label = lr.label.data();
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (           \
        rows > 1 && rows * v >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      if (label[r] < 0)
        continue;
      const T *row = px + r * v;
      double max, sum;
      total += rowLogSumExp(row, v, max, sum) - double(row[label[r]]);
    }
    const bool sum = attrs.getInt("reduction", 0) == 1;
    *loss.as<T>() = T(sum ? total : lr.count ? total / double(lr.count) : 0.0);
    return Status();
  });
}

/// dlogits = dloss / count * (softmax(row) - onehot(label)) on counted rows
/// (dloss without the division for reduction = 1), 0 on the others. The
/// softmax goes straight into the output row.
Status crossEntropyGradKernel(const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs,
                              const AttrMap &attrs) {
  const char *op = "cross_entropy_grad";
  CrossEntropyShape shape;
  if (Status s = resolveCrossEntropyOperands(op, CrossEntropyStep::Grad, inputs, outputs, attrs,
                                             shape);
      !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1], &dx = outputs[0];
  double dloss = 0;
  if (Status s = readScalar(op, "dloss", inputs[2], dloss); !s)
    return s;
  LabelledRows lr;
  if (Status s = resolveLabels(op, targets, shape, lr); !s)
    return s;
  return dispatchFloat(op, logits.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = logits.as<T>();
    T *pd = dx.as<T>();
    const int64_t rows = lr.rows, v = lr.vocab;
    const int64_t *label = lr.label.data();
    const bool sum = attrs.getInt("reduction", 0) == 1;
    const double perRow = sum ? dloss : lr.count ? dloss / double(lr.count) : 0.0;
#pragma omp parallel for schedule(static) if (rows > 1 &&                      \
                                              rows * v >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r)
      rowGradient(px + r * v, v, label[r], perRow, pd + r * v);
    return Status();
  });
}

/// The summed loss and its gradient (dloss = 1) in one pass per row: the
/// row's exponentials go into dlogits, then become softmax - onehot.
Status crossEntropyAndGradKernel(const std::vector<TensorRef> &inputs,
                                 const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const char *op = "cross_entropy_and_grad";
  CrossEntropyShape shape;
  if (Status s = resolveCrossEntropyOperands(op, CrossEntropyStep::LossAndGrad, inputs, outputs,
                                             attrs, shape);
      !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1], &loss = outputs[0],
                  &dx = outputs[1];
  LabelledRows lr;
  if (Status s = resolveLabels(op, targets, shape, lr); !s)
    return s;
  return dispatchFloat(op, logits.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T *px = logits.as<T>();
    T *pd = dx.as<T>();
    const int64_t rows = lr.rows, v = lr.vocab;
    const int64_t *label = lr.label.data();
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (           \
        rows > 1 && rows * v >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r)
      total += rowGradient(px + r * v, v, label[r], 1.0, pd + r * v);
    *loss.as<T>() = T(total);
    return Status();
  });
}

} // namespace

void addCrossEntropyKernels(KernelTable &table) {
  table.push_back({"cross_entropy_and_grad", crossEntropyAndGradKernel});
  table.insert(table.end(), {
                                {"cross_entropy", crossEntropyKernel},
                                {"cross_entropy_grad", crossEntropyGradKernel},
                            });
}

Status resolveCrossEntropyShape(const char *op, const TensorRef &logits, const TensorRef &targets,
                                const AttrMap &attrs, CrossEntropyShape &shape) {
  if (Status s = checkIndexDType(op, "targets", targets); !s)
    return s;
  if (logits.rank() != targets.rank() + 1)
    return opError(op, "logits of shape " + shapeToString(logits.shape) +
                           " need rank " + std::to_string(targets.rank() + 1) +
                           " for targets of shape " +
                           shapeToString(targets.shape));
  Shape want = targets.shape;
  want.push_back(logits.shape.back());
  if (Status s = checkShape(op, "logits", logits.shape, want); !s)
    return s;
  // Default as the lc op: the next-token loss.
  shape.shift = attrs.getInt("shift", 1);
  if (shape.shift != 0 && shape.shift != 1)
    return opError(op, "shift must be 0 or 1, got " + std::to_string(shape.shift));
  if (shape.shift == 1 && targets.rank() == 0)
    return opError(op, "shift 1 needs targets with a sequence dim");
  shape.ignoreIndex = attrs.getInt("ignore_index", -100);
  shape.rows = targets.numElements();
  shape.vocab = logits.shape.back();
  shape.seqLen = shape.shift ? targets.shape.back() : 1;
  return Status();
}

Status resolveCrossEntropyOperands(const char *op, CrossEntropyStep step,
                                   const std::vector<TensorRef> &inputs,
                                   const std::vector<TensorRef> &outputs, const AttrMap &attrs,
                                   CrossEntropyShape &shape) {
  const size_t arity = step == CrossEntropyStep::Grad ? 3 : 2;
  const size_t results = step == CrossEntropyStep::LossAndGrad ? 2 : 1;
  if (Status s = checkArity(op, inputs, arity, arity, outputs, results); !s)
    return s;
  const TensorRef &logits = inputs[0], &targets = inputs[1];
  switch (step) {
  case CrossEntropyStep::Loss:
    if (Status s = checkOperands(op, logits.dtype, {{"loss", &outputs[0], {}}}); !s)
      return s;
    break;
  case CrossEntropyStep::Grad:
    if (Status s = checkDType(op, "dloss", inputs[2].dtype, logits.dtype); !s)
      return s;
    if (inputs[2].rank() != 0) // as readScalar says it
      return opError(op, "dloss must be rank 0, got shape " + shapeToString(inputs[2].shape));
    if (Status s = checkOperands(op, logits.dtype, {{"output", &outputs[0], logits.shape}}); !s)
      return s;
    break;
  case CrossEntropyStep::LossAndGrad: {
    if (Status s = checkOperands(op, logits.dtype,
                                 {{"loss", &outputs[0], {}}, {"dlogits", &outputs[1], logits.shape}});
        !s)
      return s;
    AttrMap unshifted = attrs; // one row per target
    unshifted.set("shift", int64_t(0));
    return resolveCrossEntropyShape(op, logits, targets, unshifted, shape);
  }
  }
  return resolveCrossEntropyShape(op, logits, targets, attrs, shape);
}

} // namespace cpu
} // namespace longctx
