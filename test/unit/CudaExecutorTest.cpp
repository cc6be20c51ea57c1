//===- CudaExecutorTest.cpp - The CUDA executor against the CPU executor ---===//
//
// A small schedule (matmul with a weight, gemm with a broadcast bias, an
// elementwise op, and a parallel group of two workers) runs on both
// executors from the same artifact; outputs agree within 1e-5. Without a GPU
// the executor must refuse to load with the reason.
//
//===----------------------------------------------------------------------===//
#include "runtime/Executor.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/cuda/KernelWorkspace.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace longctx;

namespace {

/// Places the CUDA workspaces of `m`'s steps after its arena (never live
/// together here: one step at a time outside the parallel group).
void addWorkspaces(Manifest &m) {
  const size_t before = m.tensors.size();
  cuda::addCudaWorkspaces(m);
  uint64_t largest = 0;
  for (size_t i = before; i < m.tensors.size(); ++i) {
    m.tensors[i].offset = m.arenaBytes;
    largest = std::max(largest, m.tensors[i].bytes());
  }
  m.arenaBytes += largest;
}

/// x[4,3] -> h = x w (matmul, w [3,5]) -> g = gemm(h, v[5,2], c[2]) ->
/// workers: a = relu(g) (worker 0), b = neg(g) (worker 1) -> y = a + b.
Artifact smallArtifact() {
  Artifact a;
  Manifest &m = a.manifest;
  m.producer = "test";
  m.mode = "inference";
  auto add = [&](const char *name, Shape shape, TensorKind kind, uint64_t offset) {
    m.tensors.push_back({name, DType::F32, shape, kind, offset});
    return int64_t(m.tensors.size() - 1);
  };
  const int64_t x = add("x", {4, 3}, TensorKind::Input, 0);
  const int64_t w = add("w", {3, 5}, TensorKind::Weight, 0);
  const int64_t v = add("v", {5, 2}, TensorKind::Weight, 64);
  const int64_t c = add("c", {2}, TensorKind::Weight, 128);
  const int64_t h = add("h", {4, 5}, TensorKind::Transient, 256);
  const int64_t g = add("g", {4, 2}, TensorKind::Transient, 512);
  const int64_t ra = add("a", {4, 2}, TensorKind::Transient, 768);
  const int64_t rb = add("b", {4, 2}, TensorKind::Transient, 1024);
  const int64_t y = add("y", {4, 2}, TensorKind::Output, 1280);
  m.arenaBytes = 1536;
  m.inputs = {x};
  m.outputs = {y};
  m.schedule.push_back({"matmul", {x, w}, {h}, {}, "mm"});
  m.schedule.push_back({"gemm", {h, v, c}, {g}, {}, "gemm"});
  m.schedule.push_back({"relu", {g}, {ra}, {}, "relu", 0, 0});
  m.schedule.push_back({"neg", {g}, {rb}, {}, "neg", 0, 1});
  m.schedule.push_back({"add", {ra, rb}, {y}, {}, "add"});
  addWorkspaces(m); // cuBLAS's for the matmul and the gemm
  a.data = std::make_shared<Tensor>(DType::U8, Shape{192});
  float *data = static_cast<float *>(a.data->data());
  for (int i = 0; i < 15; ++i)
    data[i] = 0.1f * float(i) - 0.7f; // w
  for (int i = 0; i < 10; ++i)
    data[16 + i] = 0.3f - 0.05f * float(i); // v at 64 bytes
  data[32] = 0.25f; // c at 128 bytes
  data[33] = -0.5f;
  return a;
}

std::vector<float> runOn(Executor &exec) {
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i)
    x[size_t(i)] = std::sin(float(i));
  EXPECT_TRUE(exec.setInput("x", {DType::F32, {4, 3}, x.data()}).ok());
  Status s = exec.run();
  EXPECT_TRUE(s.ok()) << s.message();
  Result<TensorRef> y = exec.read(exec.manifest().outputs[0]);
  EXPECT_TRUE(y.ok());
  return std::vector<float>(y->as<float>(), y->as<float>() + 8);
}

// The artifact itself is sound: on the CPU, y = relu(g) - g = -min(g, 0).
TEST(CudaExecutor, TheTestArtifactRunsOnTheCpu) {
  Result<CpuExecutor> cpu = CpuExecutor::create(smallArtifact());
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  std::vector<float> y = runOn(*cpu);
  Result<TensorRef> g = cpu->read(5);
  ASSERT_TRUE(g.ok());
  int negative = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_FLOAT_EQ(y[i], -std::min(g->as<float>()[i], 0.0f)) << i;
    negative += g->as<float>()[i] < 0;
  }
  EXPECT_GT(negative, 0); // the test reaches both branches
  EXPECT_LT(negative, 8);
}

TEST(CudaExecutor, RefusesToLoadWithoutADevice) {
  if (!probeCudaDevices().names.empty())
    GTEST_SKIP() << "a CUDA device is present";
  Result<std::unique_ptr<CudaExecutor>> exec = CudaExecutor::create(smallArtifact());
  ASSERT_FALSE(exec.ok());
  const std::string &why = exec.status().message();
  EXPECT_TRUE(why.find("no CUDA device: use --device cpu") != std::string::npos ||
              why.find("built without CUDA") != std::string::npos)
      << why;
}

