//===- TrainingKernelsTest.cpp - Gradient, loss and optimizer kernels -----===//
//
// Every gradient kernel is checked against central finite differences, in
// float64, of the forward kernel it differentiates: for a random cotangent w,
// d/dx sum(w * forward(x)) must match the gradient kernel at each checked
// element. Losses are checked against hand-computed values and optimizer
// updates against PyTorch's numbers and a naive double loop.
//
//===----------------------------------------------------------------------===//
#include "KernelTestUtil.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace longctx;
using namespace longctx::kerneltest;

namespace {

using Ints = std::vector<int64_t>;

/// sum(w * forward(inputs)) in double, forward's output having w's shape.
double weightedForward(const char *op, const std::vector<const Tensor *> &ins,
                       const Tensor &w, const AttrMap &am) {
  Tensor y(DType::F64, w.shape());
  Status s = run(op, ins, y, am);
  EXPECT_TRUE(s.ok()) << op << ": " << s.message();
  double l = 0;
  for (int64_t i = 0; i < y.numElements(); ++i)
    l += w.as<double>()[i] * y.as<double>()[i];
  return l;
}

/// Checks grad against central finite differences of sum(w * op(ins)) with
/// respect to *ins[wrt] (f64) at every element, or at maxChecks elements
/// spread at random when there are more. Relative tolerance 1e-6.
void checkFiniteDiff(const char *op, const std::vector<const Tensor *> &ins,
                     const AttrMap &am, const Tensor &w, size_t wrt,
                     const Tensor &grad, const std::string &what,
                     int64_t maxChecks = 150) {
  const Tensor &x = *ins[wrt];
  checkFiniteDifferences(
      x, grad, [&] { return weightedForward(op, ins, w, am); }, what, maxChecks,
      unsigned(x.numElements() * 7 + wrt));
}

/// Converts an f64 tensor to f32 (to run a kernel on the same data in f32).
Tensor toF32(const Tensor &t) {
  Tensor r(DType::F32, t.shape());
  for (int64_t i = 0; i < t.numElements(); ++i)
    r.as<float>()[i] = float(t.as<double>()[i]);
  return r;
}

/// Expects every element of got (f32) within tol * max(1, |want|) of want.
void expectClose(const Tensor &got, const Tensor &want, double tol,
                 const std::string &what) {
  expectNear(got, values(want), tol, what);
}

//===----------------------------------------------------------------------===//
// slice_scatter
//===----------------------------------------------------------------------===//

void checkSliceScatter(const Shape &xShape, const Ints &starts,
                       const Ints &steps, const Shape &srcShape,
                       int64_t maxChecks) {
  const std::string what = "slice_scatter " + shapeToString(xShape);
  AttrMap am = attrs({{"starts", starts}, {"steps", steps}});
  Tensor x = randomTensor<double>(xShape, -1, 1, 11);
  Tensor w = randomTensor<double>(srcShape, -1, 1, 12);
  Tensor dx(DType::F64, xShape);
  runOk("slice_scatter", {&w}, dx, am);
  checkFiniteDiff("slice", {&x}, am, w, 0, dx, what, maxChecks);
  // Exactly: w at the sliced positions, 0 elsewhere.
  std::vector<double> want(size_t(x.numElements()), 0.0), vw = values(w);
  for (int64_t i = 0; i < w.numElements(); ++i) {
    Ints idx = unflatten(srcShape, i);
    for (size_t d = 0; d < idx.size(); ++d)
      idx[d] = starts[d] + idx[d] * steps[d];
    want[flatten(xShape, idx)] = vw[i];
  }
  expectExact(dx, want, what);
}

TEST(SliceScatter, AdjointOfSlice) {
  checkSliceScatter({4, 5, 6}, {3, 1, 0}, {-1, 2, 3}, {4, 2, 2}, 1000);
  checkSliceScatter({3, 4}, {2, 3}, {-2, -3}, {2, 2}, 1000);
  checkSliceScatter({7}, {1}, {1}, {5}, 1000);
  // Parallel, reversed along the contiguous dim.
  checkSliceScatter({128, 600}, {1, 599}, {2, -1}, {64, 600}, 40);
}

TEST(SliceScatter, AnyDTypeAndErrors) {
  Tensor src = tensor<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor out(DType::I64, {3, 4});
  AttrMap am = attrs({{"starts", Ints{0, 3}}, {"steps", Ints{2, -2}}});
  runOk("slice_scatter", {&src}, out, am);
  expectExact(out, {0, 2, 0, 1, 0, 0, 0, 0, 0, 4, 0, 3});
  Tensor b = boolTensor({1, 2}, {1, 1});
  Tensor bo(DType::Bool, {2, 2});
  runOk("slice_scatter", {&b}, bo,
        attrs({{"starts", Ints{1, 0}}, {"steps", Ints{1, 1}}}));
  expectExact(bo, {0, 0, 1, 1});
  // Writing past the end, a zero step, a wrong rank, a dtype change.
  expectError("slice_scatter", {&src}, out,
              attrs({{"starts", Ints{2, 0}}, {"steps", Ints{1, 1}}}));
  expectError("slice_scatter", {&src}, out,
              attrs({{"starts", Ints{0, 0}}, {"steps", Ints{1, 0}}}));
  expectError("slice_scatter", {&src}, out,
              attrs({{"starts", Ints{0}}, {"steps", Ints{1}}}));
  Tensor outF(DType::F32, {3, 4});
  expectError("slice_scatter", {&src}, outF, am);
  // `sizes`, when given, is the shape of src.
  AttrMap sized = am;
  sized.set("sizes", Ints{2, 2});
  runOk("slice_scatter", {&src}, out, sized);
  sized.set("sizes", Ints{3, 2});
  expectError("slice_scatter", {&src}, out, sized);
}

//===----------------------------------------------------------------------===//
// scatter_add
//===----------------------------------------------------------------------===//

template <typename I>
void checkScatterAddFD(const Shape &dataShape, const Shape &idxShape,
                       const std::vector<double> &idx, int64_t axis) {
  Tensor data = randomTensor<double>(dataShape, -1, 1, 21);
  Tensor indices = tensor<I>(idxShape, idx);
  Shape gathered(dataShape.begin(), dataShape.begin() + axis);
  gathered.insert(gathered.end(), idxShape.begin(), idxShape.end());
  gathered.insert(gathered.end(), dataShape.begin() + axis + 1,
                  dataShape.end());
  Tensor w = randomTensor<double>(gathered, -1, 1, 22);
  AttrMap am = attrs({{"axis", axis}});
  Tensor dData(DType::F64, dataShape);
  runOk("scatter_add", {&w, &indices}, dData, am);
  checkFiniteDiff("gather", {&data, &indices}, am, w, 0, dData,
                  "scatter_add " + shapeToString(dataShape), 1000);
}

TEST(ScatterAdd, AdjointOfGatherWithRepeatedAndNegativeIndices) {
  // Rows 1 (three times: 1, 1, -4) and 4 (twice: -1, 4) repeat; 2, 3 unused.
  checkScatterAddFD<int64_t>({5, 3}, {2, 3}, {1, -1, 4, 1, 0, -4}, 0);
  checkScatterAddFD<int32_t>({2, 5, 3}, {4}, {4, -5, 0, 4}, 1);
  checkScatterAddFD<int64_t>({2, 3, 4}, {3}, {-1, 3, 0}, 2);
  checkScatterAddFD<int64_t>({4}, {}, {-2}, 0); // a scalar index
}

TEST(ScatterAdd, HandComputed) {
  Tensor grad = tensor<float>({3, 2}, {1, 2, 10, 20, 100, 200});
  Tensor idx = tensor<int64_t>({3}, {2, -1, 0});
  Tensor out(DType::F32, {3, 2});
  runOk("scatter_add", {&grad, &idx}, out);
  expectExact(out, {100, 200, 0, 0, 11, 22});
}

TEST(ScatterAdd, EmbeddingBackwardParallel) {
  // An embedding table's gradient: 4096 token positions into 3000 rows.
  const int64_t rows = 3000, dim = 64, tokens = 4096;
  std::mt19937 gen(5);
  std::uniform_int_distribution<int64_t> tok(0, 99); // many repeats
  std::vector<double> idx;
  for (int64_t i = 0; i < tokens; ++i)
    idx.push_back(double(i % 7 == 0 ? -1 - tok(gen) : tok(gen) * 29));
  Tensor indices = tensor<int64_t>({2, tokens / 2}, idx);
  Tensor grad = randomTensor<float>({2, tokens / 2, dim}, -1, 1, 6);
  Tensor out(DType::F32, {rows, dim});
  runOk("scatter_add", {&grad, &indices}, out);
  std::vector<double> want(size_t(rows * dim), 0.0), vg = values(grad);
  for (int64_t p = 0; p < tokens; ++p) {
    int64_t r = int64_t(idx[p]) < 0 ? int64_t(idx[p]) + rows : int64_t(idx[p]);
    for (int64_t j = 0; j < dim; ++j)
      want[r * dim + j] += vg[p * dim + j];
  }
  expectNear(out, want, 1e-6, "embedding backward");
}

TEST(ScatterAdd, Errors) {
  Tensor grad = tensor<float>({2, 2}, {1, 2, 3, 4});
  Tensor out(DType::F32, {3, 2});
  for (double bad : {3.0, -4.0}) {
    Tensor idx = tensor<int64_t>({2}, {0, bad});
    Status s = run("scatter_add", {&grad, &idx}, out);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.message().rfind("scatter_add:", 0), 0u) << s.message();
    EXPECT_NE(s.message().find("out of range"), std::string::npos)
        << s.message();
  }
  Tensor idx = tensor<int64_t>({2}, {0, 1});
  Tensor fidx = tensor<float>({2}, {0, 1});
  expectError("scatter_add", {&grad, &fidx}, out); // float indices
  Tensor gi = tensor<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor oi(DType::I64, {3, 2});
  expectError("scatter_add", {&gi, &idx}, oi); // float only
  Tensor wrong(DType::F32, {3, 3});
  expectError("scatter_add", {&grad, &idx}, wrong); // shapes disagree
  expectError("scatter_add", {&grad, &idx}, out, attrs({{"axis", int64_t(2)}}));
}

