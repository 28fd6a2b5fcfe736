// Helpers shared by the GoogleTest files.
#pragma once
#include <gtest/gtest.h>

#include <exception>
#include <string>
#include <vector>

#include "zvf/error.hpp"

namespace zvf::testing {

// Runs f, expecting zvf::Error with `code` and every needle in its message.
template <class F>
void expect_error(F&& f, Error::Code code, const std::vector<std::string>& needles = {}) {
  try {
    f();
    ADD_FAILURE() << "expected zvf::Error, nothing was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected zvf::Error, got another exception: " << e.what();
  }
}

}  // namespace zvf::testing
