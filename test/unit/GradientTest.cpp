//===- GradientTest.cpp - Every gradient rule against finite differences ---===//
//
// ONNX Runtime's GradientChecker, for `lc`: each case is a small float64
// function of parameters; the harness appends loss = sum(out * W) for a
// random W, runs lc-autodiff, compiles to an artifact, executes it on the CPU
// runtime and compares every gradient element with a central difference.
//
//===----------------------------------------------------------------------===//
#include "compiler/artifact/ArtifactBuilder.h"
#include "dialects/lc/LcOps.h"
#include "passes/Passes.h"
#include "runtime/Executor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <random>

using namespace mlir;
using namespace longctx;

namespace {

struct GradientCase {
  const char *name;
  /// func.func @main returning one f64 tensor; parameters are lc.param ops.
  std::string source;
  /// Non-parameter arguments, in order (index tensors, masks).
  std::vector<Tensor> arguments;
  /// Parameters are drawn uniformly from [lo, hi] (keep log/sqrt positive).
  double lo = -1.0, hi = 1.0;
  double tolerance = 1e-6;
  /// Finite-difference step (larger where the function goes through float32).
  double step = 1e-6;
};

Tensor indices(Shape shape, std::vector<int64_t> values) {
  Tensor t(DType::I64, std::move(shape));
  std::copy(values.begin(), values.end(), t.as<int64_t>());
  return t;
}

Tensor mask(Shape shape, std::vector<int> values) {
  Tensor t(DType::Bool, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i)
    t.as<uint8_t>()[i] = uint8_t(values[i]);
  return t;
}

/// Appends loss = reduce_sum(out * W) with a random constant W.
void appendWeightedSum(func::FuncOp func, std::mt19937_64 &rng) {
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  OpBuilder b(ret);
  Value out = ret.getOperand(0);
  auto type = cast<RankedTensorType>(out.getType());
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> w(size_t(type.getNumElements()));
  for (double &v : w)
    v = dist(rng);
  Value weights = b.create<lc::ConstantOp>(ret.getLoc(), type,
                                           DenseElementsAttr::get(type, ArrayRef<double>(w)));
  Value product = b.create<lc::MulOp>(ret.getLoc(), out, weights);
  SmallVector<int64_t> all = llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
  Value loss = type.getRank() == 0 ? product
                                   : b.create<lc::ReduceSumOp>(ret.getLoc(), product,
                                                               b.getDenseI64ArrayAttr(all),
                                                               b.getBoolAttr(false))
                                         .getResult();
  b.create<func::ReturnOp>(ret.getLoc(), loss);
  ret.erase();
  func.setType(FunctionType::get(func.getContext(), func.getArgumentTypes(), {loss.getType()}));
}

class GradientCheck : public ::testing::TestWithParam<GradientCase> {};

TEST_P(GradientCheck, MatchesFiniteDifferences) {
  const GradientCase &c = GetParam();
  MLIRContext context;
  context.loadDialect<lc::LcDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(c.source, &context);
  ASSERT_TRUE(module) << "case does not parse";
  auto func = module->lookupSymbol<func::FuncOp>("main");
  std::mt19937_64 rng(1234);
  appendWeightedSum(func, rng);

  PassManager pm(&context);
  pm.addPass(createLcAutodiff());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createLcLowerMiniSequence()); // a no-op without chunks
  ASSERT_TRUE(succeeded(pm.run(*module))) << "lc-autodiff failed";

  // Random parameter values.
  WeightStore weights;
  std::uniform_real_distribution<double> dist(c.lo, c.hi);
  module->walk([&](lc::ParamOp p) {
    auto type = cast<RankedTensorType>(p.getType());
    auto t = std::make_shared<Tensor>(DType::F64, Shape(type.getShape().begin(), type.getShape().end()));
    for (int64_t i = 0; i < t->numElements(); ++i)
      t->as<double>()[i] = dist(rng);
    weights.payloads.emplace(p.getName().str(), t);
  });