//===----------------------------------------------------------------------===//
// layer_norm_grad
//===----------------------------------------------------------------------===//

void checkLayerNormGrad(const Shape &shape, int64_t axis, int64_t maxChecks) {
  const double eps = 1e-5;
  const std::string what = "layer_norm_grad " + shapeToString(shape) +
                           " axis " + std::to_string(axis);
  Shape norm(shape.begin() + axis, shape.end());
  Tensor x = randomTensor<double>(shape, -3, 3, 31);
  Tensor scale = randomTensor<double>(norm, 0.5, 1.5, 32);
  Tensor bias = randomTensor<double>(norm, -1, 1, 33);
  Tensor w = randomTensor<double>(shape, -1, 1, 34);
  AttrMap am = attrs({{"axis", axis}, {"epsilon", eps}});
  Tensor dx(DType::F64, shape), dscale(DType::F64, norm),
      dbias(DType::F64, norm);
  Status s =
      runMulti("layer_norm_grad", {&w, &x, &scale}, {&dx, &dscale, &dbias}, am);
  ASSERT_TRUE(s.ok()) << s.message();
  std::vector<const Tensor *> ins = {&x, &scale, &bias};
  checkFiniteDiff("layer_norm", ins, am, w, 0, dx, what + " dx", maxChecks);
  checkFiniteDiff("layer_norm", ins, am, w, 1, dscale, what + " dscale",
                  maxChecks);
  checkFiniteDiff("layer_norm", ins, am, w, 2, dbias, what + " dbias",
                  maxChecks);

  // f32 on the same data agrees with f64 to f32 precision.
  Tensor x32 = toF32(x), s32 = toF32(scale), w32 = toF32(w);
  Tensor dx32(DType::F32, shape), ds32(DType::F32, norm),
      db32(DType::F32, norm);
  s = runMulti("layer_norm_grad", {&w32, &x32, &s32}, {&dx32, &ds32, &db32},
               am);
  ASSERT_TRUE(s.ok()) << s.message();
  expectClose(dx32, dx, 1e-5, what + " f32 dx");
  expectClose(ds32, dscale, 1e-5, what + " f32 dscale");
  expectClose(db32, dbias, 1e-5, what + " f32 dbias");
}

