//===- ArtifactTest.cpp - The .lcx reader refuses what it cannot trust -----===//
#include "runtime/Artifact.h"
#include "runtime/Liveness.h"
#include "runtime/MemoryReport.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

using namespace longctx;

namespace {

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/" + name;
}

Manifest smallManifest() {
  Manifest m;
  m.producer = "test";
  m.mode = "inference";
  m.arenaBytes = 512;
  m.tensors.push_back({"x", DType::F32, {2, 3}, TensorKind::Input, 0});
  m.tensors.push_back({"w", DType::F32, {2, 3}, TensorKind::Weight, 0});
  m.tensors.push_back({"y", DType::F32, {2, 3}, TensorKind::Output, 256});
  m.inputs = {0};
  m.outputs = {2};
  StepDesc step{"add", {0, 1}, {2}, {}, "node/Add"};
  step.attrs.set("axis", int64_t(-1));
  step.attrs.set("epsilon", 1e-5);
  step.attrs.set("perm", std::vector<int64_t>{1, 0});
  m.schedule.push_back(step);
  return m;
}

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeAll(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Artifact, RoundTrip) {
  std::string path = tempPath("roundtrip.lcx");
  float weights[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(writeArtifact(path, smallManifest(), weights, sizeof weights, "module {}").ok());
  Result<Artifact> a = readArtifact(path);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->irText, "module {}");
  ASSERT_EQ(a->manifest.tensors.size(), 3u);
  EXPECT_EQ(a->manifest.tensors[1].kind, TensorKind::Weight);
  EXPECT_EQ(a->manifest.schedule[0].op, "add");
  EXPECT_EQ(a->manifest.schedule[0].attrs, smallManifest().schedule[0].attrs);
  EXPECT_EQ(a->manifest.schedule[0].location, "node/Add");
  EXPECT_EQ(static_cast<float *>(a->data->data())[5], 6.0f);
}

TEST(Artifact, RefusesCorruption) {
  std::string path = tempPath("corrupt.lcx");
  float weights[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(writeArtifact(path, smallManifest(), weights, sizeof weights, "module {}").ok());
  std::string good = readAll(path);

  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  writeAll(path, flipped);
  Result<Artifact> a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("corrupt"), std::string::npos) << a.status().message();

  writeAll(path, good.substr(0, good.size() - 100));
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("truncated"), std::string::npos);

  std::string wrongVersion = good;
  wrongVersion[8] = 99;
  writeAll(path, wrongVersion);
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("version"), std::string::npos);

  writeAll(path, "not an artifact at all, just text that is long enough for a header....");
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("magic"), std::string::npos);

  a = readArtifact(tempPath("does-not-exist.lcx"));
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("cannot open"), std::string::npos);
}

TEST(Artifact, RefusesTensorsOutsideTheirStorage) {
  std::string path = tempPath("outside.lcx");
  Manifest m = smallManifest();
  m.tensors[2].offset = 500;
  ASSERT_TRUE(writeArtifact(path, m, nullptr, 0, "").ok());
  Result<Artifact> a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("outside"), std::string::npos) << a.status().message();

  m = smallManifest();
  m.schedule[0].inputs = {0, 7};
  float weights[6] = {};
  ASSERT_TRUE(writeArtifact(path, m, weights, sizeof weights, "").ok());
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("out of range"), std::string::npos);

  m = smallManifest();
  m.schedule[0].outputs = {1}; // writing a weight
  ASSERT_TRUE(writeArtifact(path, m, weights, sizeof weights, "").ok());
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("read-only"), std::string::npos);
}


/// x -> t0 (worker 0), x -> t1 (worker 1), t0 + t1 -> y after the group.
Manifest parallelManifest() {
  Manifest m = smallManifest();
  m.tensors.push_back({"t0", DType::F32, {2, 3}, TensorKind::Transient, 0});
  m.tensors.push_back({"t1", DType::F32, {2, 3}, TensorKind::Transient, 0});
  m.schedule.clear();
  m.schedule.push_back({"add", {0, 1}, {3}, {}, "a", 0, 0});
  m.schedule.push_back({"add", {0, 1}, {4}, {}, "b", 0, 1});
  m.schedule.push_back({"add", {3, 4}, {2}, {}, "c"});
  return m;
}