  Artifact artifact;
  std::vector<uint8_t> data;
  ASSERT_TRUE(succeeded(buildManifest(*module, weights, {}, artifact.manifest, data)));
  artifact.data = std::make_shared<Tensor>(DType::U8, Shape{int64_t(data.size())});
  std::copy(data.begin(), data.end(), static_cast<uint8_t *>(artifact.data->data()));
  Result<CpuExecutor> exec = CpuExecutor::create(std::move(artifact));
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  const Manifest &m = exec->manifest();
  ASSERT_EQ(m.inputs.size(), c.arguments.size());
  for (size_t i = 0; i < c.arguments.size(); ++i)
    ASSERT_TRUE(exec->setInput(m.tensors[m.inputs[i]].name, c.arguments[i].ref()).ok());

  auto lossNow = [&]() {
    EXPECT_TRUE(exec->run().ok());
    return exec->tensor(m.outputs[0]).as<double>()[0];
  };
  lossNow();
  ASSERT_GT(m.outputs.size(), 1u) << "no gradients";
  for (size_t o = 1; o < m.outputs.size(); ++o) {
    std::string name = m.tensors[m.outputs[o]].name.substr(strlen("grad/"));
    int64_t weightId = -1;
    for (size_t t = 0; t < m.tensors.size(); ++t)
      if (m.tensors[t].kind == TensorKind::Weight && m.tensors[t].name == name)
        weightId = int64_t(t);
    ASSERT_GE(weightId, 0) << name;
    lossNow();
    TensorRef gradRef = exec->tensor(m.outputs[o]);
    std::vector<double> analytic(gradRef.as<double>(), gradRef.as<double>() + gradRef.numElements());
    double scale = 1e-12;
    for (double g : analytic)
      scale = std::max(scale, std::abs(g));
    double *w = exec->tensor(weightId).as<double>();
    const double eps = c.step;
    for (int64_t i = 0; i < int64_t(analytic.size()); ++i) {
      double saved = w[i];
      w[i] = saved + eps;
      double up = lossNow();
      w[i] = saved - eps;
      double down = lossNow();
      w[i] = saved;
      double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(analytic[i], numeric, c.tolerance * std::max(1.0, scale))
          << c.name << ": d loss / d " << name << "[" << i << "]";
    }
  }
}

/// Adds `<name>_<suffix>` for each result: `source` with @TYPE@ and
/// @RESULT@ replaced by that result's type and `return` operand.
struct ResultChoice {
  const char *suffix, *value, *type;
};
void addPerResult(std::vector<GradientCase> &all, const std::string &name,
                  const std::string &source, std::initializer_list<ResultChoice> choices) {
  for (const ResultChoice &c : choices) {
    std::string text = source;
    text.replace(text.find("@TYPE@"), 6, c.type);
    text.replace(text.find("@RESULT@"), 8, std::string(c.value) + " : " + c.type);
    static std::deque<std::string> names; // the cases keep `const char *`
    names.push_back(name + "_" + c.suffix);
    all.push_back({names.back().c_str(), text});
  }
}