TEST(LayerNormGrad, MatchesFiniteDifferences) {
  checkLayerNormGrad({2, 3, 4}, 2, 1000);
  checkLayerNormGrad({2, 3, 4}, 1, 1000);
  checkLayerNormGrad({2, 3, 4}, 0, 1000);
  checkLayerNormGrad({96, 400}, 1, 25); // parallel rows, per-thread partials
}

TEST(LayerNormGrad, Errors) {
  Tensor x = tensor<float>({2, 2}, {1, 2, 3, 4});
  Tensor g = tensor<float>({2}, {1, 1});
  Tensor dx(DType::F32, {2, 2}), ds(DType::F32, {2}), db(DType::F32, {2});
  Tensor bad(DType::F32, {3});
  auto err = [&](const std::vector<const Tensor *> &ins,
                 const std::vector<const Tensor *> &outs) {
    Status s = runMulti("layer_norm_grad", ins, outs);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message().rfind("layer_norm_grad:", 0), 0u) << s.message();
  };
  err({&x, &x, &g}, {&dx, &ds});        // three outputs
  err({&x, &g}, {&dx, &ds, &db});       // three inputs
  err({&x, &x, &bad}, {&dx, &ds, &db}); // scale does not fit
  err({&x, &x, &g}, {&dx, &bad, &db});  // dscale has scale's shape
  err({&g, &x, &g}, {&dx, &ds, &db});   // dy has x's shape
  Tensor xi = tensor<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor gi = tensor<int64_t>({2}, {1, 1});
  Tensor dxi(DType::I64, {2, 2}), dsi(DType::I64, {2}), dbi(DType::I64, {2});
  err({&xi, &xi, &gi}, {&dxi, &dsi, &dbi}); // float only
}

//===----------------------------------------------------------------------===//
// selective_scan_grad
//===----------------------------------------------------------------------===//

