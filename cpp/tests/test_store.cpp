// The store conformance suite on PosixStore and MemoryStore, PosixStore
// specifics, and open_store_url dispatch.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store_conformance.hpp"
#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace fs = std::filesystem;
using zvf::Bytes;
using zvf::ByteSpan;
using zvf::Error;
using zvf::MemoryStore;
using zvf::PosixStore;
using zvf::Store;
using zvf::testing::StoreConformance;

namespace {

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

using zvf::testing::expect_error;

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "zvf_test_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> tmp_files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() >= 7 && name.compare(name.size() - 7, 7, ".zvftmp") == 0) out.push_back(e.path().string());
  }
  return out;
}

// ---- conformance suite (store_conformance.cpp) ------------------------------

zvf::testing::StoreBackend posix_backend() {
  zvf::testing::StoreBackend b;
  b.name = "posix";
  // Each store owns its temporary directory, removed with the last handle.
  b.make = [] {
    auto dir = std::make_shared<TempDir>();
    auto* store = new PosixStore(dir->path());
    return std::shared_ptr<Store>(store, [dir](Store* s) { delete s; });
  };
  b.reopen = [](const Store& s) -> std::shared_ptr<Store> {
    return std::make_shared<PosixStore>(dynamic_cast<const PosixStore&>(s).root());
  };
  b.cleanup = [](Store& s) { EXPECT_TRUE(tmp_files_under(dynamic_cast<PosixStore&>(s).root()).empty()); };
  return b;
}

zvf::testing::StoreBackend memory_backend() {
  zvf::testing::StoreBackend b;
  b.name = "memory";
  b.make = [] { return std::make_shared<MemoryStore>(); };
  return b;
}

INSTANTIATE_TEST_SUITE_P(Posix, StoreConformance, ::testing::Values(posix_backend()), zvf::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Memory, StoreConformance, ::testing::Values(memory_backend()), zvf::testing::backend_name);

// ---- PosixStore specifics ---------------------------------------------------

class PosixStoreTest : public ::testing::Test {
 protected:
  TempDir dir_;
  PosixStore store_{dir_.path()};
};

TEST_F(PosixStoreTest, KeysAreFilesUnderRoot) {
  store_.set("0/vertices/c/1/2/3", std::string("cell"));
  const fs::path p = fs::path(dir_.path()) / "0/vertices/c/1/2/3";
  ASSERT_TRUE(fs::is_regular_file(p));
  std::ifstream in(p, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "cell");
  EXPECT_EQ(store_.describe(), dir_.path());
  EXPECT_EQ(store_.root(), dir_.path());
}

TEST_F(PosixStoreTest, SyncFlushesAnExistingStoreAndNamesAMissingOne) {
  store_.set("0/vertices/c/0/0/0", std::string("cell"));
  store_.write_back_early(true);  // new and replaced values start their writeback as written
  const std::vector<ByteSpan> parts = {ByteSpan(reinterpret_cast<const std::uint8_t*>("new "), 4)};
  store_.set_unpublished("0/vertices/c/0/0/1", parts);
  store_.set("0/vertices/c/0/0/0", std::string("cell"));
  store_.write_back_early(false);
  store_.sync();  // syncfs of the filesystem under the root: succeeds, changes nothing
  EXPECT_EQ(store_.get("0/vertices/c/0/0/0"), Bytes({'c', 'e', 'l', 'l'}));
  EXPECT_EQ(store_.get("0/vertices/c/0/0/1"), Bytes({'n', 'e', 'w', ' '}));
  const std::string gone = dir_.path() + "/not_there";
  PosixStore missing(gone);
  expect_error([&] { missing.sync(); }, zvf::Error::Code::IO, {gone, "to sync it"});
}

TEST_F(PosixStoreTest, NoTempFilesLeftBehind) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 40; ++i) store_.set(std::string("d") + std::to_string(i % 3) + "/k" + std::to_string(t * 100 + i), std::string(100, 'x'));
      for (int i = 0; i < 40; ++i) store_.set("same", std::to_string(t) + ":" + std::to_string(i));
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(tmp_files_under(dir_.path()).empty());
  EXPECT_EQ(store_.list("").size(), 8u * 40u + 1u);
}

TEST_F(PosixStoreTest, TempFilesAreNotListed) {
  store_.set("a/b", std::string("v"));
  for (const char* name : {"a/b.12345-00ff00ff00ff00ff.zvftmp", "top.1-2.zvftmp"}) {
    std::ofstream(fs::path(dir_.path()) / name) << "partial";
  }
  EXPECT_EQ(store_.list(""), (std::vector<std::string>{"a/b"}));
  EXPECT_EQ(store_.list("a"), (std::vector<std::string>{"a/b"}));
}

TEST_F(PosixStoreTest, DirectoryPathIsNotAValue) {
  store_.set("a/b", std::string("v"));
  EXPECT_FALSE(store_.get("a"));
  EXPECT_FALSE(store_.exists("a"));
  // Writing a value where a directory is must fail loudly, naming the key.
  expect_error([&] { store_.set("a", std::string("v")); }, Error::Code::IO, {"'a'", dir_.path()});
  EXPECT_TRUE(tmp_files_under(dir_.path()).empty());
}