std::vector<GradientCase> cases() {
  std::vector<GradientCase> all;
  auto unary = [&](const char *name, const char *op, double lo, double hi) {
    std::string src = std::string("func.func @main() -> tensor<2x3xf64> {\n"
                                  "  %x = lc.param \"x\" : tensor<2x3xf64>\n"
                                  "  %y = lc.") + op + " %x : tensor<2x3xf64>\n"
                                  "  return %y : tensor<2x3xf64>\n}\n";
    GradientCase c{name, src, {}, lo, hi};
    all.push_back(std::move(c));
  };
  unary("neg", "neg", -1, 1);
  unary("abs", "abs", -1, 1);
  unary("relu", "relu", -1, 1);
  unary("exp", "exp", -1, 1);
  unary("log", "log", 0.5, 2);
  unary("sqrt", "sqrt", 0.5, 2);
  unary("reciprocal", "reciprocal", 0.5, 2);
  unary("tanh", "tanh", -2, 2);
  unary("erf", "erf", -2, 2);
  unary("sigmoid", "sigmoid", -3, 3);
  unary("softplus", "softplus", -3, 3);
  unary("cos", "cos", -3, 3);
  unary("sin", "sin", -3, 3);
  unary("identity", "identity", -1, 1);

  auto binary = [&](const char *name, const char *op, double lo, double hi) {
    std::string src = std::string("func.func @main() -> tensor<2x3xf64> {\n"
                                  "  %a = lc.param \"a\" : tensor<2x3xf64>\n"
                                  "  %b = lc.param \"b\" : tensor<3xf64>\n"
                                  "  %y = lc.") + op +
                      " %a, %b : tensor<2x3xf64>, tensor<3xf64> -> tensor<2x3xf64>\n"
                      "  return %y : tensor<2x3xf64>\n}\n";
    all.push_back({name, src, {}, lo, hi});
  };
  binary("add_broadcast", "add", -1, 1);
  binary("sub_broadcast", "sub", -1, 1);
  binary("mul_broadcast", "mul", -1, 1);
  binary("div_broadcast", "div", 0.5, 2);
  binary("pow_broadcast", "pow", 0.5, 2);
  binary("max_broadcast", "max", -1, 1);
  binary("min_broadcast", "min", -1, 1);

  all.push_back({"where", R"(
func.func @main(%c: tensor<2x3xi1>) -> tensor<2x3xf64> {
  %x = lc.param "x" : tensor<2x3xf64>
  %y = lc.param "y" : tensor<1x3xf64>
  %r = lc.where %c, %x, %y : tensor<2x3xi1>, tensor<2x3xf64>, tensor<1x3xf64> -> tensor<2x3xf64>
  return %r : tensor<2x3xf64>
})", {}});
  all.back().arguments.push_back(mask({2, 3}, {1, 0, 1, 0, 0, 1}));

  all.push_back({"cast_roundtrip", R"(
func.func @main() -> tensor<4xf64> {
  %x = lc.param "x" : tensor<4xf64>
  %f = lc.cast %x : tensor<4xf64> -> tensor<4xf32>
  %s = lc.mul %f, %f : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %y = lc.cast %s : tensor<4xf32> -> tensor<4xf64>
  return %y : tensor<4xf64>
})", {}, -1, 1, 1e-4, 1e-2});

  all.push_back({"matmul_batch_broadcast", R"(
func.func @main() -> tensor<2x3x5xf64> {
  %a = lc.param "a" : tensor<2x3x4xf64>
  %b = lc.param "b" : tensor<4x5xf64>
  %y = lc.matmul %a, %b : tensor<2x3x4xf64>, tensor<4x5xf64> -> tensor<2x3x5xf64>
  return %y : tensor<2x3x5xf64>
})"});
  all.push_back({"gemm_transposed_bias", R"(
func.func @main() -> tensor<3x5xf64> {
  %a = lc.param "a" : tensor<4x3xf64>
  %b = lc.param "b" : tensor<5x4xf64>
  %c = lc.param "c" : tensor<5xf64>
  %y = lc.gemm %a, %b, %c {alpha = 0.5 : f64, beta = 2.0 : f64, trans_a = true, trans_b = true} : (tensor<4x3xf64>, tensor<5x4xf64>, tensor<5xf64>) -> tensor<3x5xf64>
  return %y : tensor<3x5xf64>
})"});
  all.push_back({"softmax_middle_axis", R"(
func.func @main() -> tensor<2x4x3xf64> {
  %x = lc.param "x" : tensor<2x4x3xf64>
  %y = lc.softmax %x {axis = 1 : i64} : tensor<2x4x3xf64>
  return %y : tensor<2x4x3xf64>
})"});
  all.push_back({"log_softmax", R"(
func.func @main() -> tensor<3x5xf64> {
  %x = lc.param "x" : tensor<3x5xf64>
  %y = lc.log_softmax %x {axis = 1 : i64} : tensor<3x5xf64>
  return %y : tensor<3x5xf64>
})"});
  all.push_back({"layer_norm", R"(
func.func @main() -> tensor<3x6xf64> {
  %x = lc.param "x" : tensor<3x6xf64>
  %s = lc.param "scale" : tensor<6xf64>
  %b = lc.param "bias" : tensor<6xf64>
  %y = lc.layer_norm %x, %s, %b {axis = 1 : i64, epsilon = 1.0e-5 : f64} : (tensor<3x6xf64>, tensor<6xf64>, tensor<6xf64>) -> tensor<3x6xf64>
  return %y : tensor<3x6xf64>
})"});
  all.push_back({"rms_norm_decomposed", R"(
func.func @main() -> tensor<2x3x8xf64> {
  %x = lc.param "x" : tensor<2x3x8xf64>
  %w = lc.param "w" : tensor<8xf64>
  %sq = lc.mul %x, %x : tensor<2x3x8xf64>, tensor<2x3x8xf64> -> tensor<2x3x8xf64>
  %m = lc.reduce_mean %sq {axes = array<i64: 2>} : tensor<2x3x8xf64> -> tensor<2x3x1xf64>
  %eps = lc.constant dense<1.0e-5> : tensor<f64>
  %v = lc.add %m, %eps : tensor<2x3x1xf64>, tensor<f64> -> tensor<2x3x1xf64>
  %r = lc.sqrt %v : tensor<2x3x1xf64>
  %i = lc.reciprocal %r : tensor<2x3x1xf64>
  %n = lc.mul %x, %i : tensor<2x3x8xf64>, tensor<2x3x1xf64> -> tensor<2x3x8xf64>
  %y = lc.mul %n, %w : tensor<2x3x8xf64>, tensor<8xf64> -> tensor<2x3x8xf64>
  return %y : tensor<2x3x8xf64>
})"});
  all.push_back({"rms_norm_fused", R"(
func.func @main() -> tensor<2x3x8xf64> {
  %x = lc.param "x" : tensor<2x3x8xf64>
  %w = lc.param "w" : tensor<8xf64>
  %y = lc.rms_norm %x, %w {epsilon = 1.0e-5 : f64} : tensor<2x3x8xf64>, tensor<8xf64> -> tensor<2x3x8xf64>
  return %y : tensor<2x3x8xf64>
})"});
  all.push_back({"reductions", R"(
func.func @main() -> tensor<2xf64> {
  %x = lc.param "x" : tensor<2x3x4xf64>
  %s = lc.reduce_sum %x {axes = array<i64: 1>} : tensor<2x3x4xf64> -> tensor<2x1x4xf64>
  %m = lc.reduce_mean %s {axes = array<i64: 1, 2>, keepdims = false} : tensor<2x1x4xf64> -> tensor<2xf64>
  %mx = lc.reduce_max %x {axes = array<i64: 1, 2>, keepdims = false} : tensor<2x3x4xf64> -> tensor<2xf64>
  %y = lc.add %m, %mx : tensor<2xf64>, tensor<2xf64> -> tensor<2xf64>
  return %y : tensor<2xf64>
})"});
  all.push_back({"transpose_reshape_expand", R"(
func.func @main() -> tensor<3x2x4xf64> {
  %x = lc.param "x" : tensor<2x3x1xf64>
  %e = lc.expand %x : tensor<2x3x1xf64> -> tensor<2x3x4xf64>
  %t = lc.transpose %e {perm = array<i64: 1, 0, 2>} : tensor<2x3x4xf64> -> tensor<3x2x4xf64>
  %r = lc.reshape %t : tensor<3x2x4xf64> -> tensor<6x4xf64>
  %z = lc.exp %r : tensor<6x4xf64>
  %y = lc.reshape %z : tensor<6x4xf64> -> tensor<3x2x4xf64>
  return %y : tensor<3x2x4xf64>
})"});
  all.push_back({"slice_negative_step_and_concat", R"(
func.func @main() -> tensor<2x5xf64> {
  %x = lc.param "x" : tensor<2x6xf64>
  %a = lc.slice %x {starts = array<i64: 0, 5>, sizes = array<i64: 2, 3>, steps = array<i64: 1, -2>} : tensor<2x6xf64> -> tensor<2x3xf64>
  %b = lc.slice %x {starts = array<i64: 0, 0>, sizes = array<i64: 2, 2>, steps = array<i64: 1, 1>} : tensor<2x6xf64> -> tensor<2x2xf64>
  %s = lc.mul %a, %a : tensor<2x3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
  %y = lc.concat %s, %b {axis = 1 : i64} : (tensor<2x3xf64>, tensor<2x2xf64>) -> tensor<2x5xf64>
  return %y : tensor<2x5xf64>
})"});
  all.push_back({"gather_embedding", R"(
func.func @main(%ids: tensor<2x3xi64>) -> tensor<2x3x4xf64> {
  %table = lc.param "table" : tensor<5x4xf64>
  %y = lc.gather %table, %ids {axis = 0 : i64} : tensor<5x4xf64>, tensor<2x3xi64> -> tensor<2x3x4xf64>
  return %y : tensor<2x3x4xf64>
})", {}});
  all.back().arguments.push_back(indices({2, 3}, {0, 4, 4, -1, 2, 0}));
  all.push_back({"trilu_and_cumsum", R"(
func.func @main() -> tensor<4x4xf64> {
  %x = lc.param "x" : tensor<4x4xf64>
  %t = lc.trilu %x {upper = false, k = 0 : i64} : tensor<4x4xf64>
  %y = lc.cumsum %t {axis = 1 : i64, exclusive = true} : tensor<4x4xf64>
  return %y : tensor<4x4xf64>
})"});
  all.push_back({"selective_scan", R"(
func.func @main() -> tensor<2x7x3xf64> {
  %u = lc.param "u" : tensor<2x7x3xf64>
  %d = lc.param "delta" : tensor<2x7x3xf64>
  %a = lc.param "A" : tensor<3x4xf64>
  %b = lc.param "B" : tensor<2x7x4xf64>
  %c = lc.param "C" : tensor<2x7x4xf64>
  %sp = lc.softplus %d : tensor<2x7x3xf64>
  %y = lc.selective_scan %u, %sp, %a, %b, %c : (tensor<2x7x3xf64>, tensor<2x7x3xf64>, tensor<3x4xf64>, tensor<2x7x4xf64>, tensor<2x7x4xf64>) -> tensor<2x7x3xf64>
  return %y : tensor<2x7x3xf64>
})"});
  // One case per result of a two-result op: the same body returning each.
  addPerResult(all, "selective_scan_state", R"(
func.func @main() -> @TYPE@ {
  %u = lc.param "u" : tensor<2x5x3xf64>
  %d = lc.param "delta" : tensor<2x5x3xf64>
  %a = lc.param "A" : tensor<3x4xf64>
  %b = lc.param "B" : tensor<2x5x4xf64>
  %c = lc.param "C" : tensor<2x5x4xf64>
  %h0 = lc.param "h0" : tensor<2x3x4xf64>
  %sp = lc.softplus %d : tensor<2x5x3xf64>
  %y, %h = lc.selective_scan_state %u, %sp, %a, %b, %c, %h0 : (tensor<2x5x3xf64>, tensor<2x5x3xf64>, tensor<3x4xf64>, tensor<2x5x4xf64>, tensor<2x5x4xf64>, tensor<2x3x4xf64>) -> (tensor<2x5x3xf64>, tensor<2x3x4xf64>)
  return @RESULT@
})",
               {{"output", "%y", "tensor<2x5x3xf64>"}, {"final", "%h", "tensor<2x3x4xf64>"}});
  addPerResult(all, "mini_sequence_carried_scan", R"(
func.func @main() -> @TYPE@ {
  %u = lc.param "u" : tensor<7x3xf64>
  %d = lc.param "delta" : tensor<7x3xf64>
  %a = lc.param "A" : tensor<3x4xf64>
  %b = lc.param "B" : tensor<7x4xf64>
  %c = lc.param "C" : tensor<7x4xf64>
  %h0 = lc.param "h0" : tensor<1x3x4xf64>
  %sp = lc.softplus %d : tensor<7x3xf64>
  %y, %hf, %hist = lc.mini_sequence(%u, %sp, %a, %b, %c, %h0) {chunks = 3 : i64, carried = 1 : i64, split = array<i1: true, true, false, true, true, false>, sum = array<i1: false>} : (tensor<7x3xf64>, tensor<7x3xf64>, tensor<3x4xf64>, tensor<7x4xf64>, tensor<7x4xf64>, tensor<1x3x4xf64>) -> (tensor<7x3xf64>, tensor<1x3x4xf64>, tensor<3x3x4xf64>) {
  ^bb0(%uc: tensor<3x3xf64>, %dc: tensor<3x3xf64>, %ac: tensor<3x4xf64>, %bc: tensor<3x4xf64>, %cc: tensor<3x4xf64>, %s: tensor<1x3x4xf64>):
    %u3 = lc.reshape %uc : tensor<3x3xf64> -> tensor<1x3x3xf64>
    %d3 = lc.reshape %dc : tensor<3x3xf64> -> tensor<1x3x3xf64>
    %b3 = lc.reshape %bc : tensor<3x4xf64> -> tensor<1x3x4xf64>
    %c3 = lc.reshape %cc : tensor<3x4xf64> -> tensor<1x3x4xf64>
    %y3, %next = lc.selective_scan_state %u3, %d3, %ac, %b3, %c3, %s : (tensor<1x3x3xf64>, tensor<1x3x3xf64>, tensor<3x4xf64>, tensor<1x3x4xf64>, tensor<1x3x4xf64>, tensor<1x3x4xf64>) -> (tensor<1x3x3xf64>, tensor<1x3x4xf64>)
    %y2 = lc.reshape %y3 : tensor<1x3x3xf64> -> tensor<3x3xf64>
    lc.yield %y2, %next : tensor<3x3xf64>, tensor<1x3x4xf64>
  }
  return @RESULT@
})",
               {{"output", "%y", "tensor<7x3xf64>"}, {"final_state", "%hf", "tensor<1x3x4xf64>"}});
  all.push_back({"cross_entropy_next_token", R"(
func.func @main(%ids: tensor<2x4xi64>) -> tensor<f64> {
  %logits = lc.param "logits" : tensor<2x4x5xf64>
  %l = lc.cross_entropy %logits, %ids : tensor<2x4x5xf64>, tensor<2x4xi64> -> tensor<f64>
  return %l : tensor<f64>
})", {}, -2, 2});
  all.back().arguments.push_back(indices({2, 4}, {1, 4, -100, 2, 0, 3, 3, 1}));
  all.push_back({"cross_entropy_sum", R"(
func.func @main(%ids: tensor<6xi64>) -> tensor<f64> {
  %logits = lc.param "logits" : tensor<6x5xf64>
  %l = lc.cross_entropy %logits, %ids {shift = 0 : i64, reduction = 1 : i64} : tensor<6x5xf64>, tensor<6xi64> -> tensor<f64>
  return %l : tensor<f64>
})", {}, -2, 2});
  all.back().arguments.push_back(indices({6}, {1, 4, -100, 2, 0, 3}));
  // Mini-sequences: an MLP over 3 uneven chunks of 7 rows (concatenated
  // result) and an LM head + summed loss (summed result, integer labels).
  all.push_back({"mini_sequence_mlp", R"(
func.func @main() -> tensor<7x3xf64> {
  %x = lc.param "x" : tensor<7x4xf64>
  %w1 = lc.param "w1" : tensor<4x5xf64>
  %b1 = lc.param "b1" : tensor<5xf64>
  %w2 = lc.param "w2" : tensor<5x3xf64>
  %y = lc.mini_sequence(%x, %w1, %b1, %w2) {chunks = 3 : i64, split = array<i1: true, false, false, false>, sum = array<i1: false>} : (tensor<7x4xf64>, tensor<4x5xf64>, tensor<5xf64>, tensor<5x3xf64>) -> tensor<7x3xf64> {
  ^bb0(%xc: tensor<3x4xf64>, %v1: tensor<4x5xf64>, %c1: tensor<5xf64>, %v2: tensor<5x3xf64>):
    %h = lc.matmul %xc, %v1 : tensor<3x4xf64>, tensor<4x5xf64> -> tensor<3x5xf64>
    %hb = lc.add %h, %c1 : tensor<3x5xf64>, tensor<5xf64> -> tensor<3x5xf64>
    %s = lc.sigmoid %hb : tensor<3x5xf64>
    %g = lc.mul %hb, %s : tensor<3x5xf64>, tensor<3x5xf64> -> tensor<3x5xf64>
    %o = lc.matmul %g, %v2 : tensor<3x5xf64>, tensor<5x3xf64> -> tensor<3x3xf64>
    lc.yield %o : tensor<3x3xf64>
  }
  return %y : tensor<7x3xf64>
})"});
  all.push_back({"mini_sequence_lm_head_loss", R"(
func.func @main(%ids: tensor<6xi64>) -> tensor<f64> {
  %x = lc.param "x" : tensor<6x4xf64>
  %w = lc.param "w" : tensor<4x5xf64>
  %l = lc.mini_sequence(%x, %w, %ids) {chunks = 4 : i64, split = array<i1: true, false, true>, sum = array<i1: true>} : (tensor<6x4xf64>, tensor<4x5xf64>, tensor<6xi64>) -> tensor<f64> {
  ^bb0(%xc: tensor<2x4xf64>, %wc: tensor<4x5xf64>, %t: tensor<2xi64>):
    %logits = lc.matmul %xc, %wc : tensor<2x4xf64>, tensor<4x5xf64> -> tensor<2x5xf64>
    %c = lc.cross_entropy %logits, %t {shift = 0 : i64, reduction = 1 : i64} : tensor<2x5xf64>, tensor<2xi64> -> tensor<f64>
    lc.yield %c : tensor<f64>
  }
  return %l : tensor<f64>
})", {}, -2, 2});
  all.back().arguments.push_back(indices({6}, {1, 4, -100, 2, 0, 3}));
  // The LM head loop as lc-mini-sequence builds it: the gradient is made in
  // the forward (`gradients`), the backward only scales it.
  all.push_back({"mini_sequence_precomputed_gradients", R"(
func.func @main(%ids: tensor<7xi64>) -> tensor<f64> {
  %x = lc.param "x" : tensor<7x4xf64>
  %w = lc.param "w" : tensor<4x5xf64>
  %l:3 = lc.mini_sequence(%x, %w, %ids) {chunks = 3 : i64, split = array<i1: true, false, true>, sum = array<i1: true, false, true>, gradients = array<i64: 1, 2, -1>} : (tensor<7x4xf64>, tensor<4x5xf64>, tensor<7xi64>) -> (tensor<f64>, tensor<7x4xf64>, tensor<4x5xf64>) {
  ^bb0(%xc: tensor<3x4xf64>, %wc: tensor<4x5xf64>, %t: tensor<3xi64>):
    %logits = lc.matmul %xc, %wc : tensor<3x4xf64>, tensor<4x5xf64> -> tensor<3x5xf64>
    %c, %dl = lc.cross_entropy_and_grad %logits, %t : (tensor<3x5xf64>, tensor<3xi64>) -> (tensor<f64>, tensor<3x5xf64>)
    %dx = lc.gemm %dl, %wc {trans_b = true} : (tensor<3x5xf64>, tensor<4x5xf64>) -> tensor<3x4xf64>
    %dw = lc.gemm %xc, %dl {trans_a = true} : (tensor<3x4xf64>, tensor<3x5xf64>) -> tensor<4x5xf64>
    lc.yield %c, %dx, %dw : tensor<f64>, tensor<3x4xf64>, tensor<4x5xf64>
  }
  return %l#0 : tensor<f64>
})", {}, -2, 2});
  all.back().arguments.push_back(indices({7}, {1, 4, -100, 2, 0, 3, 3}));
  all.push_back({"attention_causal", R"(
func.func @main(%mask: tensor<4x4xi1>) -> tensor<2x4x3xf64> {
  %q = lc.param "q" : tensor<2x4x3xf64>
  %k = lc.param "k" : tensor<2x4x3xf64>
  %v = lc.param "v" : tensor<2x4x3xf64>
  %kt = lc.transpose %k {perm = array<i64: 0, 2, 1>} : tensor<2x4x3xf64> -> tensor<2x3x4xf64>
  %s = lc.matmul %q, %kt : tensor<2x4x3xf64>, tensor<2x3x4xf64> -> tensor<2x4x4xf64>
  %low = lc.constant dense<-1.0e30> : tensor<f64>
  %m = lc.where %mask, %s, %low : tensor<4x4xi1>, tensor<2x4x4xf64>, tensor<f64> -> tensor<2x4x4xf64>
  %p = lc.softmax %m {axis = 2 : i64} : tensor<2x4x4xf64>
  %o = lc.matmul %p, %v : tensor<2x4x4xf64>, tensor<2x4x3xf64> -> tensor<2x4x3xf64>
  return %o : tensor<2x4x3xf64>
})", {}});
  all.back().arguments.push_back(mask({4, 4}, {1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1}));
  all.push_back({"gated_mlp_fused", R"(
func.func @main() -> tensor<2x3x4xf64> {
  %x = lc.param "x" : tensor<2x3x5xf64>
  %wg = lc.param "wg" : tensor<5x6xf64>
  %wu = lc.param "wu" : tensor<5x6xf64>
  %wd = lc.param "wd" : tensor<6x4xf64>
  %y = lc.gated_mlp %x, %wg, %wu, %wd : (tensor<2x3x5xf64>, tensor<5x6xf64>, tensor<5x6xf64>, tensor<6x4xf64>) -> tensor<2x3x4xf64>
  return %y : tensor<2x3x4xf64>
})"});
  all.push_back({"gated_mlp_fused_chunked", R"(
func.func @main() -> tensor<7x4xf64> {
  %x = lc.param "x" : tensor<7x5xf64>
  %wg = lc.param "wg" : tensor<5x6xf64>
  %wu = lc.param "wu" : tensor<5x6xf64>
  %wd = lc.param "wd" : tensor<6x4xf64>
  %y = lc.gated_mlp %x, %wg, %wu, %wd {chunk_rows = 3 : i64} : (tensor<7x5xf64>, tensor<5x6xf64>, tensor<5x6xf64>, tensor<6x4xf64>) -> tensor<7x4xf64>
  return %y : tensor<7x4xf64>
})"});
  all.push_back({"attention_fused_causal_gqa", R"(
func.func @main() -> tensor<1x4x5x3xf64> {
  %q = lc.param "q" : tensor<1x4x5x3xf64>
  %k = lc.param "k" : tensor<1x2x5x3xf64>
  %v = lc.param "v" : tensor<1x2x5x3xf64>
  %o, %lse = lc.attention %q, %k, %v {causal = true, scale = 0.5 : f64} : (tensor<1x4x5x3xf64>, tensor<1x2x5x3xf64>, tensor<1x2x5x3xf64>) -> (tensor<1x4x5x3xf64>, tensor<1x4x5xf64>)
  return %o : tensor<1x4x5x3xf64>
})"});
  all.push_back({"attention_fused_bidirectional", R"(
func.func @main() -> tensor<2x1x3x4xf64> {
  %q = lc.param "q" : tensor<2x1x3x2xf64>
  %k = lc.param "k" : tensor<2x1x6x2xf64>
  %v = lc.param "v" : tensor<2x1x6x4xf64>
  %o, %lse = lc.attention %q, %k, %v {causal = false, scale = 1.0 : f64} : (tensor<2x1x3x2xf64>, tensor<2x1x6x2xf64>, tensor<2x1x6x4xf64>) -> (tensor<2x1x3x4xf64>, tensor<2x1x3xf64>)
  return %o : tensor<2x1x3x4xf64>
})"});
  return all;
}

INSTANTIATE_TEST_SUITE_P(Rules, GradientCheck, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GradientCase> &info) {
                           return std::string(info.param.name);
                         });

} // namespace
