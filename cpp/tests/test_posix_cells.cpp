// PosixStore writes of cells and other multi-part values: writev of many parts,
// and set_unpublished(), which writes a new key in place (no temp file, no
// rename) but still replaces an existing key atomically.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace fs = std::filesystem;
using zvf::Bytes;
using zvf::ByteSpan;
using zvf::PosixStore;

namespace {

class PosixCellsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("zvf-cells-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<std::string> files_under(const fs::path& dir) {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
    return out;
  }
  fs::path root_;
};

ByteSpan span_of(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

TEST_F(PosixCellsTest, ManyPartsAreConcatenatedInOrder) {
  // More parts than one writev takes, some empty, some large.
  std::vector<std::string> texts;
  std::mt19937 rng(3);
  for (int i = 0; i < 150; ++i) texts.push_back(i % 7 == 0 ? std::string() : std::string(rng() % 5000, char('a' + i % 26)));
  texts.push_back(std::string(3 << 20, 'z'));
  std::vector<ByteSpan> parts;
  std::string expect;
  for (const auto& t : texts) {
    parts.push_back(span_of(t));
    expect += t;
  }
  PosixStore store(root_.string());
  store.set_parts("a/b", parts);
  store.set_unpublished("c/d", parts);
  EXPECT_EQ(read_file(root_ / "a/b"), expect);
  EXPECT_EQ(read_file(root_ / "c/d"), expect);
  const auto got = store.get("c/d");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::string(got->begin(), got->end()), expect);
}

TEST_F(PosixCellsTest, NewKeyGetsItsDirectoriesAndLeavesNoTempFile) {
  PosixStore store(root_.string());
  const std::string head = "HD", body = "payload";
  const ByteSpan parts[2] = {span_of(head), span_of(body)};
  store.set_unpublished("0/vertices/c/1/2/3", parts);
  EXPECT_EQ(read_file(root_ / "0/vertices/c/1/2/3"), "HDpayload");
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"0/vertices/c/1/2/3"});  // no temp file left
}

TEST_F(PosixCellsTest, ExistingKeyIsReplacedAtomically) {
  // A reader holding the old file (here: a hard link to its inode) must keep
  // seeing the old bytes whole: the new value arrives by rename, not by
  // truncating and rewriting the file under the reader.
  PosixStore store(root_.string());
  const std::string old_value(100000, 'o'), new_value = "new";
  store.set("k/cell", old_value);
  fs::create_hard_link(root_ / "k/cell", root_ / "reader-view");
  const ByteSpan parts[1] = {span_of(new_value)};
  store.set_unpublished("k/cell", parts);
  EXPECT_EQ(read_file(root_ / "k/cell"), new_value);
  EXPECT_EQ(read_file(root_ / "reader-view"), old_value);
}

TEST_F(PosixCellsTest, FailureNamesTheKeyAndLeavesNothing) {
  PosixStore store(root_.string());
  store.set("file", std::string("x"));
  const std::string body = "y";
  const ByteSpan parts[1] = {span_of(body)};
  zvf::testing::expect_error([&] { store.set_unpublished("file/below", parts); }, zvf::Error::Code::IO,
                             {"file/below"});
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"file"});
}

}  // namespace
