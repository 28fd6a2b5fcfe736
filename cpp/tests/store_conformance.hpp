// The Store contract (zvf/store.hpp), as one value-parameterised suite
// (its tests are in store_conformance.cpp) that every backend instantiates
// with its factory:
//
//   INSTANTIATE_TEST_SUITE_P(Posix, StoreConformance, ::testing::Values(posix_backend()), backend_name);
//
// test_store.cpp runs it on PosixStore and MemoryStore, test_s3.cpp on S3Store
// against a real S3 server (instance "S3", so ctest attaches the server fixture).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "zvf/error.hpp"
#include "zvf/store.hpp"

namespace zvf::testing {

struct StoreBackend {
  std::string name;
  // Checks that the backend can run here (may FAIL or GTEST_SKIP); optional.
  std::function<void()> require;
  // A fresh, empty store.
  std::function<std::shared_ptr<Store>()> make;
  // A second handle on the same store, as another process would open it; null
  // for backends that live in one process.
  std::function<std::shared_ptr<Store>(const Store&)> reopen;
  // Removes what a test left behind (after the store handle is gone from the test).
  std::function<void(Store&)> cleanup;
  // Network backends get smaller loads: same checks, fewer requests.
  int threads_keys = 60;
  int overwrite_rounds = 100;
  std::size_t overwrite_max = 50000;
};

inline void PrintTo(const StoreBackend& b, std::ostream* os) { *os << b.name; }
inline std::string backend_name(const ::testing::TestParamInfo<StoreBackend>& info) { return info.param.name; }

inline std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class StoreConformance : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    if (GetParam().require) GetParam().require();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = GetParam().make();
    ASSERT_TRUE(store_);
  }
  void TearDown() override {
    if (store_ && GetParam().cleanup) {
      try {
        GetParam().cleanup(*store_);
      } catch (...) {
      }
    }
  }
  Store& s() { return *store_; }
  std::shared_ptr<Store> store_;
};

}  // namespace zvf::testing
