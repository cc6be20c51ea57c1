//===- GatedMlp.cpp - gated_mlp (SiLU-gated MLP) and its gradient ----------===//
//
// y = (silu(x Wg) * (x Wu)) Wd, computed over chunks of rows so the [rows, F]
// hidden activations never exist at once; the backward recomputes them chunk
// by chunk instead of keeping them from the forward.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/Blas.h"
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"

#include <cmath>
#include <vector>

namespace longctx {
namespace cpu {
namespace {

/// Hidden elements per chunk: bounds the scratch to a few MiB per tensor.
constexpr int64_t kChunkElements = int64_t(1) << 20;

struct MlpDims {
  int64_t rows = 0, d = 0, f = 0, e = 0;
};

Status checkMlp(const char *op, const TensorRef &x, const TensorRef &wg, const TensorRef &wu,
                const TensorRef &wd, MlpDims &dims) {
  for (const TensorRef *w : {&wg, &wu, &wd})
    if (Status s = checkDType(op, "weight", w->dtype, x.dtype); !s)
      return s;
  if (x.rank() < 1 || wg.rank() != 2 || wu.rank() != 2 || wd.rank() != 2)
    return opError(op, "expects x [..., D], w_gate and w_up [D, F], w_down [F, E]");
  dims.d = x.shape.back();
  dims.f = wg.shape[1];
  dims.e = wd.shape[1];
  if (wg.shape[0] != dims.d || wu.shape != wg.shape || wd.shape[0] != dims.f)
    return opError(op, "weights " + shapeToString(wg.shape) + ", " + shapeToString(wu.shape) +
                           ", " + shapeToString(wd.shape) + " do not fit x " +
                           shapeToString(x.shape));
  dims.rows = dims.d ? x.numElements() / dims.d : 0;
  return Status();
}

int64_t chunkRows(const AttrMap &attrs, const MlpDims &m) {
  int64_t forced = attrs.getInt("chunk_rows", 0);
  int64_t automatic = kChunkElements / std::max<int64_t>(m.f, 1);
  return std::max<int64_t>(1, std::min(m.rows, forced > 0 ? forced : automatic));
}

template <typename T> T sigmoidOf(T g) { return T(1) / (T(1) + std::exp(-g)); }

/// For `n` rows xc: g = xc Wg, u = xc Wu, h = silu(g) * u (all [n, F]).
template <typename T>
void hiddenActivations(const MlpDims &m, const T *xc, int64_t n, const T *wg, const T *wu, T *g,
                       T *u, T *h) {
  gemm(false, false, n, m.f, m.d, T(1), xc, m.d, wg, m.f, T(0), g, m.f);
  gemm(false, false, n, m.f, m.d, T(1), xc, m.d, wu, m.f, T(0), u, m.f);
  const int64_t count = n * m.f;
#pragma omp parallel for simd schedule(static) if (count >= kParallelGrain)
  for (int64_t i = 0; i < count; ++i)
    h[i] = g[i] * sigmoidOf(g[i]) * u[i];
}

Status gatedMlpKernel(const std::vector<TensorRef> &inputs, const std::vector<TensorRef> &outputs,
                      const AttrMap &attrs) {
  const char *op = "gated_mlp";
  if (Status s = loadBlas(op); !s)
    return s;
  if (Status s = checkArity(op, inputs, 4, 4, outputs); !s)
    return s;
  const TensorRef &x = inputs[0], &wg = inputs[1], &wu = inputs[2], &wd = inputs[3];
  const TensorRef &y = outputs[0];
  MlpDims m;
  if (Status s = checkMlp(op, x, wg, wu, wd, m); !s)
    return s;
  Shape expected(x.shape.begin(), x.shape.end() - 1);
  expected.push_back(m.e);
  if (Status s = checkShape(op, "output", y.shape, expected); !s)
    return s;
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const int64_t chunk = chunkRows(attrs, m);
    std::vector<T> g(size_t(chunk * m.f)), u(size_t(chunk * m.f));
    for (int64_t r0 = 0; r0 < m.rows; r0 += chunk) {
      const int64_t n = std::min(chunk, m.rows - r0);
      // h overwrites g: the forward needs only the product.
      hiddenActivations(m, x.as<T>() + r0 * m.d, n, wg.as<T>(), wu.as<T>(), g.data(), u.data(),
                        g.data());
      gemm(false, false, n, m.e, m.f, T(1), g.data(), m.f, wd.as<T>(), m.e, T(0),
           y.as<T>() + r0 * m.e, m.e);
    }
    return Status();
  });
}

Status gatedMlpGradKernel(const std::vector<TensorRef> &inputs,
                          const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const char *op = "gated_mlp_grad";
  if (Status s = loadBlas(op); !s)
    return s;
  if (Status s = checkArity(op, inputs, 5, 5, outputs, 4); !s)
    return s;
  const TensorRef &dy = inputs[0], &x = inputs[1], &wg = inputs[2], &wu = inputs[3],
                  &wd = inputs[4];
  const TensorRef &dx = outputs[0], &dwg = outputs[1], &dwu = outputs[2], &dwd = outputs[3];
  MlpDims m;
  if (Status s = checkMlp(op, x, wg, wu, wd, m); !s)
    return s;
  if (dy.numElements() != m.rows * m.e || dy.dtype != x.dtype)
    return opError(op, "dy " + shapeToString(dy.shape) + " does not match the output");
  if (Status s = checkShape(op, "dx", dx.shape, x.shape); !s)
    return s;
  if (dwg.shape != wg.shape || dwu.shape != wu.shape || dwd.shape != wd.shape)
    return opError(op, "weight gradients must have the weights' shapes");
  return dispatchFloat(op, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const int64_t chunk = chunkRows(attrs, m);
    const size_t hidden = size_t(chunk * m.f);
    std::vector<T> g(hidden), u(hidden), h(hidden), dh(hidden);
    for (int64_t r0 = 0; r0 < m.rows; r0 += chunk) {
      const int64_t n = std::min(chunk, m.rows - r0);
      const T *xc = x.as<T>() + r0 * m.d, *dyc = dy.as<T>() + r0 * m.e;
      const T accumulate = r0 == 0 ? T(0) : T(1);
      // Recompute the chunk's hidden activations.
      hiddenActivations(m, xc, n, wg.as<T>(), wu.as<T>(), g.data(), u.data(), h.data());
      const int64_t count = n * m.f;
      // dWd += h^T dy; dh = dy Wd^T.
      gemm(true, false, m.f, m.e, n, T(1), h.data(), m.f, dyc, m.e, accumulate, dwd.as<T>(), m.e);
      gemm(false, true, n, m.f, m.e, T(1), dyc, m.e, wd.as<T>(), m.e, T(0), dh.data(), m.f);
      // dg = dh * u * silu'(g) (into g), du = dh * silu(g) (into u).
#pragma omp parallel for simd schedule(static) if (count >= kParallelGrain)
      for (int64_t i = 0; i < count; ++i) {
        const T s = sigmoidOf(g[i]);
        const T silu = g[i] * s;
        const T dsilu = s * (T(1) + g[i] * (T(1) - s));
        const T du = dh[i] * silu;
        g[i] = dh[i] * u[i] * dsilu;
        u[i] = du;
      }
      gemm(true, false, m.d, m.f, n, T(1), xc, m.d, g.data(), m.f, accumulate, dwg.as<T>(), m.f);
      gemm(true, false, m.d, m.f, n, T(1), xc, m.d, u.data(), m.f, accumulate, dwu.as<T>(), m.f);
      T *dxc = dx.as<T>() + r0 * m.d;
      gemm(false, true, n, m.d, m.f, T(1), g.data(), m.f, wg.as<T>(), m.f, T(0), dxc, m.d);
      gemm(false, true, n, m.d, m.f, T(1), u.data(), m.f, wu.as<T>(), m.f, T(1), dxc, m.d);
    }
    if (m.rows == 0)
      for (const TensorRef *w : {&dwg, &dwu, &dwd})
        std::fill_n(w->as<T>(), w->numElements(), T(0));
    return Status();
  });
}

} // namespace

void addGatedMlpKernels(KernelTable &table) {
  table.insert(table.end(), {{"gated_mlp", gatedMlpKernel}, {"gated_mlp_grad", gatedMlpGradKernel}});
}

} // namespace cpu
} // namespace longctx