TEST_F(PosixStoreTest, UnreadableFileIsIOError) {
  store_.set("secret", std::string("v"));
  const fs::path p = fs::path(dir_.path()) / "secret";
  ::chmod(p.c_str(), 0);
  if (::geteuid() == 0) {
    ::chmod(p.c_str(), 0644);
    GTEST_SKIP() << "running as root: permission bits are not enforced";
  }
  expect_error([&] { store_.get("secret"); }, Error::Code::IO, {"'secret'", p.string()});
  ::chmod(p.c_str(), 0644);
}

TEST_F(PosixStoreTest, OverlongNameIsIOError) {
  // Works as root too: the filesystem rejects a 300-byte component.
  store_.set("d/other", std::string("v"));  // else the lookup stops at ENOENT for "d"
  const std::string key = "d/" + std::string(300, 'n');
  expect_error([&] { store_.get(key); }, Error::Code::IO, {key, "too long"});
  expect_error([&] { store_.set(key, std::string("v")); }, Error::Code::IO, {key});
  EXPECT_TRUE(tmp_files_under(dir_.path()).empty());
}

TEST_F(PosixStoreTest, SetBelowAFileIsIOError) {
  store_.set("f", std::string("v"));
  expect_error([&] { store_.set("f/g", std::string("v")); }, Error::Code::IO, {"'f/g'", "/f is a file, not a directory"});
  EXPECT_EQ(str(*store_.get("f")), "v");
  // A store path that is a file: the message names it.
  const std::string file = store_.describe() + "/f";
  PosixStore at_file(file);
  expect_error([&] { at_file.set("0/vertices/c/0/0/0", std::string("v")); }, Error::Code::IO,
               {file + " is a file, not a directory"});
}

TEST_F(PosixStoreTest, RootCreatedOnDemand) {
  const std::string root = dir_.path() + "/not/yet/there.zarrvectors";
  PosixStore st(root + "/");  // trailing slash is dropped
  EXPECT_EQ(st.describe(), root);
  EXPECT_FALSE(st.root_exists());
  EXPECT_TRUE(st.list("").empty());
  EXPECT_FALSE(st.get("zarr.json"));
  st.set("zarr.json", std::string("{}"));
  EXPECT_TRUE(st.root_exists());
  st.erase_prefix("");
  EXPECT_TRUE(st.root_exists());  // emptied, not removed
  EXPECT_TRUE(st.list("").empty());
}

TEST_F(PosixStoreTest, SyncKey) {
  store_.set("manifest/done", std::string("ok"));
  EXPECT_NO_THROW(store_.sync_key("manifest/done"));
  expect_error([&] { store_.sync_key("manifest/missing"); }, Error::Code::NotFound, {"manifest/missing"});
}

// ---- open_store_url ---------------------------------------------------------

TEST(OpenStoreUrl, MemoryStoresAreSharedPerName) {
  auto a1 = zvf::open_store_url("memory://test-shared-a");
  auto a2 = zvf::open_store_url("memory://test-shared-a");
  auto b = zvf::open_store_url("memory://test-shared-b");
  ASSERT_TRUE(dynamic_cast<MemoryStore*>(a1.get()));
  a1->set("k", std::string("v"));
  ASSERT_TRUE(a2->get("k"));
  EXPECT_EQ(str(*a2->get("k")), "v");
  EXPECT_FALSE(b->get("k"));
  a1.reset();
  a2.reset();
  // The map outlives its handles, so a later reader finds what was written.
  EXPECT_EQ(str(*zvf::open_store_url("memory://test-shared-a")->get("k")), "v");
  // A directly constructed MemoryStore is private.
  EXPECT_FALSE(MemoryStore().get("k"));
}

TEST(OpenStoreUrl, FileUrlsAndPlainPathsArePosix) {
  TempDir dir;
  auto s1 = zvf::open_store_url("file://" + dir.path());
  auto* p1 = dynamic_cast<PosixStore*>(s1.get());
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->root(), dir.path());
  auto s2 = zvf::open_store_url(dir.path());
  auto* p2 = dynamic_cast<PosixStore*>(s2.get());
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->root(), dir.path());
  s1->set("x", std::string("y"));
  EXPECT_EQ(str(*s2->get("x")), "y");
  auto rel = zvf::open_store_url("relative/scan.zarrvectors");
  ASSERT_TRUE(dynamic_cast<PosixStore*>(rel.get()));
  EXPECT_EQ(rel->describe(), "relative/scan.zarrvectors");
}

TEST(OpenStoreUrl, UnsupportedSchemesNameTheScheme) {
  // s3:// is routed to the S3 backend (test_s3.cpp); other object stores are not supported.
  expect_error([] { zvf::open_store_url("gs://bucket/x"); }, Error::Code::InvalidArgument, {"'gs'", "not supported"});
  expect_error([] { zvf::open_store_url("HTTPS://host/x"); }, Error::Code::InvalidArgument, {"https"});
  expect_error([] { zvf::open_store_url(""); }, Error::Code::InvalidArgument);
  expect_error([] { zvf::open_store_url("file://"); }, Error::Code::InvalidArgument, {"file://"});
}

}  // namespace
