// Store conformance suite (run on every backend) plus PosixStore specifics
// and open_store_url dispatch.
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

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace fs = std::filesystem;
using zvf::Bytes;
using zvf::Error;
using zvf::MemoryStore;
using zvf::PosixStore;
using zvf::Store;

namespace {

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

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

// ---- conformance suite ------------------------------------------------------

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "posix") {
      dir_ = std::make_unique<TempDir>();
      store_ = std::make_shared<PosixStore>(dir_->path());
    } else {
      store_ = std::make_shared<MemoryStore>();
    }
  }
  Store& s() { return *store_; }

  std::unique_ptr<TempDir> dir_;
  std::shared_ptr<Store> store_;
};

TEST_P(StoreConformance, SetGetRoundTrip) {
  s().set("a", std::string("hello"));
  ASSERT_TRUE(s().get("a"));
  EXPECT_EQ(str(*s().get("a")), "hello");

  const std::string binary("\0\x01\xff\0zz", 6);
  s().set("x/y/z", binary);
  EXPECT_EQ(str(*s().get("x/y/z")), binary);

  s().set("empty", std::string());
  ASSERT_TRUE(s().get("empty"));
  EXPECT_TRUE(s().get("empty")->empty());
  EXPECT_TRUE(s().exists("empty"));

  Bytes big(1 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7 + (i >> 9));
  s().set("0/vertices/c/1/2/3", zvf::ByteSpan(big));
  EXPECT_EQ(*s().get("0/vertices/c/1/2/3"), big);
}

TEST_P(StoreConformance, Overwrite) {
  s().set("k", std::string("a much longer first value"));
  s().set("k", std::string("short"));
  EXPECT_EQ(str(*s().get("k")), "short");
  s().set("k", std::string());
  EXPECT_EQ(str(*s().get("k")), "");
}

TEST_P(StoreConformance, MissingKeyIsNullopt) {
  EXPECT_FALSE(s().get("nope"));
  EXPECT_FALSE(s().exists("nope"));
  EXPECT_FALSE(s().get("deep/missing/key"));
  s().set("leaf", std::string("v"));
  // A key below an existing value cannot exist (on disk: ENOTDIR).
  EXPECT_FALSE(s().get("leaf/child"));
  EXPECT_FALSE(s().exists("leaf/child"));
  // A prefix of other keys is not itself a key.
  s().set("dir/file", std::string("v"));
  EXPECT_FALSE(s().get("dir"));
  EXPECT_FALSE(s().exists("dir"));
}

TEST_P(StoreConformance, ListIsRecursiveAndRelativeToRoot) {
  for (const char* k : {"a/b/c", "a/d", "ab/x", "a-b/y", "e", "zarr.json"}) s().set(k, std::string(k));
  EXPECT_EQ(sorted(s().list("")), (std::vector<std::string>{"a-b/y", "a/b/c", "a/d", "ab/x", "e", "zarr.json"}));
  EXPECT_EQ(sorted(s().list("a")), (std::vector<std::string>{"a/b/c", "a/d"}));
  EXPECT_EQ(sorted(s().list("a/")), (std::vector<std::string>{"a/b/c", "a/d"}));
  EXPECT_EQ(sorted(s().list("a/b")), (std::vector<std::string>{"a/b/c"}));
  EXPECT_EQ(s().list("e"), (std::vector<std::string>{"e"}));  // a key is its own subtree
  EXPECT_TRUE(s().list("missing").empty());
  EXPECT_TRUE(s().list("e/below").empty());
}

TEST_P(StoreConformance, Erase) {
  s().set("a/b", std::string("1"));
  s().set("a/c", std::string("2"));
  s().erase("a/b");
  EXPECT_FALSE(s().exists("a/b"));
  EXPECT_FALSE(s().get("a/b"));
  EXPECT_TRUE(s().exists("a/c"));
  EXPECT_NO_THROW(s().erase("a/b"));        // already gone
  EXPECT_NO_THROW(s().erase("never/was"));  // never existed
  EXPECT_NO_THROW(s().erase("a"));          // a prefix, not a key: nothing to do
  EXPECT_TRUE(s().exists("a/c"));
  EXPECT_EQ(s().list(""), (std::vector<std::string>{"a/c"}));
}

TEST_P(StoreConformance, ErasePrefix) {
  for (const char* k : {"a/b/c", "a/d", "ab/x", "a-b/y", "e"}) s().set(k, std::string(k));
  s().erase_prefix("a");
  EXPECT_EQ(sorted(s().list("")), (std::vector<std::string>{"a-b/y", "ab/x", "e"}));
  EXPECT_FALSE(s().exists("a/d"));
  EXPECT_NO_THROW(s().erase_prefix("a"));
  EXPECT_NO_THROW(s().erase_prefix("missing/deeper"));
  s().erase_prefix("ab/");
  EXPECT_EQ(sorted(s().list("")), (std::vector<std::string>{"a-b/y", "e"}));
  s().erase_prefix("");
  EXPECT_TRUE(s().list("").empty());
  // The store stays usable afterwards.
  s().set("again", std::string("x"));
  EXPECT_EQ(str(*s().get("again")), "x");
}

