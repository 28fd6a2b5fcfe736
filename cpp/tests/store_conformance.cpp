// The tests of the Store contract; store_conformance.hpp says how backends run them.
#include "store_conformance.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

namespace zvf::testing {

// Instantiated by the backends' test files, not here.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreConformance);

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

  Bytes big(3 << 20);  // above curl's 1 MB "Expect: 100-continue" threshold on S3
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7 + (i >> 9));
  s().set("0/vertices/c/1/2/3", ByteSpan(big));
  EXPECT_EQ(*s().get("0/vertices/c/1/2/3"), big);
}

TEST_P(StoreConformance, SetPartsConcatenates) {
  const std::string head = "head:", tail(200000, 't');
  const ByteSpan parts[] = {{reinterpret_cast<const std::uint8_t*>(head.data()), head.size()},
                            {},
                            {reinterpret_cast<const std::uint8_t*>(tail.data()), tail.size()}};
  s().set_parts("p", parts);
  EXPECT_EQ(str(*s().get("p")), head + tail);
}

TEST_P(StoreConformance, SizeOfAndReadParts) {
  std::string value(100000, 'v');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
  s().set("d/k", value);
  ASSERT_TRUE(s().size_of("d/k"));
  EXPECT_EQ(*s().size_of("d/k"), value.size());
  EXPECT_FALSE(s().size_of("d/missing"));
  EXPECT_FALSE(s().size_of("d"));  // a prefix, not a value

  // Parts filled in order; a part past the end stays untouched and is not counted.
  std::uint8_t head[8], tail = 0xEE;
  std::vector<std::uint8_t> body(value.size() - 8);
  const std::span<std::uint8_t> parts[] = {{head, 8}, {}, {body.data(), body.size()}, {&tail, 1}};
  const auto got = s().read_parts("d/k", parts);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, value.size());
  EXPECT_EQ(std::string(head, head + 8), value.substr(0, 8));
  EXPECT_EQ(std::string(body.begin(), body.end()), value.substr(8));
  EXPECT_EQ(tail, 0xEE);

  std::vector<std::uint8_t> small(10);
  const std::span<std::uint8_t> one[] = {{small.data(), small.size()}};
  EXPECT_EQ(*s().read_parts("d/k", one), 10u);
  EXPECT_EQ(std::string(small.begin(), small.end()), value.substr(0, 10));
  EXPECT_FALSE(s().read_parts("d/missing", one));
  s().set("d/empty", std::string());
  EXPECT_EQ(*s().read_parts("d/empty", one), 0u);
  EXPECT_EQ(*s().size_of("d/empty"), 0u);
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

TEST_P(StoreConformance, ListDir) {
  for (const char* k : {"a/b/c", "a/d", "ab/x", "e", "zarr.json"}) s().set(k, std::string(k));
  EXPECT_EQ(sorted(s().list_dir("")), (std::vector<std::string>{"a", "ab", "e", "zarr.json"}));
  EXPECT_EQ(sorted(s().list_dir("a")), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(sorted(s().list_dir("a/")), (std::vector<std::string>{"b", "d"}));
  EXPECT_TRUE(s().list_dir("missing").empty());
}

TEST_P(StoreConformance, ThousandsOfKeys) {
  constexpr int kKeys = 2345;  // on S3: three pages of ListObjectsV2, three DeleteObjects batches
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kKeys;) s().set("many/k" + std::to_string(i), std::to_string(i));
    });
  for (auto& th : threads) th.join();
  s().set("other", std::string("x"));
  EXPECT_EQ(s().list("many").size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(s().list_dir("many").size(), static_cast<std::size_t>(kKeys));
  s().erase_prefix("many");
  EXPECT_TRUE(s().list("many").empty());
  EXPECT_EQ(s().list(""), (std::vector<std::string>{"other"}));
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

TEST_P(StoreConformance, KeysWithUnusualCharacters) {
  const std::vector<std::string> keys = {"sp ace/k", "plus+sign", "pct%41", "amp&lt;", "tilde~_.-", "\xc3\xa9t\xc3\xa9",
                                         "q?uestion", "eq=ual", "col:on", "...", ".hidden"};
  for (const auto& k : keys) s().set(k, "v:" + k);
  EXPECT_EQ(sorted(s().list("")), sorted(keys));
  for (const auto& k : keys) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(s().get(k));
    EXPECT_EQ(str(*s().get(k)), "v:" + k);
    EXPECT_TRUE(s().exists(k));
  }
  s().rename("sp ace/k", "sp ace/k2");
  EXPECT_EQ(str(*s().get("sp ace/k2")), "v:sp ace/k");
  s().erase_prefix("");
  EXPECT_TRUE(s().list("").empty());
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
    expect_error([&] { check_key(k); }, Error::Code::InvalidArgument, needles);
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
    EXPECT_NO_THROW(check_key(good)) << good;
  }
}

TEST_P(StoreConformance, ConcurrentSetDistinctKeys) {
  const int kThreads = 8, kPerThread = GetParam().threads_keys;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, kPerThread] {
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
  const int kWriters = 4, kRounds = GetParam().overwrite_rounds;
  const std::size_t spread = GetParam().overwrite_max;
  auto value_for = [spread](int w, int r) {
    const std::string head = "w" + std::to_string(w) + "r" + std::to_string(r) + ":";
    return head + std::string(static_cast<std::size_t>(1000 + (w * 7919 + r * 104729) % spread), 'a' + w);
  };
  s().set("hot", value_for(0, 0));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0}, failed{0};
  std::thread reader([&] {
    while (!done) {
      std::optional<Bytes> v;
      try {
        v = s().get("hot");
      } catch (const std::exception& e) {
        ++failed;
        std::fprintf(stderr, "read failed: %s\n", e.what());
        continue;
      }
      ++reads;
      if (!v) {
        ++bad;
        continue;
      }
      const std::string got = str(*v);
      int w = -1, r = -1;
      if (std::sscanf(got.c_str(), "w%dr%d:", &w, &r) != 2 || got != value_for(w, r)) ++bad;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int r = 0; r < kRounds; ++r) {
        try {
          s().set("hot", value_for(w, r));
        } catch (const std::exception& e) {
          ++failed;
          std::fprintf(stderr, "write failed: %s\n", e.what());
        }
      }
    });
  }
  for (auto& th : writers) th.join();
  done = true;
  reader.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(s().list(""), (std::vector<std::string>{"hot"}));
}

TEST_P(StoreConformance, ManyProcessesOneStore) {
  if (!GetParam().reopen) GTEST_SKIP() << GetParam().name << " stores live in one process";
  constexpr int kProcs = 4, kKeys = 20;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto st = GetParam().reopen(s());
        for (int i = 0; i < kKeys; ++i) {
          st->set("p" + std::to_string(p) + "/k" + std::to_string(i), std::string(500, 'a' + p));
          st->set("common/k" + std::to_string(i), std::string(1000 + p, 'a' + p));
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
  EXPECT_EQ(s().list("").size(), static_cast<std::size_t>(kProcs * kKeys + kKeys));
  for (int i = 0; i < kKeys; ++i) {
    const std::string v = str(*s().get("common/k" + std::to_string(i)));
    ASSERT_GE(v.size(), 1000u);
    const int p = v[0] - 'a';
    EXPECT_EQ(v, std::string(1000 + p, 'a' + p));  // one writer's whole value
  }
}

TEST_P(StoreConformance, RootExistsAndDescribe) {
  s().set("k", std::string("v"));
  EXPECT_TRUE(s().root_exists());
  EXPECT_FALSE(s().describe().empty());
}

}  // namespace zvf::testing