/// chunk > 0 forces recomputation from checkpoints every `chunk` steps
/// (short sequences otherwise keep all their states).
void checkSelectiveScanGrad(int64_t B, int64_t S, int64_t E, int64_t N,
                            int64_t maxChecks, int64_t chunk = 0) {
  const std::string what =
      "selective_scan_grad B=" + std::to_string(B) + " S=" + std::to_string(S) +
      " E=" + std::to_string(E) + " N=" + std::to_string(N) +
      " chunk=" + std::to_string(chunk);
  AttrMap am;
  if (chunk)
    am.set("chunk", chunk);
  Tensor u = randomTensor<double>({B, S, E}, -1, 1, 41);
  Tensor delta = randomTensor<double>({B, S, E}, 0.01, 0.5, 42);
  Tensor A = randomTensor<double>({E, N}, -2, -0.1, 43);
  Tensor Bm = randomTensor<double>({B, S, N}, -1, 1, 44);
  Tensor C = randomTensor<double>({B, S, N}, -1, 1, 45);
  Tensor w = randomTensor<double>({B, S, E}, -1, 1, 46);
  std::vector<Tensor> grads;
  for (const Tensor *t : {&u, &delta, &A, &Bm, &C})
    grads.emplace_back(DType::F64, t->shape());
  Status s =
      runMulti("selective_scan_grad", {&w, &u, &delta, &A, &Bm, &C},
               {&grads[0], &grads[1], &grads[2], &grads[3], &grads[4]}, am);
  ASSERT_TRUE(s.ok()) << s.message();
  std::vector<const Tensor *> ins = {&u, &delta, &A, &Bm, &C};
  const char *names[] = {" du", " ddelta", " dA", " dB", " dC"};
  for (size_t k = 0; k < 5; ++k)
    checkFiniteDiff("selective_scan", ins, {}, w, k, grads[k], what + names[k],
                    maxChecks);

  // f32 on the same data agrees with f64 to f32 precision.
  std::vector<Tensor> in32, out32;
  for (const Tensor *t : {&w, &u, &delta, &A, &Bm, &C})
    in32.push_back(toF32(*t));
  for (const Tensor *t : {&u, &delta, &A, &Bm, &C})
    out32.emplace_back(DType::F32, t->shape());
  s = runMulti("selective_scan_grad",
               {&in32[0], &in32[1], &in32[2], &in32[3], &in32[4], &in32[5]},
               {&out32[0], &out32[1], &out32[2], &out32[3], &out32[4]}, am);
  ASSERT_TRUE(s.ok()) << s.message();
  for (size_t k = 0; k < 5; ++k)
    expectClose(out32[k], grads[k], 1e-4, what + " f32" + names[k]);
}

TEST(SelectiveScanGrad, MatchesFiniteDifferences) {
  checkSelectiveScanGrad(1, 1, 1, 1, 100);
  checkSelectiveScanGrad(1, 5, 3, 2, 100);
  checkSelectiveScanGrad(1, 5, 3, 2, 100, 2);
  // Bt = 2, S prime (no chunk size divides it), E crosses channel blocks;
  // whole history, then recomputed chunks of 16 and 64 steps.
  checkSelectiveScanGrad(2, 131, 11, 3, 100);
  checkSelectiveScanGrad(2, 131, 11, 3, 100, 16);
  checkSelectiveScanGrad(2, 131, 11, 3, 100, 64);
  // Large enough to run in parallel (fewer checks: slower forwards).
  checkSelectiveScanGrad(2, 131, 19, 8, 25);
  checkSelectiveScanGrad(2, 131, 19, 8, 25, 16);
}

TEST(SelectiveScanGrad, HandComputed) {
  // E = N = 1, the forward example of CpuKernelsTest: h1 = d*u1*B = 1,
  // h2 = exp(dA)*h1 + d*u2*B = exp(-0.5) + 2, y = 3*h. With dy = (1, 0):
  // dC1 = h1 = 1, dC2 = 0, g1 = 3, g2 = 0, du1 = d*g1*B = 3, du2 = 0.
  Tensor dy = tensor<double>({1, 2, 1}, {1, 0});
  Tensor u = tensor<double>({1, 2, 1}, {1, 2});
  Tensor d = tensor<double>({1, 2, 1}, {0.5, 0.5});
  Tensor A = tensor<double>({1, 1}, {-1});
  Tensor Bm = tensor<double>({1, 2, 1}, {2, 2});
  Tensor C = tensor<double>({1, 2, 1}, {3, 3});
  Tensor du(DType::F64, {1, 2, 1}), dd(DType::F64, {1, 2, 1}),
      dA(DType::F64, {1, 1}), dB(DType::F64, {1, 2, 1}),
      dC(DType::F64, {1, 2, 1});
  Status s = runMulti("selective_scan_grad", {&dy, &u, &d, &A, &Bm, &C},
                      {&du, &dd, &dA, &dB, &dC});
  ASSERT_TRUE(s.ok()) << s.message();
  expectNear(du, {3, 0}, 1e-15);
  expectNear(dd, {6, 0}, 1e-15); // g1 * u1 * B (h0 = 0)
  expectNear(dA, {0}, 1e-15);
  expectNear(dB, {1.5, 0}, 1e-15); // g1 * d * u1
  expectNear(dC, {1, 0}, 1e-15);
}

TEST(SelectiveScanGrad, Errors) {
  Tensor t3 = tensor<float>({1, 1, 1}, {1});
  Tensor t2 = tensor<float>({1, 1}, {1});
  Tensor o3(DType::F32, {1, 1, 1}), o2(DType::F32, {1, 1});
  Tensor d3 = tensor<double>({1, 1, 1}, {1});
  auto err = [&](const std::vector<const Tensor *> &ins,
                 const std::vector<const Tensor *> &outs) {
    Status s = runMulti("selective_scan_grad", ins, outs);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message().rfind("selective_scan_grad:", 0), 0u) << s.message();
  };
  EXPECT_TRUE(runMulti("selective_scan_grad", {&t3, &t3, &t3, &t2, &t3, &t3},
                       {&o3, &o3, &o2, &o3, &o3})
                  .ok());
  err({&t3, &t3, &t3, &t2, &t3}, {&o3, &o3, &o2, &o3, &o3}); // 5 inputs
  err({&t3, &t3, &t3, &t2, &t3, &t3}, {&o3, &o3, &o2, &o3});
  err({&d3, &t3, &t3, &t2, &t3, &t3}, {&o3, &o3, &o2, &o3, &o3}); // dy f64
  err({&t3, &t3, &t3, &t2, &t3, &t3}, {&o3, &o3, &o3, &o3, &o3}); // dA shape
  Status s =
      runMulti("selective_scan_grad", {&t3, &t3, &t3, &t2, &t3, &t3},
               {&o3, &o3, &o2, &o3, &o3}, attrs({{"chunk", int64_t(-1)}}));
  EXPECT_FALSE(s.ok());
}

