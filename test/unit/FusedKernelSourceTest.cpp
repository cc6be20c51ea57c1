//===- FusedKernelSourceTest.cpp - CUDA C for fused elementwise chains ----===//
#include "compiler/cuda/FusedKernelSource.h"

#include <gtest/gtest.h>

namespace longctx {
namespace {

TEST(FusedKernelSource, OneLoopWithTheChainInRegisters) {
  Result<std::string> src =
      fusedKernelSource("lc_fused_7", "sigmoid 0;mul 0 2;mul 3 1;", {false, true}, DType::F32);
  ASSERT_TRUE(src.ok()) << src.status().message();
  const std::string &s = *src;
  EXPECT_NE(s.find("typedef float T;"), std::string::npos) << s;
  EXPECT_NE(s.find("extern \"C\" __global__ void lc_fused_7(const T *__restrict__ in0, "
                   "const T *__restrict__ in1, T *__restrict__ out, long long n)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("const T v0 = in0[i];"), std::string::npos) << s;
  EXPECT_NE(s.find("const T v1 = in1[0];"), std::string::npos) << s; // the scalar
  EXPECT_NE(s.find("exp(-a)"), std::string::npos) << s;                 // stable sigmoid
  EXPECT_NE(s.find("out[i] = v4;"), std::string::npos) << s;
  EXPECT_NE(s.find("(long long)blockIdx.x * blockDim.x"), std::string::npos) << s; // 64-bit
}

TEST(FusedKernelSource, SaysWhatItCannotGenerate) {
  auto error = [](const std::string &program, DType dtype = DType::F32) {
    Result<std::string> src = fusedKernelSource("k", program, {false}, dtype);
    EXPECT_FALSE(src.ok()) << program;
    return src.ok() ? std::string() : src.status().message();
  };
  EXPECT_NE(error("gather 0;").find("no CUDA code for 'gather'"), std::string::npos);
  EXPECT_NE(error("add 0;").find("'add' takes 2 operands"), std::string::npos);
  EXPECT_NE(error("exp 1;").find("reads v1 before it exists"), std::string::npos);
  EXPECT_NE(error("").find("empty program"), std::string::npos);
  EXPECT_NE(error("exp 0;", DType::BF16).find("has no CUDA code"), std::string::npos);
}

} // namespace
} // namespace longctx
