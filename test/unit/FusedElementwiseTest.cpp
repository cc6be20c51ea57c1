//===- FusedElementwiseTest.cpp - the fused_elementwise CPU kernel --------===//
#include "KernelTestUtil.h"

#include <cmath>

namespace longctx {
namespace {

using namespace kerneltest;

AttrMap program(const std::string &text) {
  AttrMap attrs;
  attrs.set("program", text);
  return attrs;
}

/// silu(x) * dy * 0.5 over several tiles (and threads) equals the ops run
/// one after the other, bit for bit.
TEST(FusedElementwise, EqualsTheOpsOneByOne) {
  const int64_t n = 3 * 4096 + 77;
  Tensor x = randomTensor<float>({n}, -4, 4, 1), dy = randomTensor<float>({n}, -1, 1, 2);
  Tensor half = tensor<float>({}, {0.5});
  Tensor s(DType::F32, {n}), silu(DType::F32, {n}), g(DType::F32, {n}), want(DType::F32, {n});
  runOk("sigmoid", {&x}, s);
  runOk("mul", {&x, &s}, silu);
  runOk("mul", {&silu, &dy}, g);
  runOk("mul", {&g, &half}, want);
  Tensor got(DType::F32, {n});
  runOk("fused_elementwise", {&x, &dy, &half}, got, program("sigmoid 0;mul 0 3;mul 4 1;mul 5 2;"));
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(got.as<float>()[i], want.as<float>()[i]) << i;
}

// lc-fuse-elementwise fuses chains over scalars too (a loss scale, say).
TEST(FusedElementwise, RunsAChainOverScalars) {
  Tensor x = tensor<double>({}, {0.5}), y = tensor<double>({}, {-3});
  Tensor got(DType::F64, {});
  runOk("fused_elementwise", {&x, &y}, got, program("mul 0 1;exp 2;"));
  EXPECT_EQ(got.as<double>()[0], std::exp(-1.5));
}

TEST(FusedElementwise, RejectsBadPrograms) {
  Tensor x = randomTensor<float>({8}, -1, 1, 3), out(DType::F32, {8});
  Tensor row = randomTensor<float>({4}, -1, 1, 4);
  auto message = [&](const std::vector<const Tensor *> &ins, const std::string &text) {
    Status s = run("fused_elementwise", ins, out, program(text));
    EXPECT_FALSE(s.ok()) << text;
    return s.message();
  };
  EXPECT_NE(message({&x}, "matmul 0 0;").find("'matmul' is not an elementwise kernel"),
            std::string::npos);
  EXPECT_NE(message({&x}, "exp 0;mul 0 2;").find("reads value 2, which is not computed"),
            std::string::npos);
  EXPECT_NE(message({&x}, "exp zero;").find("'zero' is not a number"), std::string::npos);
  EXPECT_NE(message({&x}, " ; ").find("empty program"), std::string::npos);
  EXPECT_NE(message({&x, &row}, "add 0 1;").find("input"), std::string::npos);
}

} // namespace
} // namespace longctx