//===----------------------------------------------------------------------===//
// cross_entropy
//===----------------------------------------------------------------------===//

double logSumExp(const std::vector<double> &row) {
  double m = row[0], s = 0;
  for (double v : row)
    m = std::max(m, v);
  for (double v : row)
    s += std::exp(v - m);
  return m + std::log(s);
}

TEST(CrossEntropy, HandComputedShift1) {
  // Two sequences of 3 positions, V = 3. Position s predicts target s+1;
  // the last position of each sequence and target 0 of each are unused
  // (the unused 7 would be out of range).
  Tensor logits = tensor<double>(
      {2, 3, 3}, {1, 2, 3, 0, 0, 0, 9, 9, 9, 5, 1, 1, -1, 0, 1, 4, 4, 4});
  Tensor targets = tensor<int64_t>({2, 3}, {7, 2, 0, 7, -100, 1});
  Tensor loss(DType::F64, {});
  runOk("cross_entropy", {&logits, &targets}, loss,
        attrs({{"shift", int64_t(1)}}));
  // Counted: (0,0) -> 2, (0,1) -> 0, (1,1) -> 1; (1,0) -> -100 is ignored.
  const double want = ((logSumExp({1, 2, 3}) - 3) + std::log(3.0) +
                       (logSumExp({-1, 0, 1}) - 0)) /
                      3;
  expectNear(loss, {want}, 1e-15);
  Tensor loss32(DType::F32, {});
  Tensor logits32 = toF32(logits);
  Tensor targets32 = tensor<int32_t>({2, 3}, {7, 2, 0, 7, -100, 1});
  runOk("cross_entropy", {&logits32, &targets32}, loss32,
        attrs({{"shift", int64_t(1)}}));
  expectNear(loss32, {want}, 1e-6);
}

TEST(CrossEntropy, Shift0IgnoreIndexAndStability) {
  Tensor logits =
      tensor<double>({4, 3}, {1, 2, 3, 5, 5, 5, 1000, 0, -1000, -2, 0, 2});
  Tensor targets = tensor<int64_t>({4}, {0, -100, 0, 1});
  Tensor loss(DType::F64, {});
  const AttrMap shift0 = attrs({{"shift", int64_t(0)}});
  runOk("cross_entropy", {&logits, &targets}, loss, shift0);
  const double want =
      ((logSumExp({1, 2, 3}) - 1) + 0.0 + (logSumExp({-2, 0, 2}) - 0)) / 3;
  expectNear(loss, {want}, 1e-15);
  // A custom ignore_index; rows labelled -100 now count (and are invalid).
  Tensor t2 = tensor<int64_t>({4}, {2, 2, 2, 2});
  runOk("cross_entropy", {&logits, &t2}, loss,
        attrs({{"shift", int64_t(0)}, {"ignore_index", int64_t(2)}}));
  expectExact(loss, {0}); // nothing counted
  expectError("cross_entropy", {&logits, &targets}, loss,
              attrs({{"shift", int64_t(0)}, {"ignore_index", int64_t(1)}}));
  // shift defaults to 1 (as the lc op): rows 0..2 predict targets 1..3,
  // and target 1 is ignored.
  runOk("cross_entropy", {&logits, &targets}, loss);
  expectNear(loss, {(std::log(3.0) + logSumExp({1000, 0, -1000})) / 2}, 1e-15);
}

TEST(CrossEntropy, Errors) {
  Tensor logits = tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor loss(DType::F32, {});
  for (double bad : {3.0, -1.0}) {
    Tensor t = tensor<int64_t>({2}, {0, bad});
    Status s = run("cross_entropy", {&logits, &t}, loss);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.message().rfind("cross_entropy:", 0), 0u) << s.message();
    EXPECT_NE(s.message().find("out of range"), std::string::npos)
        << s.message();
    Tensor dl = tensor<float>({}, {1});
    Tensor g(DType::F32, {2, 3});
    expectError("cross_entropy_grad", {&logits, &t, &dl}, g);
  }
  Tensor t = tensor<int64_t>({2}, {0, 1});
  Tensor tf = tensor<float>({2}, {0, 1});
  Tensor t3 = tensor<int64_t>({3}, {0, 1, 2});
  expectError("cross_entropy", {&logits, &tf}, loss); // float targets
  expectError("cross_entropy", {&logits, &t3}, loss); // shapes disagree
  Tensor lossV(DType::F32, {1});
  expectError("cross_entropy", {&logits, &t}, lossV); // rank-0 loss
  Tensor lossD(DType::F64, {});
  expectError("cross_entropy", {&logits, &t}, lossD); // logits' dtype
  expectError("cross_entropy", {&logits, &t}, loss,
              attrs({{"shift", int64_t(2)}}));
}