TEST(CudaExecutor, MatchesTheCpuExecutor) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    GTEST_SKIP() << "no CUDA device: " << devices.whyNone;
  Result<CpuExecutor> cpu = CpuExecutor::create(smallArtifact());
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Result<std::unique_ptr<CudaExecutor>> gpu = CudaExecutor::create(smallArtifact());
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  std::vector<float> want = runOn(*cpu), got = runOn(**gpu);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-5 * std::max(1.0f, std::fabs(want[i]))) << i;
  EXPECT_GE((*gpu)->allocatedBytes(), (*gpu)->plannedBytes());
}

TEST(CudaExecutor, AReplayedGraphMatchesTheCpuExecutor) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    GTEST_SKIP() << "no CUDA device: " << devices.whyNone;
  Result<CpuExecutor> cpu = CpuExecutor::create(smallArtifact());
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  CudaOptions options;
  options.graph = true;
  Result<std::unique_ptr<CudaExecutor>> gpu = CudaExecutor::create(smallArtifact(), options);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  std::vector<float> want = runOn(*cpu);
  for (int run = 0; run < 3; ++run) { // eager, captured, replayed
    std::vector<float> got = runOn(**gpu);
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-5 * std::max(1.0f, std::fabs(want[i])))
          << "run " << run << " element " << i;
  }
}

/// ids[2] (input) -> y = gather(table[4,3], ids).
Artifact gatherArtifact() {
  Artifact a;
  Manifest &m = a.manifest;
  m.producer = "test";
  m.mode = "inference";
  m.tensors.push_back({"ids", DType::I64, {2}, TensorKind::Input, 0});
  m.tensors.push_back({"table", DType::F32, {4, 3}, TensorKind::Weight, 0});
  m.tensors.push_back({"y", DType::F32, {2, 3}, TensorKind::Output, 256});
  m.arenaBytes = 512;
  m.inputs = {0};
  m.outputs = {2};
  StepDesc gather{"gather", {1, 0}, {2}, {}, "embed"};
  gather.attrs.set("axis", int64_t(0));
  m.schedule.push_back(gather);
  addWorkspaces(m);
  a.data = std::make_shared<Tensor>(DType::U8, Shape{64});
  for (int i = 0; i < 12; ++i)
    static_cast<float *>(a.data->data())[i] = float(i);
  return a;
}

// A replayed graph cannot wait for the gather's index check inside the
// step: the check is read after it and fails the run the same way.
TEST(CudaExecutor, AReplayedGraphReportsABadIndexAfterTheStep) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    GTEST_SKIP() << "no CUDA device: " << devices.whyNone;
  CudaOptions options;
  options.graph = true;
  Result<std::unique_ptr<CudaExecutor>> gpu = CudaExecutor::create(gatherArtifact(), options);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  int64_t good[2] = {3, 1}, bad[2] = {2, 9};
  for (int run = 0; run < 2; ++run) { // eager, then captured
    ASSERT_TRUE((*gpu)->setInput("ids", {DType::I64, {2}, good}).ok());
    Status s = (*gpu)->run();
    ASSERT_TRUE(s.ok()) << s.message();
    Result<TensorRef> y = (*gpu)->read(2);
    ASSERT_TRUE(y.ok());
    EXPECT_EQ(y->as<float>()[0], 9.0f); // table[3][0]
  }
  ASSERT_TRUE((*gpu)->setInput("ids", {DType::I64, {2}, bad}).ok());
  Status s = (*gpu)->run();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("step 0 (gather from 'embed'): gather: index 9 out of range for a "
                             "dim of size 4"),
            std::string::npos)
      << s.message();
  ASSERT_TRUE((*gpu)->setInput("ids", {DType::I64, {2}, good}).ok());
  EXPECT_TRUE((*gpu)->run().ok()); // the record is cleared each step
}

// An artifact compiled for the CPU plans no scratch: refused at load, not
// in the middle of a step.
TEST(CudaExecutor, RefusesAnArtifactWithoutItsWorkspaces) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    GTEST_SKIP() << "no CUDA device: " << devices.whyNone;
  Artifact a = smallArtifact();
  for (StepDesc &step : a.manifest.schedule)
    step.workspace = -1;
  Result<std::unique_ptr<CudaExecutor>> exec = CudaExecutor::create(std::move(a));
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.status().message().find("step 0 (matmul from 'mm') needs a workspace of "
                                         "33554432 bytes, the artifact plans 0: compile it with "
                                         "--device cuda"),
            std::string::npos)
      << exec.status().message();
}

TEST(CudaExecutor, ListsEveryMissingKernel) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    GTEST_SKIP() << "no CUDA device: " << devices.whyNone;
  Artifact a = smallArtifact();
  a.manifest.schedule[0].op = "attention_grad_unknown";
  a.manifest.schedule[4].op = "another_unknown";
  Result<std::unique_ptr<CudaExecutor>> exec = CudaExecutor::create(std::move(a));
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.status().message().find("another_unknown, attention_grad_unknown"),
            std::string::npos)
      << exec.status().message();
}

} // namespace
