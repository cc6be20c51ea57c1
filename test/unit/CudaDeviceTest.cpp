//===- CudaDeviceTest.cpp - CUDA probe; kernels run only where a GPU is ----===//
#include "runtime/cuda/CudaDevice.h"

#include <gtest/gtest.h>

#include <vector>

using namespace longctx;

namespace {

TEST(CudaDevice, ProbeNeverFails) {
  CudaDevices devices = probeCudaDevices();
  // Either devices, or a reason why there are none.
  EXPECT_TRUE(!devices.names.empty() || !devices.whyNone.empty());
}

TEST(CudaDevice, FillKernelMatchesCpu) {
  CudaDevices devices = probeCudaDevices();
  if (devices.names.empty())
    GTEST_SKIP() << "no CUDA device: " << devices.whyNone;
  std::vector<float> host(100000, 0.0f);
  ASSERT_TRUE(cudaFillForTest(host.data(), int64_t(host.size()), 2.5f).ok());
  for (float v : host)
    ASSERT_EQ(v, 2.5f);
}

} // namespace