//===----------------------------------------------------------------------===//
// cross_entropy_grad
//===----------------------------------------------------------------------===//

void checkCrossEntropyGrad(const Shape &shape, int64_t shift,
                           const std::vector<double> &targetValues,
                           int64_t maxChecks) {
  const std::string what = "cross_entropy_grad " + shapeToString(shape) +
                           " shift " + std::to_string(shift);
  Tensor logits = randomTensor<double>(shape, -3, 3, 51);
  Shape tShape(shape.begin(), shape.end() - 1);
  Tensor targets = tensor<int64_t>(tShape, targetValues);
  Tensor dloss = tensor<double>({}, {0.75});
  AttrMap am = attrs({{"shift", shift}});
  Tensor dx(DType::F64, shape);
  runOk("cross_entropy_grad", {&logits, &targets, &dloss}, dx, am);
  checkFiniteDiff("cross_entropy", {&logits, &targets}, am, dloss, 0, dx, what,
                  maxChecks);
  // Uncounted rows (ignored, or the last of a sequence) are exactly 0.
  const int64_t v = shape.back(), rows = numElements(tShape);
  const int64_t seq = shift ? tShape.back() : 1;
  for (int64_t r = 0; r < rows; ++r) {
    bool counted = shift ? (r % seq != seq - 1 && targetValues[r + 1] != -100)
                         : targetValues[r] != -100;
    if (counted)
      continue;
    for (int64_t i = 0; i < v; ++i)
      ASSERT_EQ(dx.as<double>()[r * v + i], 0.0) << what << " row " << r;
  }
  // f32 agrees.
  Tensor l32 = toF32(logits), d32 = toF32(dloss);
  Tensor dx32(DType::F32, shape);
  runOk("cross_entropy_grad", {&l32, &targets, &d32}, dx32, am);
  expectClose(dx32, dx, 1e-6, what + " f32");
}

std::vector<double> someTargets(int64_t count, int64_t vocab, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  std::vector<double> t;
  for (int64_t i = 0; i < count; ++i)
    t.push_back(i % 5 == 3 ? -100 : double(pick(gen)));
  return t;
}

TEST(CrossEntropyGrad, MatchesFiniteDifferences) {
  checkCrossEntropyGrad({2, 5, 7}, 1, someTargets(10, 7, 1), 1000);
  checkCrossEntropyGrad({2, 5, 7}, 0, someTargets(10, 7, 2), 1000);
  checkCrossEntropyGrad({6, 4}, 0, someTargets(6, 4, 3), 1000);
  checkCrossEntropyGrad({6, 4}, 1, someTargets(6, 4, 4), 1000);
  checkCrossEntropyGrad({2, 40, 1000}, 1, someTargets(80, 1000, 5), 40);
}

TEST(CrossEntropyGrad, NothingCountedIsZero) {
  Tensor logits = tensor<double>({1, 2, 2}, {1, 2, 3, 4});
  Tensor targets = tensor<int64_t>({1, 2}, {0, -100});
  Tensor dloss = tensor<double>({}, {1});
  Tensor dx(DType::F64, {1, 2, 2});
  runOk("cross_entropy_grad", {&logits, &targets, &dloss}, dx,
        attrs({{"shift", int64_t(1)}}));
  expectExact(dx, {0, 0, 0, 0});
  Tensor dlossV = tensor<double>({1}, {1});
  expectError("cross_entropy_grad", {&logits, &targets, &dlossV}, dx);
}

//===----------------------------------------------------------------------===//
// adamw_update, sgd_update
//===----------------------------------------------------------------------===//

const std::vector<double> kParam = {0.5, -1.25, 2.0, 0.0, -0.3};
const std::vector<std::vector<double>> kGrads = {{0.1, -0.2, 0.3, 0.4, -0.5},
                                                 {1.5, 0.25, -0.75, 0.0, 0.05},
                                                 {-0.3, 0.6, 0.9, -1.2, 0.2}};
const double kScale = 0.5;

/// Runs `op` three times in place on (param, state...) with kGrads.
template <typename T>
void runSteps(const char *op, const Tensor &param,
              const std::vector<const Tensor *> &state, double lr,
              bool withStep, const AttrMap &am) {
  Tensor lrT = tensor<T>({}, {lr}), scaleT = tensor<T>({}, {kScale});
  for (int64_t step = 1; step <= 3; ++step) {
    Tensor grad = tensor<T>({int64_t(kParam.size())}, kGrads[step - 1]);
    Tensor stepT = tensor<int64_t>({}, {double(step)});
    std::vector<const Tensor *> ins = {&param};
    ins.insert(ins.end(), state.begin(), state.end());
    ins.push_back(&grad);
    ins.push_back(&lrT);
    if (withStep)
      ins.push_back(&stepT);
    ins.push_back(&scaleT);
    std::vector<const Tensor *> outs = {&param};
    outs.insert(outs.end(), state.begin(), state.end());
    Status s = runMulti(op, ins, outs, am);
    ASSERT_TRUE(s.ok()) << s.message();
  }
}

