//===- NpyTest.cpp - .npy reading and writing ------------------------------===//
#include "runtime/Npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

using namespace longctx;

namespace {

TEST(Npy, RoundTripsEveryDtype) {
  for (DType dtype : {DType::F32, DType::F64, DType::I64, DType::I32, DType::Bool}) {
    Tensor t(dtype, {3, 2});
    for (size_t i = 0; i < t.bytes(); ++i)
      static_cast<uint8_t *>(t.data())[i] = dtype == DType::Bool ? uint8_t(i % 2) : uint8_t(i * 7);
    std::string path = ::testing::TempDir() + "/t.npy";
    ASSERT_TRUE(writeNpy(path, t.ref()).ok());
    Result<Tensor> back = readNpy(path);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->dtype(), dtype);
    EXPECT_EQ(back->shape(), (Shape{3, 2}));
    EXPECT_EQ(0, std::memcmp(back->data(), t.data(), t.bytes()));
  }
}

TEST(Npy, ScalarAndVectorShapes) {
  for (Shape shape : {Shape{}, Shape{5}}) {
    Tensor t(DType::F32, shape);
    std::string path = ::testing::TempDir() + "/s.npy";
    ASSERT_TRUE(writeNpy(path, t.ref()).ok());
    Result<Tensor> back = readNpy(path);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->shape(), shape);
  }
}

TEST(Npy, RefusesTruncatedAndForeignFiles) {
  Tensor t(DType::F32, {100});
  std::string path = ::testing::TempDir() + "/big.npy";
  ASSERT_TRUE(writeNpy(path, t.ref()).ok());
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 8);
  Result<Tensor> r = readNpy(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);

  std::ofstream(path, std::ios::binary | std::ios::trunc) << "hello";
  r = readNpy(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a .npy"), std::string::npos);

  // A header claiming an enormous shape is refused before allocating.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write("\x93NUMPY\x01\x00", 8);
  char len[2] = {char(header.size() & 0xff), char(header.size() >> 8)};
  out.write(len, 2);
  out << header;
  out.close();
  r = readNpy(path);
  ASSERT_FALSE(r.ok());
}

} // namespace
