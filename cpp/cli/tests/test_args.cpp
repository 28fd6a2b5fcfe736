// Option-value parsing of the zvf CLI: accepted forms and error messages.
#include "args.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using zvf::cli::UsageError;

namespace {

std::string usage_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected UsageError";
  return "";
}

TEST(CliArgs, SplitList) {
  EXPECT_EQ(zvf::cli::split_list("a, b ,c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(zvf::cli::split_list("").empty());
  EXPECT_TRUE(zvf::cli::split_list("  ").empty());
  EXPECT_EQ(zvf::cli::split_list("a,,b"), (std::vector<std::string>{"a", "", "b"}));
}

TEST(CliArgs, Integer) {
  EXPECT_EQ(zvf::cli::parse_integer("--n", "7", 1, 10), 7);
  EXPECT_EQ(zvf::cli::parse_integer("--n", "-3", -5, 0), -3);
  for (const char* bad : {"", "1.5", "2e0", "x", "3 ", "0x10"})
    EXPECT_NE(usage_message([&] { zvf::cli::parse_integer("--n", bad, 0, 100); }).find("--n: expected a whole number"),
              std::string::npos) << bad;
  for (const char* far : {"0", "11", "99999999999999999999"})
    EXPECT_NE(usage_message([&] { zvf::cli::parse_integer("--n", far, 1, 10); }).find("out of range: expected 1 to 10"),
              std::string::npos) << far;
}

TEST(CliArgs, Shape) {
  EXPECT_EQ(zvf::cli::parse_shape("--chunk-shape", "500,500,500"), (std::vector<double>{500, 500, 500}));
  EXPECT_EQ(zvf::cli::parse_shape("--chunk-shape", "0.5, 2"), (std::vector<double>{0.5, 2}));
  EXPECT_EQ(zvf::cli::parse_shape("--bin-shape", "1,2,3,4").size(), 4u);
  EXPECT_EQ(usage_message([] { zvf::cli::parse_shape("--chunk-shape", "abc"); }),
            "--chunk-shape: expected 2 to 4 comma-separated positive numbers, got 'abc'");
  for (const char* bad : {"500", "1,2,3,4,5", "1,0,1", "1,-2", "1,inf", "1,nan", "1,,2", "1;2", ""})
    EXPECT_NE(usage_message([&] { zvf::cli::parse_shape("--bin-shape", bad); }).find(std::string("got '") + bad + "'"),
              std::string::npos)
        << bad;
}

TEST(CliArgs, Box) {
  zvf::Box b = zvf::cli::parse_box("--bounds", "-1,-2,-3:1,2,3", false, false);
  EXPECT_EQ(b.lo, (std::vector<double>{-1, -2, -3}));
  EXPECT_EQ(b.hi, (std::vector<double>{1, 2, 3}));
  zvf::Box u = zvf::cli::parse_box("--bbox", "-inf,0:inf,+inf", true, true);
  EXPECT_TRUE(std::isinf(u.lo[0]) && u.lo[0] < 0);
  EXPECT_TRUE(std::isinf(u.hi[1]) && u.hi[1] > 0);
  EXPECT_EQ(zvf::cli::parse_box("--bbox", "1,1:1,1", false, false).lo, (std::vector<double>{1, 1}));

  EXPECT_NE(usage_message([] { zvf::cli::parse_box("--bounds", "0,0:inf,1", false, false); }).find("finite"), std::string::npos);
  EXPECT_NE(usage_message([] { zvf::cli::parse_box("--bbox", "0,0,0:1,1", true, false); }).find("lower corner has 3"),
            std::string::npos);
  EXPECT_NE(usage_message([] { zvf::cli::parse_box("--bbox", "0,0", true, false); }).find("got '0,0'"), std::string::npos);
  EXPECT_NE(usage_message([] { zvf::cli::parse_box("--bbox", "0,x:1,1", true, false); }).find("--bbox: expected"),
            std::string::npos);
  EXPECT_EQ(usage_message([] { zvf::cli::parse_box("--bbox", "0,5:1,5", true, true); }),
            "--bbox: on axis y the lower end 5 is not below the upper end 5");
  EXPECT_EQ(usage_message([] { zvf::cli::parse_box("--bounds", "2,0:1,5", false, false); }),
            "--bounds: on axis x the lower end 2 is not at or below the upper end 1");
}

TEST(CliArgs, Range) {
  auto [lo, hi] = zvf::cli::parse_range("--z-range", "2500,3000");
  EXPECT_EQ(lo, 2500);
  EXPECT_EQ(hi, 3000);
  auto [a, b] = zvf::cli::parse_range("--x-range", "-inf, -100.5");
  EXPECT_TRUE(std::isinf(a) && a < 0);
  EXPECT_EQ(b, -100.5);
  EXPECT_EQ(usage_message([] { zvf::cli::parse_range("--z-range", "1"); }),
            "--z-range: expected LO,HI (numbers, inf or -inf), got '1'");
  EXPECT_NE(usage_message([] { zvf::cli::parse_range("--z-range", "nan,1"); }).find("expected LO,HI"), std::string::npos);
  EXPECT_NE(usage_message([] { zvf::cli::parse_range("--y-range", "5,5"); }).find("LO must be below HI"), std::string::npos);
}

TEST(CliArgs, AttrInput) {
  auto [name, file] = zvf::cli::parse_attr_input("intensity=/data/a=b.npy");
  EXPECT_EQ(name, "intensity");
  EXPECT_EQ(file, "/data/a=b.npy");
  for (const char* bad : {"intensity", "=a.npy", "intensity="})
    EXPECT_EQ(usage_message([&] { zvf::cli::parse_attr_input(bad); }),
              std::string("--attr-input: expected NAME=FILE, got '") + bad + "'");
}

TEST(CliArgs, Assignment) {
  auto [name, value] = zvf::cli::parse_assignment("--attr-dtype", "NAME=DTYPE", "label=uint8");
  EXPECT_EQ(name, "label");
  EXPECT_EQ(value, "uint8");
  EXPECT_EQ(usage_message([] { zvf::cli::parse_assignment("--attr-dtype", "NAME=DTYPE", "label"); }),
            "--attr-dtype: expected NAME=DTYPE, got 'label'");
}

TEST(CliArgs, Formatting) {
  EXPECT_EQ(zvf::cli::format_number(0.1), "0.1");
  EXPECT_EQ(zvf::cli::format_number(500), "500");
  EXPECT_EQ(zvf::cli::format_number(-INFINITY), "-inf");
  EXPECT_EQ(zvf::cli::format_number(static_cast<double>(0.1f)), "0.10000000149011612");
  EXPECT_EQ(zvf::cli::format_number(static_cast<double>(0.1f), true), "0.1");
  EXPECT_EQ(zvf::cli::format_number(0.1, true), "0.1");  // not a float: printed as the double
  EXPECT_EQ(zvf::cli::format_number(1e300, true), "1e+300");
  zvf::Box b{{0, -1.5}, {10, 2}};
  EXPECT_EQ(zvf::cli::format_box(b), "[0, -1.5] .. [10, 2]");
  zvf::Box r = zvf::Box::unbounded(3);
  EXPECT_EQ(zvf::cli::format_range(r), "everything");
  r.lo[2] = 0;
  r.hi[2] = 500;
  EXPECT_EQ(zvf::cli::format_range(r), "z in [0, 500)");
  r.hi[0] = 7;
  EXPECT_EQ(zvf::cli::format_range(r), "x in [-inf, 7), z in [0, 500)");
}

TEST(CliArgs, ShellQuote) {
  EXPECT_EQ(zvf::cli::shell_quote("/scratch/a_b-1.zarr"), "/scratch/a_b-1.zarr");
  EXPECT_EQ(zvf::cli::shell_quote(""), "''");
  EXPECT_EQ(zvf::cli::shell_quote("a b"), "'a b'");
  EXPECT_EQ(zvf::cli::shell_quote(R"([{"name":"crc32c"}])"), R"('[{"name":"crc32c"}]')");
  EXPECT_EQ(zvf::cli::shell_quote("it's"), R"('it'\''s')");
}

}  // namespace