TEST(AdamWUpdate, MatchesTorchAndNaiveLoop) {
  // torch.optim.AdamW(lr=0.01, betas=(0.9, 0.99), eps=1e-6,
  // weight_decay=0.1), float64, grads kGrads * 0.5, three steps.
  const std::vector<double> torchP = {0.4759620669578586, -1.2441079735586418,
                                      1.985969281474135, -0.012280489241805595,
                                      -0.28128958147909033};
  const std::vector<double> torchM = {0.05654999999999999, 0.03314999999999999,
                                      0.023399999999999997,
                                      -0.043799999999999985, -0.008};
  const std::vector<double> torchV = {
      0.005818252500000005, 0.001152697500000001, 0.0036377100000000036,
      0.003992040000000003, 0.0007187500000000006};
  const double lr = 0.01, b1 = 0.9, b2 = 0.99, eps = 1e-6, wd = 0.1;
  // The naive loop, in the order PyTorch applies the terms.
  std::vector<double> p = kParam, m(5, 0.0), v(5, 0.0);
  for (int step = 1; step <= 3; ++step)
    for (size_t i = 0; i < 5; ++i) {
      double g = kGrads[step - 1][i] * kScale;
      p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double mhat = m[i] / (1 - std::pow(b1, step));
      double vhat = v[i] / (1 - std::pow(b2, step));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(p[i], torchP[i], 1e-14);
    EXPECT_NEAR(m[i], torchM[i], 1e-15);
    EXPECT_NEAR(v[i], torchV[i], 1e-15);
  }
  AttrMap am = attrs(
      {{"beta1", b1}, {"beta2", b2}, {"epsilon", eps}, {"weight_decay", wd}});
  Tensor param = tensor<double>({5}, kParam);
  Tensor mT(DType::F64, {5}), vT(DType::F64, {5});
  std::fill(mT.as<double>(), mT.as<double>() + 5, 0.0);
  std::fill(vT.as<double>(), vT.as<double>() + 5, 0.0);
  runSteps<double>("adamw_update", param, {&mT, &vT}, lr, true, am);
  expectNear(param, torchP, 1e-14, "adamw param");
  expectNear(mT, torchM, 1e-15, "adamw m");
  expectNear(vT, torchV, 1e-15, "adamw v");
  // f32 with the same settings.
  Tensor p32 = tensor<float>({5}, kParam);
  Tensor m32 = tensor<float>({5}, {0, 0, 0, 0, 0}),
         v32 = tensor<float>({5}, {0, 0, 0, 0, 0});
  runSteps<float>("adamw_update", p32, {&m32, &v32}, lr, true, am);
  expectNear(p32, torchP, 1e-6, "adamw f32 param");
  expectNear(m32, torchM, 1e-6, "adamw f32 m");
}

TEST(AdamWUpdate, DefaultsParallelAndDistinctOutputs) {
  // Defaults (0.9, 0.999, 1e-8, 0.01), a parallel size, step as an f32
  // scalar, outputs in other buffers than the inputs.
  const int64_t n = 100000;
  Tensor p = randomTensor<float>({n}, -1, 1, 61);
  Tensor m = randomTensor<float>({n}, -0.1, 0.1, 62);
  Tensor v = randomTensor<float>({n}, 0, 0.01, 63);
  Tensor g = randomTensor<float>({n}, -1, 1, 64);
  Tensor lr = tensor<float>({}, {1e-3}), step = tensor<float>({}, {7}),
         scale = tensor<float>({}, {0.25});
  Tensor po(DType::F32, {n}), mo(DType::F32, {n}), vo(DType::F32, {n});
  Status s = runMulti("adamw_update", {&p, &m, &v, &g, &lr, &step, &scale},
                      {&po, &mo, &vo});
  ASSERT_TRUE(s.ok()) << s.message();
  std::vector<double> wantP, wantM, wantV;
  std::vector<double> vp = values(p), vm = values(m), vv = values(v),
                      vg = values(g);
  const double l = double(1e-3f);
  for (int64_t i = 0; i < n; ++i) {
    double gi = vg[i] * 0.25;
    double mi = 0.9 * vm[i] + 0.1 * gi, vi = 0.999 * vv[i] + 0.001 * gi * gi;
    double mhat = mi / (1 - std::pow(0.9, 7)),
           vhat = vi / (1 - std::pow(0.999, 7));
    wantP.push_back(vp[i] * (1 - l * 0.01) -
                    l * mhat / (std::sqrt(vhat) + 1e-8));
    wantM.push_back(mi);
    wantV.push_back(vi);
  }
  expectNear(po, wantP, 1e-6, "param");
  expectNear(mo, wantM, 1e-6, "m");
  expectNear(vo, wantV, 1e-6, "v");
  expectExact(p, vp, "input param untouched");
}