TEST(Artifact, ParallelGroupsRoundTripAndAreChecked) {
  std::string path = tempPath("lanes.lcx");
  float weights[6] = {};
  ASSERT_TRUE(writeArtifact(path, parallelManifest(), weights, sizeof weights, "").ok());
  Result<Artifact> a = readArtifact(path);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->manifest.schedule[1].group, 0);
  EXPECT_EQ(a->manifest.schedule[1].worker, 1);
  EXPECT_EQ(a->manifest.schedule[2].group, -1);

  Manifest m = parallelManifest(); // group 0, a step outside it, group 0 again
  std::swap(m.schedule[1], m.schedule[2]);
  m.schedule[1].inputs = {0, 1};
  ASSERT_TRUE(writeArtifact(path, m, weights, sizeof weights, "").ok());
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("parallel group 0 is not contiguous"), std::string::npos)
      << a.status().message();

  m = parallelManifest(); // worker 1 reads what worker 0 writes
  m.schedule[1].inputs = {3, 1};
  ASSERT_TRUE(writeArtifact(path, m, weights, sizeof weights, "").ok());
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("worker 1 of parallel group 0 reads tensor 't0' that "
                                      "worker 0 writes"),
            std::string::npos)
      << a.status().message();

  m = parallelManifest();
  m.schedule[1].worker = kMaxWorkers;
  ASSERT_TRUE(writeArtifact(path, m, weights, sizeof weights, "").ok());
  a = readArtifact(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("lane must be [group, worker]"), std::string::npos)
      << a.status().message();
}

/// smallManifest's step with a 128-byte workspace after y.
Manifest workspaceManifest() {
  Manifest m = smallManifest();
  m.arenaBytes = 768;
  m.tensors.push_back({"node/Add/workspace", DType::U8, {128}, TensorKind::Workspace, 512});
  m.schedule[0].workspace = 3;
  return m;
}

TEST(Artifact, WorkspacesRoundTripAndAreChecked) {
  std::string path = tempPath("workspace.lcx");
  float weights[6] = {};
  ASSERT_TRUE(writeArtifact(path, workspaceManifest(), weights, sizeof weights, "").ok());
  Result<Artifact> a = readArtifact(path);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->manifest.schedule[0].workspace, 3);
  EXPECT_EQ(a->manifest.tensors[3].kind, TensorKind::Workspace);

  auto refused = [&](const Manifest &m, const std::string &why) {
    ASSERT_TRUE(writeArtifact(path, m, weights, sizeof weights, "").ok());
    Result<Artifact> r = readArtifact(path);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
  };
  Manifest m = workspaceManifest();
  m.schedule[0].workspace = 2;
  refused(m, "its workspace 'y' is not a workspace tensor (kind output)");
  m = workspaceManifest();
  m.schedule[0].workspace = 9;
  refused(m, "tensor id 9 out of range");
  m = workspaceManifest();
  m.schedule[0].inputs = {0, 3};
  refused(m, "reads workspace 'node/Add/workspace' as an input");
  m = workspaceManifest();
  m.schedule[0].outputs = {3};
  refused(m, "writes read-only tensor 'node/Add/workspace'");
  m = workspaceManifest();
  m.outputs = {3};
  refused(m, "outputs: 'node/Add/workspace' is a workspace");
  m = workspaceManifest();
  m.tensors[3].offset = 768; // past the arena
  refused(m, "outside its arena");
  m = workspaceManifest();
  m.tensors[3].offset = 320; // a GPU would fault on it
  refused(m, "tensor 'node/Add/workspace': offset 320 is not a multiple of 256");
  // Two workers of a parallel group may not share scratch.
  m = parallelManifest();
  m.tensors.push_back({"scratch", DType::U8, {64}, TensorKind::Workspace, 256});
  m.schedule[0].workspace = m.schedule[1].workspace = 5;
  refused(m, "tensor 'scratch' is written by two workers");
}

TEST(Artifact, AWorkspaceLivesForItsStepOnly) {
  Manifest m = workspaceManifest();
  m.schedule.push_back({"neg", {2}, {2}, {}, "node/Neg"});
  ScheduleLiveness live = computeLiveness(m);
  EXPECT_EQ(live.first[3], 0);
  EXPECT_EQ(live.last[3], 0);
  EXPECT_TRUE(isArenaTensor(m.tensors[3]));
  MemoryReport r = computeMemoryReport(m);
  EXPECT_EQ(r.timeline[0][size_t(MemoryCategory::Workspace)], 128u);
  EXPECT_EQ(r.timeline[1][size_t(MemoryCategory::Workspace)], 0u);
}

} // namespace