TEST_P(StoreConformance, Rename) {
  s().set("from", std::string("value"));
  s().rename("from", "to/nested/key");
  EXPECT_FALSE(s().exists("from"));
  EXPECT_EQ(str(*s().get("to/nested/key")), "value");

  s().set("other", std::string("replacement"));
  s().rename("other", "to/nested/key");  // replaces an existing value
  EXPECT_EQ(str(*s().get("to/nested/key")), "replacement");
  EXPECT_FALSE(s().exists("other"));

  s().rename("to/nested/key", "to/nested/key");  // same key: value survives
  EXPECT_EQ(str(*s().get("to/nested/key")), "replacement");

  expect_error([&] { s().rename("absent", "x"); }, Error::Code::NotFound, {"absent"});
}

TEST_P(StoreConformance, BadKeysRejected) {
  const std::vector<std::string> bad = {
      "", "/a", "/", "a//b", "a/", "./a", "a/./b", "a/.", "..", "a/../b", "../x", std::string("a\0b", 3), "a\\b",
  };
  for (const auto& k : bad) {
    SCOPED_TRACE("key=" + k);
    // The key is named in the message (except embedded NULs, which end the C string when printed).
    std::vector<std::string> needles;
    if (k.find('\0') == std::string::npos && !k.empty()) needles.push_back("'" + k + "'");
    expect_error([&] { zvf::check_key(k); }, Error::Code::InvalidArgument, needles);
    expect_error([&] { s().get(k); }, Error::Code::InvalidArgument, needles);
    expect_error([&] { s().set(k, std::string("v")); }, Error::Code::InvalidArgument, needles);
    expect_error([&] { s().exists(k); }, Error::Code::InvalidArgument, needles);
    expect_error([&] { s().erase(k); }, Error::Code::InvalidArgument, needles);
    expect_error([&] { s().rename(k, "ok"); }, Error::Code::InvalidArgument, needles);
    expect_error([&] { s().rename("ok", k); }, Error::Code::InvalidArgument, needles);
    if (!k.empty()) {  // "" is the valid whole-store prefix
      expect_error([&] { s().list(k + "/x"); }, Error::Code::InvalidArgument);
      expect_error([&] { s().erase_prefix(k + "/x"); }, Error::Code::InvalidArgument);
    }
  }
  EXPECT_TRUE(s().list("").empty());  // nothing was written by the rejected calls
  for (const char* good : {"a", "a.b", "...", ".hidden", "a/b.c/d", "0/vertices/c/-1/2/3"}) {
    EXPECT_NO_THROW(zvf::check_key(good)) << good;
  }
}

TEST_P(StoreConformance, ConcurrentSetDistinctKeys) {
  constexpr int kThreads = 8, kPerThread = 60;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half the keys share directories across threads to race on mkdir.
        // (std::string(...) + ... sidesteps a GCC 12 -Wrestrict false positive.)
        std::string key = i % 2 ? std::string("shared/d") + std::to_string(i % 5) : std::string("t") + std::to_string(t);
        key += "/k" + std::to_string(t) + "_" + std::to_string(i);
        s().set(key, key + std::string(static_cast<std::size_t>(i * 37), 'x'));
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto keys = s().list("");
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const auto& key : keys) {
    const auto v = s().get(key);
    ASSERT_TRUE(v) << key;
    EXPECT_EQ(str(*v).substr(0, key.size()), key);
  }
}

TEST_P(StoreConformance, ConcurrentOverwriteIsAtomic) {
  // Readers must only ever see a complete value written by some writer.
  constexpr int kWriters = 4, kRounds = 100;
  auto value_for = [](int w, int r) {
    const std::string head = "w" + std::to_string(w) + "r" + std::to_string(r) + ":";
    return head + std::string(static_cast<std::size_t>(1000 + (w * 7919 + r * 104729) % 50000), 'a' + w);
  };
  s().set("hot", value_for(0, 0));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done) {
      const auto v = s().get("hot");
      if (!v) { ++bad; continue; }
      const std::string got = str(*v);
      int w = -1, r = -1;
      if (std::sscanf(got.c_str(), "w%dr%d:", &w, &r) != 2 || got != value_for(w, r)) ++bad;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int r = 0; r < kRounds; ++r) s().set("hot", value_for(w, r));
    });
  }
  for (auto& th : writers) th.join();
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(s().list(""), (std::vector<std::string>{"hot"}));
}

TEST_P(StoreConformance, RootExistsAndDescribe) {
  s().set("k", std::string("v"));
  EXPECT_TRUE(s().root_exists());
  EXPECT_FALSE(s().describe().empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values("posix", "memory"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

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
  expect_error([&] { store_.set("f/g", std::string("v")); }, Error::Code::IO, {"'f/g'"});
  EXPECT_EQ(str(*store_.get("f")), "v");
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

TEST_F(PosixStoreTest, ManyProcessesOneDirectory) {
  constexpr int kProcs = 4, kKeys = 50;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        PosixStore st(dir_.path());
        for (int i = 0; i < kKeys; ++i) {
          st.set("p" + std::to_string(p) + "/k" + std::to_string(i), std::string(500, 'a' + p));
          st.set("common/k" + std::to_string(i), std::string(1000 + p, 'a' + p));
        }
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);  // skip gtest's atexit machinery in the child
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(store_.list("").size(), static_cast<std::size_t>(kProcs * kKeys + kKeys));
  for (int i = 0; i < kKeys; ++i) {
    const std::string v = str(*store_.get("common/k" + std::to_string(i)));
    ASSERT_GE(v.size(), 1000u);
    const int p = v[0] - 'a';
    EXPECT_EQ(v, std::string(1000 + p, 'a' + p));  // one writer's whole value
  }
  EXPECT_TRUE(tmp_files_under(dir_.path()).empty());
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