TEST(AdamWUpdate, Errors) {
  Tensor p = tensor<float>({2}, {1, 2});
  Tensor lr = tensor<float>({}, {0.1}), scale = tensor<float>({}, {1});
  Tensor step0 = tensor<int64_t>({}, {0}), step1 = tensor<int64_t>({}, {1});
  Tensor lrD = tensor<double>({}, {0.1}), lrV = tensor<float>({1}, {0.1});
  Tensor p3 = tensor<float>({3}, {1, 2, 3});
  auto err = [&](const std::vector<const Tensor *> &ins,
                 const std::vector<const Tensor *> &outs,
                 const AttrMap &am = {}) {
    Status s = runMulti("adamw_update", ins, outs, am);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message().rfind("adamw_update:", 0), 0u) << s.message();
  };
  err({&p, &p, &p, &p, &lr, &step0, &scale}, {&p, &p, &p});  // step 0
  err({&p, &p, &p, &p, &lrD, &step1, &scale}, {&p, &p, &p}); // lr dtype
  err({&p, &p, &p, &p, &lrV, &step1, &scale}, {&p, &p, &p}); // lr rank
  err({&p, &p, &p3, &p, &lr, &step1, &scale}, {&p, &p, &p}); // v shape
  err({&p, &p, &p, &p, &lr, &step1}, {&p, &p, &p});          // 6 inputs
  err({&p, &p, &p, &p, &lr, &step1, &scale}, {&p, &p});      // 2 outputs
  err({&p, &p, &p, &p, &lr, &step1, &scale}, {&p, &p, &p},
      attrs({{"beta1", 1.0}}));
}

TEST(SgdUpdate, MatchesTorchAndNaiveLoop) {
  // torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01,
  // nesterov=False/True) and SGD(lr=0.1, weight_decay=0.01), float64.
  struct Case {
    double momentum;
    int64_t nesterov;
    std::vector<double> p, buf;
  };
  const Case cases[] = {
      {0.9,
       0,
       {0.35624139450000003, -1.2696689887500001, 1.9744090830000003,
        0.005875979999999996, -0.24541091469999998},
       {0.5781410549999999, 0.2978273875, 0.28807917000000005, -0.4385598,
        -0.08744385300000002}},
      {0.9,
       1,
       {0.3043596562755, -1.29649891283625, 1.9484887943969997,
        0.045425822819999996, -0.2376377238673},
       {0.57737259855, 0.297908093875, 0.2881237137, -0.438883278,
        -0.08705445333000002}},
      {0,
       0,
       {0.4335864945, -1.27876123875, 1.9714984830000002, 0.040039979999999996,
        -0.2866483747},
       {0, 0, 0, 0, 0}},
  };
  const double lr = 0.1, wd = 0.01;
  for (const Case &c : cases) {
    const std::string what = "sgd momentum " + std::to_string(c.momentum) +
                             " nesterov " + std::to_string(c.nesterov);
    std::vector<double> p = kParam, buf(5, 0.0);
    for (int step = 1; step <= 3; ++step)
      for (size_t i = 0; i < 5; ++i) {
        double g = kGrads[step - 1][i] * kScale + wd * p[i];
        if (c.momentum != 0) {
          buf[i] = c.momentum * buf[i] + g;
          g = c.nesterov ? g + c.momentum * buf[i] : buf[i];
        }
        p[i] -= lr * g;
      }
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_NEAR(p[i], c.p[i], 1e-15) << what;
      EXPECT_NEAR(buf[i], c.buf[i], 1e-15) << what;
    }
    AttrMap am = attrs({{"momentum", c.momentum},
                        {"weight_decay", wd},
                        {"nesterov", c.nesterov}});
    Tensor param = tensor<double>({5}, kParam);
    Tensor bufT = tensor<double>({5}, {0, 0, 0, 0, 0});
    runSteps<double>("sgd_update", param, {&bufT}, lr, false, am);
    expectNear(param, c.p, 1e-14, what + " param");
    expectNear(bufT, c.buf, 1e-14, what + " buf");
    Tensor p32 = tensor<float>({5}, kParam);
    Tensor b32 = tensor<float>({5}, {0, 0, 0, 0, 0});
    runSteps<float>("sgd_update", p32, {&b32}, lr, false, am);
    expectNear(p32, c.p, 1e-6, what + " f32 param");
  }
}

TEST(SgdUpdate, Errors) {
  Tensor p = tensor<double>({2}, {1, 2});
  Tensor lr = tensor<double>({}, {0.1}), scale = tensor<double>({}, {1});
  Tensor lrF = tensor<float>({}, {0.1});
  auto err = [&](const std::vector<const Tensor *> &ins,
                 const std::vector<const Tensor *> &outs,
                 const AttrMap &am = {}) {
    Status s = runMulti("sgd_update", ins, outs, am);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message().rfind("sgd_update:", 0), 0u) << s.message();
  };
  err({&p, &p, &p, &lrF, &scale}, {&p, &p}); // lr dtype
  err({&p, &p, &p, &lr}, {&p, &p});
  err({&p, &p, &p, &lr, &scale}, {&p, &p}, attrs({{"nesterov", int64_t(1)}}));
  err({&p, &p, &p, &lr, &scale}, {&p, &p}, attrs({{"momentum", -0.5}}));
  Tensor pi = tensor<int64_t>({2}, {1, 2});
  Tensor li = tensor<int64_t>({}, {1});
  err({&pi, &pi, &pi, &li, &li}, {&pi, &pi}); // float only
}

} // namespace
