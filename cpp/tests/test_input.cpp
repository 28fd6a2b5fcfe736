// Tests of the plain-file readers and writers (zvf/input.hpp): NPY bytes built
// by hand, CSV and PLY (ASCII and binary) round trips, and every error case.
#include "zvf/input.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "zvf/error.hpp"

namespace fs = std::filesystem;
using zvf::DType;
using zvf::Error;
using zvf::OwnedArray;
using zvf::PointCloud;

namespace {

class FileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("zvf_test_input_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_file(const std::string& name, const std::string& bytes) const {
    std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  static std::string read_file(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path dir_;
};

template <class T>
std::vector<T> values(const OwnedArray& a) {
  EXPECT_EQ(a.data.size(), a.rows * a.cols * sizeof(T));
  std::vector<T> out(a.data.size() / sizeof(T));
  std::memcpy(out.data(), a.data.data(), a.data.size());
  return out;
}

template <class T>
OwnedArray make_array(DType dtype, std::size_t rows, std::size_t cols, bool one_d, const std::vector<T>& v) {
  OwnedArray a;
  a.dtype = dtype;
  a.rows = rows;
  a.cols = cols;
  a.one_d = one_d;
  a.data.resize(v.size() * sizeof(T));
  std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

template <class T>
std::string le_bytes(std::initializer_list<T> vals) {
  std::string s;
  for (T v : vals) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  return s;
}

// An NPY file: magic, version, little-endian header length (2 bytes for 1.0,
// 4 for 2.0/3.0), the dict padded with spaces and '\n' to a multiple of 64.
std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  std::size_t len_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  std::size_t total = 8 + len_bytes + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  for (std::size_t i = 0; i < len_bytes; ++i) s += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return s + header + data;
}

// Runs fn, expecting zvf::Error with `code` whose message contains every needle.
void expect_error(const std::function<void()>& fn, Error::Code code, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected zvf::Error, nothing was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  }
}

const auto kInvalid = Error::Code::InvalidArgument;

// ------------------------------------------------------------------ NPY

TEST_F(FileInputTest, NpyV1Float32TwoD) {
  std::string p = write_file("pos.npy", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                                  le_bytes<float>({1.f, 2.f, 3.f, 4.5f, -5.f, 6.25f})));
  OwnedArray a = zvf::read_npy(p);
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.rows, 2u);
  EXPECT_EQ(a.cols, 3u);
  EXPECT_FALSE(a.one_d);
  EXPECT_EQ(values<float>(a), (std::vector<float>{1.f, 2.f, 3.f, 4.5f, -5.f, 6.25f}));
}

TEST_F(FileInputTest, NpyExactKnownBytes) {
  // The bytes numpy 1.x writes for np.save(f, np.array([7, -1], dtype='<i2')).
  std::string dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }";
  std::string bytes = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(117 - dict.size(), ' ') + "\n" +
                      std::string("\x07\x00\xff\xff", 4);
  ASSERT_EQ(bytes.size(), 128u + 4u);
  OwnedArray a = zvf::read_npy(write_file("k.npy", bytes));
  EXPECT_EQ(a.dtype, DType::I16);
  EXPECT_TRUE(a.one_d);
  EXPECT_EQ(a.rows, 2u);
  EXPECT_EQ(a.cols, 1u);
  EXPECT_EQ(values<std::int16_t>(a), (std::vector<std::int16_t>{7, -1}));
}

TEST_F(FileInputTest, NpyV2AndV3Headers) {
  OwnedArray a = zvf::read_npy(write_file(
      "v2.npy", npy_bytes(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", le_bytes<std::int64_t>({-1, 0, 1LL << 40}))));
  EXPECT_EQ(a.dtype, DType::I64);
  EXPECT_TRUE(a.one_d);
  EXPECT_EQ(values<std::int64_t>(a), (std::vector<std::int64_t>{-1, 0, 1LL << 40}));

  // Key order is free and version 3.0 differs only in the header's encoding.
  OwnedArray b = zvf::read_npy(write_file(
      "v3.npy", npy_bytes(3, "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f8'}", le_bytes<double>({0.1, -2.0}))));
  EXPECT_EQ(b.dtype, DType::F64);
  EXPECT_EQ(b.rows, 1u);
  EXPECT_EQ(b.cols, 2u);
  EXPECT_EQ(values<double>(b), (std::vector<double>{0.1, -2.0}));
}

TEST_F(FileInputTest, NpyAllIntegerDescrs) {
  struct Case {
    const char* descr;
    DType dtype;
    std::size_t size;
  };
  for (const Case& c : {Case{"|u1", DType::U8, 1}, Case{"|i1", DType::I8, 1}, Case{"<u1", DType::U8, 1},
                        Case{"<i1", DType::I8, 1}, Case{"<u2", DType::U16, 2}, Case{"<i4", DType::I32, 4},
                        Case{"<u4", DType::U32, 4}, Case{"<u8", DType::U64, 8}}) {
    std::string data(4 * c.size, '\x01');
    OwnedArray a = zvf::read_npy(write_file(
        "a.npy", npy_bytes(1, std::string("{'descr': '") + c.descr + "', 'fortran_order': False, 'shape': (4,), }", data)));
    EXPECT_EQ(a.dtype, c.dtype) << c.descr;
    EXPECT_EQ(a.rows, 4u) << c.descr;
    EXPECT_EQ(a.data.size(), 4 * c.size) << c.descr;
  }
}

TEST_F(FileInputTest, NpyEmptyAndPython2Longs) {
  OwnedArray a = zvf::read_npy(write_file("e.npy", npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0L, 3L), }", "")));
  EXPECT_EQ(a.rows, 0u);
  EXPECT_EQ(a.cols, 3u);
  EXPECT_TRUE(a.data.empty());
}

TEST_F(FileInputTest, NpyFortranOrderIsRejected) {
  std::string p = write_file("f.npy", npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')));
  expect_error([&] { zvf::read_npy(p); }, kInvalid, {p, "fortran_order", "True"});
}

TEST_F(FileInputTest, NpyBigEndianIsRejected) {
  std::string p = write_file("b.npy", npy_bytes(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')));
  expect_error([&] { zvf::read_npy(p); }, kInvalid, {p, "'>f8'", "big-endian"});
}

TEST_F(FileInputTest, NpyUnsupportedDtypesAreRejected) {
  for (const char* descr : {"<c16", "<f16", "<U8", "|O"}) {
    std::string p = write_file("u.npy", npy_bytes(1, std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (1,), }",
                                                  std::string(16, '\0')));
    expect_error([&] { zvf::read_npy(p); }, kInvalid, {p, descr});
  }
  std::string p = write_file("s.npy", npy_bytes(1, "{'descr': [('x', '<f4'), ('y', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                                                std::string(8, '\0')));
  expect_error([&] { zvf::read_npy(p); }, kInvalid, {p, "structured"});
}

TEST_F(FileInputTest, NpyShapeErrors) {
  std::string p3 = write_file("3d.npy", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", std::string(32, '\0')));
  expect_error([&] { zvf::read_npy(p3); }, kInvalid, {p3, "(2, 2, 2)", "3-D"});
  std::string p0 = write_file("0d.npy", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", std::string(4, '\0')));
  expect_error([&] { zvf::read_npy(p0); }, kInvalid, {p0, "0-D"});
}

TEST_F(FileInputTest, NpyTruncatedAndMalformed) {
  std::string t = write_file("t.npy", npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }", std::string(40, '\0')));
  expect_error([&] { zvf::read_npy(t); }, kInvalid, {t, "truncated", "96"});
  std::string m = write_file("m.npy", "PK\x03\x04 not numpy at all");
  expect_error([&] { zvf::read_npy(m); }, kInvalid, {m, "magic"});
  std::string v = write_file("v.npy", std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '));
  expect_error([&] { zvf::read_npy(v); }, kInvalid, {v, "version 4.0"});
  std::string h = write_file("h.npy", npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3)", ""));
  expect_error([&] { zvf::read_npy(h); }, kInvalid, {h, "malformed NPY header"});
  std::string k = write_file("k.npy", npy_bytes(1, "{'descr': '<f8', 'shape': (4,), }", std::string(32, '\0')));
  expect_error([&] { zvf::read_npy(k); }, kInvalid, {k, "fortran_order"});
}

// Found in review (cpp/fuzz/corpus_input/npy-shape-wraps-file-size-check): rows
// * 8 bytes just below 2^64 made data_start + bytes wrap past the file-size check,
// and std::length_error escaped from the allocation.
TEST_F(FileInputTest, NpyShapeBeyondTheFileIsTruncatedNotAnAllocation) {
  std::string p = write_file("w.npy", npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693951,), }", ""));
  expect_error([&] { zvf::read_npy(p); }, kInvalid, {p, "truncated", "(2305843009213693951,)", "18446744073709551608 bytes"});
  std::string o = write_file("o.npy", npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", ""));
  expect_error([&] { zvf::read_npy(o); }, kInvalid, {o, "(4611686018427387904, 4)", "overflow"});
  std::string h = write_file("h.npy", std::string("\x93NUMPY\x02\x00\x00\x00\x10\x00", 12) + "{'descr'");
  expect_error([&] { zvf::read_npy(h); }, kInvalid, {h, "truncated NPY header", "1048576"});
}

// Found in review (cpp/fuzz/corpus_input/npy-header-nested-brackets): the header
// parser recursed once per bracket, so a 1 MiB header of '[' overflowed the stack.
TEST_F(FileInputTest, NpyDeeplyNestedHeaderIsMalformed) {
  std::string p = write_file("n.npy", npy_bytes(2, "{'descr': '<f8', 'fortran_order': False, 'shape': " + std::string(1 << 20, '[') + "}", ""));
  expect_error([&] { zvf::read_npy(p); }, kInvalid, {p, "malformed NPY header", "nested deeper than 32"});
  // numpy's own nesting (a structured descr) still parses, to be refused by name.
  std::string s = write_file("s.npy", npy_bytes(1, "{'descr': [('a', [('b', '<f4', (2, 3))])], 'fortran_order': False, 'shape': (1,), }", ""));
  expect_error([&] { zvf::read_npy(s); }, kInvalid, {s, "structured dtype"});
}

// Found by fuzzing (cpp/fuzz/corpus_input/{ply-header-line,npy-header}-control-bytes,
// csv-column-listing-1KB): file text went into messages raw (a NUL cuts a message short, a terminal obeys escape
// codes) and whole (an NPY header may be 16 MiB).
TEST_F(FileInputTest, FileTextInErrorsIsEscapedAndCutShort) {
  auto check = [](const std::function<void()>& fn, std::initializer_list<std::string> needles) {
    try {
      fn();
      ADD_FAILURE() << "expected zvf::Error";
    } catch (const Error& e) {
      const std::string m = e.what();
      for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
      for (unsigned char c : m) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << "raw control byte " << int(c) << " in: " << m;
      EXPECT_LT(m.size(), 500u) << m;
    }
  };
  std::string ply = write_file("c.ply", "ply\nformat ascii 1.0\nelement vertex 1\nprop\x1b[2Jerty float x\nend_header\n");
  check([&] { zvf::read_ply(ply); }, {ply + ":4", "unknown PLY header line", "'prop\\x1b[2Jerty float x'"});
  std::string fmt = write_file("f.ply", "ply\nformat bin\x01" "ary 1.0\n");
  check([&] { zvf::read_ply(fmt); }, {fmt + ":2", "'bin\\x01ary'"});
  std::string el = write_file("e.ply", "ply\nformat binary_little_endian 1.0\nelement ve\x7f 1 2\n");
  check([&] { zvf::read_ply(el); }, {el + ":3", "malformed element line 'element ve\\x7f 1 2'"});
  std::string name = write_file("n.ply", "ply\nformat binary_little_endian 1.0\nelement v\x02 3\nproperty uchar a\nelement vertex 1\n"
                                         "property float x\nproperty float y\nend_header\n\x01");
  check([&] { zvf::read_ply(name); }, {name, "element 'v\\x02'", "row 2 of 3"});
  std::string longline = write_file("l.ply", "ply\nformat ascii 1.0\ncomment ok\n" + std::string(5000, 'w') + "\n");
  check([&] { zvf::read_ply(longline); }, {longline + ":4", "... (5000 bytes)"});
  std::string npy = write_file("h.npy", npy_bytes(1, "{'descr': '<f8',\x01 " + std::string(3000, ' ') + "'x'}", ""));
  check([&] { zvf::read_npy(npy); }, {npy, "malformed NPY header", "\\x01", "bytes)"});
  std::string descr = write_file("d.npy", npy_bytes(1, "{'descr': '<f\x07', 'fortran_order': False, 'shape': (1,), }", ""));
  check([&] { zvf::read_npy(descr); }, {descr, "'<f\\x07'"});
  std::string csv = write_file("c.csv", std::string(4000, 'q') + ",b\n1,2\n");
  check([&] { zvf::read_csv(csv); }, {csv, "no column named 'x'", "... (4003 bytes)"});
}

TEST_F(FileInputTest, NpyMissingFileIsNotFound) {
  std::string p = path("nope.npy");
  expect_error([&] { zvf::read_npy(p); }, Error::Code::NotFound, {p});
}

TEST_F(FileInputTest, NpyWriteReadRoundTrip) {
  OwnedArray a = make_array<double>(DType::F64, 2, 2, false, {1.5, -2.25, 1e300, 0.0});
  std::string p = path("rt.npy");
  zvf::write_npy(p, a);
  std::string bytes = read_file(p);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_NE(bytes.find("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"), std::string::npos);
  EXPECT_EQ(bytes.size(), 10 + header_len + 32);

  OwnedArray b = zvf::read_npy(p);
  EXPECT_EQ(b.dtype, a.dtype);
  EXPECT_EQ(b.rows, 2u);
  EXPECT_EQ(b.cols, 2u);
  EXPECT_FALSE(b.one_d);
  EXPECT_EQ(b.data, a.data);

  OwnedArray c = make_array<std::uint8_t>(DType::U8, 3, 1, true, {1, 2, 255});
  zvf::write_npy(p, c);
  EXPECT_NE(read_file(p).find("'descr': '|u1'"), std::string::npos);
  EXPECT_NE(read_file(p).find("'shape': (3,)"), std::string::npos);
  OwnedArray d = zvf::read_npy(p);
  EXPECT_TRUE(d.one_d);
  EXPECT_EQ(d.data, c.data);
  // No temporary file is left behind.
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir_)) n += e.path().string().find(".zvftmp") != std::string::npos;
  EXPECT_EQ(n, 0u);
}

TEST_F(FileInputTest, NpyWriteToMissingDirectoryIsIO) {
  std::string p = path("no/such/dir/out.npy");
  expect_error([&] { zvf::write_npy(p, make_array<float>(DType::F32, 1, 1, true, {1.f})); }, Error::Code::IO, {p});
}

// ------------------------------------------------------------------ CSV

TEST_F(FileInputTest, CsvPositionsAndAttributes) {
  std::string p = write_file("pts.csv",
                             "\xEF\xBB\xBFx, y ,\"z\",intensity,label\r\n"
                             "\r\n"
                             "0,1,2,0.5,7\r\n"
                             "  \n"
                             "+1.5,-2,3e2,1,-3\n"
                             "\"4\",5,6,2,0\n");
  PointCloud c = zvf::read_csv(p);
  EXPECT_EQ(c.positions.dtype, DType::F64);
  EXPECT_EQ(c.positions.rows, 3u);
  EXPECT_EQ(c.positions.cols, 3u);
  EXPECT_FALSE(c.positions.one_d);
  EXPECT_EQ(values<double>(c.positions), (std::vector<double>{0, 1, 2, 1.5, -2, 300, 4, 5, 6}));
  ASSERT_EQ(c.attributes.size(), 2u);
  EXPECT_EQ(c.attributes[0].first, "intensity");
  EXPECT_EQ(c.attributes[0].second.dtype, DType::F64);
  EXPECT_TRUE(c.attributes[0].second.one_d);
  EXPECT_EQ(values<double>(c.attributes[0].second), (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ(c.attributes[1].first, "label");
  EXPECT_EQ(c.attributes[1].second.dtype, DType::I64);
  EXPECT_EQ(values<std::int64_t>(c.attributes[1].second), (std::vector<std::int64_t>{7, -3, 0}));
}

TEST_F(FileInputTest, CsvIntegerColumnBecomesFloatAtFirstFraction) {
  std::string p = write_file("f.csv", "X,Y,v\n1,2,3\n4,5,6.5\n7,8,9\n");
  PointCloud c = zvf::read_csv(p);
  EXPECT_EQ(c.positions.cols, 2u);  // upper-case X,Y found; no z column: 2-D
  ASSERT_EQ(c.attributes.size(), 1u);
  EXPECT_EQ(c.attributes[0].second.dtype, DType::F64);
  EXPECT_EQ(values<double>(c.attributes[0].second), (std::vector<double>{3, 6.5, 9}));
}

TEST_F(FileInputTest, CsvColumnOptions) {
  std::string p = write_file("o.csv", "id,a,b,c,w\n1,0.5,1.5,2.5,9\n2,3,4,5,8\n");
  zvf::TableOptions opt;
  opt.position_columns = {"c", "a", "b"};
  opt.attribute_columns = std::vector<std::string>{"w"};
  opt.positions_dtype = DType::F32;
  PointCloud c = zvf::read_csv(p, opt);
  EXPECT_EQ(c.positions.dtype, DType::F32);
  EXPECT_EQ(values<float>(c.positions), (std::vector<float>{2.5f, 0.5f, 1.5f, 5.f, 3.f, 4.f}));
  ASSERT_EQ(c.attributes.size(), 1u);
  EXPECT_EQ(c.attributes[0].first, "w");

  opt.attribute_columns = std::vector<std::string>{};
  EXPECT_TRUE(zvf::read_csv(p, opt).attributes.empty());
  opt.attribute_columns.reset();
  PointCloud all = zvf::read_csv(p, opt);
  ASSERT_EQ(all.attributes.size(), 2u);
  EXPECT_EQ(all.attributes[0].first, "id");
  EXPECT_EQ(all.attributes[1].first, "w");
}

TEST_F(FileInputTest, CsvHeaderOnlyGivesEmptyArrays) {
  PointCloud c = zvf::read_csv(write_file("h.csv", "x,y,z,q\n\n"));
  EXPECT_EQ(c.positions.rows, 0u);
  EXPECT_EQ(c.positions.cols, 3u);
  ASSERT_EQ(c.attributes.size(), 1u);
  EXPECT_EQ(c.attributes[0].second.rows, 0u);
}

TEST_F(FileInputTest, CsvBadNumberNamesFileLineAndColumn) {
  std::string p = write_file("bad.csv", "x,y,z,intensity\n1,2,3,4\n\n1,2,3,abc\n");
  expect_error([&] { zvf::read_csv(p); }, kInvalid, {p + ":4", "'intensity'", "(4)", "'abc'"});
  std::string q = write_file("bad2.csv", "x,y,z\n1,,3\n");
  expect_error([&] { zvf::read_csv(q); }, kInvalid, {q + ":2", "'y'", "empty"});
  std::string r = write_file("bad3.csv", "x,y,z,n\n1,2,3,4\n1,2,3,5x\n");
  expect_error([&] { zvf::read_csv(r); }, kInvalid, {r + ":3", "'n'", "'5x'"});
}

TEST_F(FileInputTest, CsvStructureErrors) {
  std::string a = write_file("a.csv", "x,y,z\n1,2,3\n1,2\n");
  expect_error([&] { zvf::read_csv(a); }, kInvalid, {a + ":3", "expected 3 fields", "got 2"});
  std::string b = write_file("b.csv", "x,z,v\n1,2,3\n");
  expect_error([&] { zvf::read_csv(b); }, kInvalid, {b, "'y'", "x, z, v"});
  std::string c = write_file("c.csv", "\n\n");
  expect_error([&] { zvf::read_csv(c); }, kInvalid, {c, "empty"});
  std::string d = write_file("d.csv", "x,y,x\n1,2,3\n");
  expect_error([&] { zvf::read_csv(d); }, kInvalid, {d, "'x'", "twice"});
  std::string e = write_file("e.csv", "x,y,\"z\n1,2,3\n");
  expect_error([&] { zvf::read_csv(e); }, kInvalid, {e + ":1", "quote"});

  std::string ok = write_file("ok.csv", "x,y,z,v\n1,2,3,4\n");
  zvf::TableOptions opt;
  opt.position_columns = {"x", "y", "nope"};
  expect_error([&] { zvf::read_csv(ok, opt); }, kInvalid, {ok, "'nope'"});
  opt.position_columns = {"x", "y", "y"};
  expect_error([&] { zvf::read_csv(ok, opt); }, kInvalid, {ok, "'y'", "twice"});
  opt.position_columns.clear();
  opt.attribute_columns = std::vector<std::string>{"z"};
  expect_error([&] { zvf::read_csv(ok, opt); }, kInvalid, {ok, "'z'", "position"});
  opt.attribute_columns = std::vector<std::string>{"w"};
  expect_error([&] { zvf::read_csv(ok, opt); }, kInvalid, {ok, "'w'"});
  expect_error([&] { zvf::read_csv(path("missing.csv")); }, Error::Code::NotFound, {"missing.csv"});
}

TEST_F(FileInputTest, CsvWriteReadRoundTrip) {
  PointCloud c;
  c.positions = make_array<float>(DType::F32, 3, 3, false, {0.1f, 1e-7f, -3.4e38f, 1.f / 3.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  c.attributes.emplace_back("intensity", make_array<double>(DType::F64, 3, 1, true, {0.1, 1.0 / 3.0, -1e-300}));
  c.attributes.emplace_back("label", make_array<std::uint16_t>(DType::U16, 3, 1, true, {0, 65535, 7}));
  c.attributes.emplace_back("normal", make_array<float>(DType::F32, 3, 2, false, {1, 2, 3, 4, 5, 6}));
  std::string p = path("q.csv");
  zvf::write_csv(p, c);
  std::string text = read_file(p);
  EXPECT_EQ(text.substr(0, text.find('\n')), "x,y,z,intensity,label,normal_0,normal_1");

  zvf::TableOptions opt;
  opt.positions_dtype = DType::F32;
  PointCloud r = zvf::read_csv(p, opt);
  EXPECT_EQ(r.positions.data, c.positions.data);  // shortest float text reads back exactly
  ASSERT_EQ(r.attributes.size(), 4u);
  EXPECT_EQ(r.attributes[0].second.data, c.attributes[0].second.data);
  EXPECT_EQ(r.attributes[1].second.dtype, DType::I64);
  EXPECT_EQ(values<std::int64_t>(r.attributes[1].second), (std::vector<std::int64_t>{0, 65535, 7}));
  EXPECT_EQ(r.attributes[2].first, "normal_0");
  EXPECT_EQ(values<std::int64_t>(r.attributes[3].second), (std::vector<std::int64_t>{2, 4, 6}));
}

// bool and float16, the reference's other attribute dtypes: NPY keeps them, CSV
// writes 0/1 and the shortest decimal that reads back as the same float16.
TEST_F(FileInputTest, BoolAndFloat16ThroughNpyAndCsv) {
  PointCloud c;
  c.positions = make_array<float>(DType::F32, 4, 2, false, {0, 0, 1, 1, 2, 2, 3, 3});
  c.attributes.emplace_back("flag", make_array<std::uint8_t>(DType::Bool, 4, 1, true, {1, 0, 0, 1}));
  // float16 bits: 0.1 (0x2e66), 65504 (0x7bff), the smallest subnormal (0x0001), -inf (0xfc00)
  c.attributes.emplace_back("half", make_array<std::uint16_t>(DType::F16, 4, 1, true, {0x2e66, 0x7bff, 0x0001, 0xfc00}));
  std::string n = path("h.npy");
  zvf::write_npy(n, c.attributes[1].second);
  OwnedArray h = zvf::read_npy(n);
  EXPECT_EQ(h.dtype, DType::F16);
  EXPECT_EQ(h.data, c.attributes[1].second.data);
  zvf::write_npy(n, c.attributes[0].second);
  EXPECT_EQ(zvf::read_npy(n).dtype, DType::Bool);
  EXPECT_NE(read_file(n).find("'descr': '|b1'"), std::string::npos);

  std::string p = path("b.csv");
  zvf::write_csv(p, c);
  EXPECT_EQ(read_file(p), "x,y,flag,half\n0,0,1,0.1\n1,1,0,65500\n2,2,0,6e-08\n3,3,1,-inf\n");
  PointCloud r = zvf::read_csv(p, {});
  ASSERT_EQ(r.attributes.size(), 2u);
  EXPECT_EQ(zvf::convert_dtype(r.attributes[0].second, DType::Bool).data, c.attributes[0].second.data);
  EXPECT_EQ(zvf::convert_dtype(r.attributes[1].second, DType::F16).data, c.attributes[1].second.data);
  OwnedArray two = make_array<double>(DType::F64, 2, 1, true, {1, 2});
  expect_error([&] { zvf::convert_dtype(two, DType::Bool, "attribute 'flag'"); }, kInvalid,
               {"attribute 'flag'", "value 2 in row 1", "bool"});
}

TEST_F(FileInputTest, DictionaryAttributesAreWrittenAsCategories) {
  PointCloud c;
  c.positions = make_array<float>(DType::F32, 3, 2, false, {0, 0, 1, 1, 2, 2});
  c.attributes.emplace_back("gene", make_array<std::int32_t>(DType::I32, 3, 1, true, {2, 0, 1}));
  c.categories["gene"] = {"plain", "a,b", "two\nlines"};
  std::string p = path("d.csv");
  zvf::write_csv(p, c);
  EXPECT_EQ(read_file(p), "x,y,gene\n0,0,\"two\nlines\"\n1,1,plain\n2,2,\"a,b\"\n");
  auto files = zvf::write_npy_set(path("d.npy"), c);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[2], path("d.gene.categories.json"));
  EXPECT_EQ(read_file(files[2]), "[\"plain\",\"a,b\",\"two\\nlines\"]\n");
  EXPECT_EQ(zvf::read_npy(files[1]).data, c.attributes[0].second.data);  // the codes
  c.categories["gene"].pop_back();  // code 2 now has no category
  expect_error([&] { zvf::write_csv(path("e.csv"), c); }, Error::Code::Corrupt, {"'gene'", "code 2", "2 categories"});
  EXPECT_FALSE(fs::exists(path("e.csv")));
}

TEST_F(FileInputTest, ControlBytesInCsvTextAreEscapedInErrors) {
  // A NUL in a header used to end the message (what() is a C string) mid-listing.
  std::string p = write_file("nul.csv", std::string("x,y\0q,a\n1,2,3\n", 13));
  expect_error([&] { zvf::read_csv(p, {}); }, kInvalid, {"no column named 'y'", "(columns: x, y\\x00q, a)"});
  EXPECT_EQ(zvf::printable(std::string("a\tb\x01\x7f", 5)), "a\\tb\\x01\\x7f");
}

TEST(Half, RoundsOnceToNearestEvenAndOverflowsToInfinity) {
  EXPECT_EQ(zvf::half_from_double(0.1), 0x2e66);
  EXPECT_EQ(zvf::half_from_double(1.0 + 1.0 / 2048), 0x3c00);  // a tie goes to the even neighbour
  EXPECT_EQ(zvf::half_from_double(1.0 + 3.0 / 2048), 0x3c02);
  EXPECT_EQ(zvf::half_from_double(1.0 + 1.0 / 2048 + 1e-12), 0x3c01);  // via float, this would round twice to 0x3c00
  EXPECT_EQ(zvf::half_from_double(65519.0), 0x7bff);
  EXPECT_EQ(zvf::half_from_double(65520.0), 0x7c00);
  EXPECT_EQ(zvf::half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(zvf::half_to_float(0xfbff), -65504.0f);
  EXPECT_TRUE(std::isnan(zvf::half_to_float(zvf::half_from_double(std::nan("")))));
}

TEST_F(FileInputTest, CsvWriteTwoD) {
  PointCloud c;
  c.positions = make_array<double>(DType::F64, 1, 2, false, {1.25, -0.5});
  std::string p = path("2d.csv");
  zvf::write_csv(p, c);
  EXPECT_EQ(read_file(p), "x,y\n1.25,-0.5\n");
}

TEST_F(FileInputTest, CsvWriteRowMismatchIsInvalid) {
  PointCloud c;
  c.positions = make_array<double>(DType::F64, 2, 2, false, {1, 2, 3, 4});
  c.attributes.emplace_back("a", make_array<double>(DType::F64, 1, 1, true, {1}));
  expect_error([&] { zvf::write_csv(path("x.csv"), c); }, kInvalid, {"'a'", "1 rows", "2"});
}

// ------------------------------------------------------------------ PLY

TEST_F(FileInputTest, PlyAscii) {
  std::string p = write_file("a.ply",
                             "ply\r\n"
                             "format ascii 1.0\r\n"
                             "comment made by hand\r\n"
                             "element camera 1\r\n"
                             "property float fov\r\n"
                             "property list uchar int ids\r\n"
                             "element vertex 3\r\n"
                             "property float x\r\n"
                             "property float y\r\n"
                             "property float z\r\n"
                             "property uchar red\r\n"
                             "property list uchar float extra\r\n"
                             "property int id\r\n"
                             "element face 1\r\n"
                             "property list uchar int vertex_indices\r\n"
                             "end_header\r\n"
                             "45.5 2 10 11\r\n"
                             "0 1 2 255 0 -1\r\n"
                             "1.5 -2 3e1 0 2 0.5 0.25 7\r\n"
                             "4 5 6 3.0 1 9 2147483647\r\n"
                             "3 0 1 2\r\n");
  PointCloud c = zvf::read_ply(p);
  EXPECT_EQ(c.positions.dtype, DType::F32);
  EXPECT_EQ(c.positions.rows, 3u);
  EXPECT_EQ(c.positions.cols, 3u);
  EXPECT_EQ(values<float>(c.positions), (std::vector<float>{0, 1, 2, 1.5f, -2, 30, 4, 5, 6}));
  ASSERT_EQ(c.attributes.size(), 2u);  // the list property is skipped
  EXPECT_EQ(c.attributes[0].first, "red");
  EXPECT_EQ(c.attributes[0].second.dtype, DType::U8);
  EXPECT_TRUE(c.attributes[0].second.one_d);
  EXPECT_EQ(values<std::uint8_t>(c.attributes[0].second), (std::vector<std::uint8_t>{255, 0, 3}));
  EXPECT_EQ(c.attributes[1].first, "id");
  EXPECT_EQ(c.attributes[1].second.dtype, DType::I32);
  EXPECT_EQ(values<std::int32_t>(c.attributes[1].second), (std::vector<std::int32_t>{-1, 7, 2147483647}));
}

TEST_F(FileInputTest, PlyBinaryLittleEndian) {
  std::string header =
      "ply\n"
      "format binary_little_endian 1.0\n"
      "element material 2\n"
      "property list ushort short coeffs\n"
      "element vertex 2\n"
      "property double x\n"
      "property double y\n"
      "property list int uchar flags\n"
      "property double z\n"
      "property short s\n"
      "property uint u\n"
      "property float f\n"
      "end_header\n";
  std::string data;
  // material 0: 3 coeffs; material 1: 0 coeffs
  data += le_bytes<std::uint16_t>({3}) + le_bytes<std::int16_t>({1, 2, 3});
  data += le_bytes<std::uint16_t>({0});
  // vertex 0
  data += le_bytes<double>({1.0, 2.0}) + le_bytes<std::int32_t>({2}) + std::string("\x01\x02", 2) + le_bytes<double>({3.0}) +
          le_bytes<std::int16_t>({-7}) + le_bytes<std::uint32_t>({4000000000u}) + le_bytes<float>({0.5f});
  // vertex 1
  data += le_bytes<double>({-1.0, 1e10}) + le_bytes<std::int32_t>({0}) + le_bytes<double>({0.125}) +
          le_bytes<std::int16_t>({32767}) + le_bytes<std::uint32_t>({0}) + le_bytes<float>({-2.f});
  data += "trailing element data the reader never needs";
  std::string p = write_file("b.ply", header + data);
  PointCloud c = zvf::read_ply(p);
  EXPECT_EQ(c.positions.dtype, DType::F64);
  EXPECT_EQ(values<double>(c.positions), (std::vector<double>{1, 2, 3, -1, 1e10, 0.125}));
  ASSERT_EQ(c.attributes.size(), 3u);
  EXPECT_EQ(c.attributes[0].first, "s");
  EXPECT_EQ(values<std::int16_t>(c.attributes[0].second), (std::vector<std::int16_t>{-7, 32767}));
  EXPECT_EQ(c.attributes[1].first, "u");
  EXPECT_EQ(c.attributes[1].second.dtype, DType::U32);
  EXPECT_EQ(values<std::uint32_t>(c.attributes[1].second), (std::vector<std::uint32_t>{4000000000u, 0}));
  EXPECT_EQ(c.attributes[2].first, "f");
  EXPECT_EQ(values<float>(c.attributes[2].second), (std::vector<float>{0.5f, -2.f}));

  zvf::TableOptions opt;
  opt.attribute_columns = std::vector<std::string>{"f"};
  opt.positions_dtype = DType::F32;
  PointCloud d = zvf::read_ply(p, opt);
  EXPECT_EQ(d.positions.dtype, DType::F32);
  EXPECT_EQ(values<float>(d.positions), (std::vector<float>{1, 2, 3, -1, 1e10f, 0.125f}));
  ASSERT_EQ(d.attributes.size(), 1u);
  EXPECT_EQ(d.attributes[0].first, "f");
}

TEST_F(FileInputTest, PlyIntegerAndMixedPositionsBecomeFloat64) {
  std::string p = write_file("i.ply",
                             "ply\nformat ascii 1.0\nelement vertex 2\nproperty int x\nproperty short y\n"
                             "end_header\n1 2\n-3 4\n");
  PointCloud c = zvf::read_ply(p);
  EXPECT_EQ(c.positions.dtype, DType::F64);
  EXPECT_EQ(c.positions.cols, 2u);
  EXPECT_EQ(values<double>(c.positions), (std::vector<double>{1, 2, -3, 4}));
  EXPECT_TRUE(c.attributes.empty());
}

TEST_F(FileInputTest, PlyErrors) {
  std::string be = write_file("be.ply", "ply\nformat binary_big_endian 1.0\nelement vertex 0\nproperty float x\nend_header\n");
  expect_error([&] { zvf::read_ply(be); }, kInvalid, {be, "binary_big_endian"});
  std::string nv = write_file("nv.ply", "ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int v\nend_header\n");
  expect_error([&] { zvf::read_ply(nv); }, kInvalid, {nv, "element vertex"});
  std::string np = write_file("np.ply", "not a ply\n");
  expect_error([&] { zvf::read_ply(np); }, kInvalid, {np, "not a PLY"});
  std::string nh = write_file("nh.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n");
  expect_error([&] { zvf::read_ply(nh); }, kInvalid, {nh, "end_header"});
  std::string ut = write_file("ut.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty quad x\nend_header\n");
  expect_error([&] { zvf::read_ply(ut); }, kInvalid, {ut + ":4", "'quad'"});
  std::string ny = write_file("ny.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float z\nend_header\n1 2\n");
  expect_error([&] { zvf::read_ply(ny); }, kInvalid, {ny, "'y'", "x, z"});
  std::string tr = write_file("tr.ply", "ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\nend_header\n" +
                                            le_bytes<float>({1, 2, 3}));
  expect_error([&] { zvf::read_ply(tr); }, kInvalid, {tr, "end of data", "'vertex'", "row 2 of 2"});
  std::string bad = write_file("bad.ply", "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nend_header\n1 2\n3 oops\n");
  expect_error([&] { zvf::read_ply(bad); }, kInvalid, {bad + ":8", "'y'", "'oops'"});
  std::string rng = write_file("rng.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty uchar r\nend_header\n1 2 256\n");
  expect_error([&] { zvf::read_ply(rng); }, kInvalid, {rng + ":8", "'r'", "'256'", "out of range"});
  // An ASCII row is one line: a value too few or too many must not shift the rest.
  const std::string head3 = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n";
  std::string shortrow = write_file("short.ply", head3 + "property uchar red\nend_header\n1 2 3\n5 6 7 8 9\n");
  expect_error([&] { zvf::read_ply(shortrow); }, kInvalid, {shortrow + ":9", "'vertex'", "3 values", "'red'", "one line"});
  std::string longrow = write_file("long.ply", head3 + "end_header\n1 2 3 4\n5 6 7\n");
  expect_error([&] { zvf::read_ply(longrow); }, kInvalid, {longrow + ":8", "'vertex'", "4 values", "one line"});
  std::string fewrows = write_file("few.ply", head3 + "end_header\n1 2 3\n\n");
  expect_error([&] { zvf::read_ply(fewrows); }, kInvalid, {fewrows, "end of data", "row 2 of 2"});
  std::string blank = write_file("blank.ply", head3 + "end_header\n1 2 3\n\n  \n4 5 6\n");
  EXPECT_EQ(values<float>(zvf::read_ply(blank).positions), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  std::string lst = write_file("lst.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty list uchar int l\nend_header\n1 2 0\n");
  zvf::TableOptions opt;
  opt.attribute_columns = std::vector<std::string>{"l"};
  expect_error([&] { zvf::read_ply(lst, opt); }, kInvalid, {lst, "'l'", "list"});
}

// Found in review (cpp/fuzz/corpus_input/ply-binary-empty-element-claims-2e64-rows): a
// binary element without properties takes no bytes, so nothing ended the loop
// over the 2^64 - 1 rows its header claimed.
TEST_F(FileInputTest, PlyBinaryElementWithoutPropertiesTakesNoBytes) {
  std::string p = write_file("e.ply", "ply\nformat binary_little_endian 1.0\nelement marker 18446744073709551615\n"
                                      "element vertex 1\nproperty float x\nproperty float y\nend_header\n" +
                                          le_bytes<float>({1.5f, -2.f}));
  PointCloud c = zvf::read_ply(p);
  EXPECT_EQ(values<float>(c.positions), (std::vector<float>{1.5f, -2.f}));
}

// Found in review: repeated names were found by comparing every pair, so a CSV
// header of 2*10^5 columns, or a PLY element of as many properties, took a minute.
// With a hash lookup this takes milliseconds; the bound only has to tell the two apart.
TEST_F(FileInputTest, WideHeadersAreCheckedForRepeatsInLinearTime) {
  constexpr int kWide = 200000;
  std::string csv_header = "x,y";
  std::string ply_header = "ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n";
  for (int i = 2; i < kWide; ++i) {
    csv_header += ",c" + std::to_string(i);
    ply_header += "property float c" + std::to_string(i) + "\n";
  }
  std::string csv = write_file("w.csv", csv_header + ",c5\n");
  std::string ply = write_file("w.ply", ply_header + "property float c5\nend_header\n");
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { zvf::read_csv(csv); }, kInvalid, {csv + ":1", "'c5'", "columns 6 and 200001"});
  expect_error([&] { zvf::read_ply(ply); }, kInvalid, {ply + ":" + std::to_string(kWide + 4), "'c5'", "twice"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
}

// ------------------------------------------------------------------ dispatch and npy sets

TEST_F(FileInputTest, FileFormatByExtension) {
  EXPECT_EQ(zvf::file_format("a/b.NPY"), zvf::FileFormat::Npy);
  EXPECT_EQ(zvf::file_format("b.csv"), zvf::FileFormat::Csv);
  EXPECT_EQ(zvf::file_format("b.Ply"), zvf::FileFormat::Ply);
  expect_error([] { zvf::file_format("b.las"); }, kInvalid, {"b.las", ".npy", ".csv", ".ply"});
}

TEST_F(FileInputTest, ReadPointFileNpy) {
  std::string p = path("pos.npy");
  zvf::write_npy(p, make_array<double>(DType::F64, 2, 3, false, {1, 2, 3, 4, 5, 6}));
  zvf::TableOptions opt;
  opt.positions_dtype = DType::F32;
  PointCloud c = zvf::read_point_file(p, opt);
  EXPECT_EQ(c.positions.dtype, DType::F32);
  EXPECT_EQ(values<float>(c.positions), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(c.attributes.empty());
  opt.position_columns = {"x", "y"};
  expect_error([&] { zvf::read_point_file(p, opt); }, kInvalid, {p, "CSV and PLY"});
}

TEST_F(FileInputTest, WriteNpySet) {
  PointCloud c;
  c.positions = make_array<float>(DType::F32, 2, 3, false, {1, 2, 3, 4, 5, 6});
  c.attributes.emplace_back("intensity", make_array<std::uint16_t>(DType::U16, 2, 1, true, {10, 20}));
  std::string p = path("out.npy");
  auto files = zvf::write_npy_set(p, c);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], p);
  EXPECT_EQ(files[1], path("out.intensity.npy"));
  EXPECT_EQ(zvf::read_npy(files[0]).data, c.positions.data);
  OwnedArray a = zvf::read_npy(files[1]);
  EXPECT_EQ(a.dtype, DType::U16);
  EXPECT_TRUE(a.one_d);
  EXPECT_EQ(a.data, c.attributes[0].second.data);
  expect_error([&] { zvf::write_npy_set(path("out.csv"), c); }, kInvalid, {".npy"});
}

TEST_F(FileInputTest, ConvertDtype) {
  OwnedArray a = make_array<std::int32_t>(DType::I32, 2, 1, true, {-3, 1 << 24});
  OwnedArray f = zvf::convert_dtype(a, DType::F64);
  EXPECT_EQ(values<double>(f), (std::vector<double>{-3, 16777216}));
  EXPECT_TRUE(f.one_d);
  EXPECT_EQ(values<std::int64_t>(zvf::convert_dtype(a, DType::I64)), (std::vector<std::int64_t>{-3, 1 << 24}));
  expect_error([&] { zvf::convert_dtype(a, DType::U16, "attribute 'n'"); }, kInvalid,
               {"attribute 'n'", "-3", "row 0", "uint16"});
  OwnedArray f2 = make_array<double>(DType::F64, 3, 1, true, {1.0, 255.0, 0.0});
  EXPECT_EQ(values<std::uint8_t>(zvf::convert_dtype(f2, DType::U8)), (std::vector<std::uint8_t>{1, 255, 0}));
  OwnedArray f3 = make_array<double>(DType::F64, 2, 1, true, {1.0, 2.5});
  expect_error([&] { zvf::convert_dtype(f3, DType::I32, "x"); }, kInvalid, {"x: value 2.5 in row 1", "int32"});
  OwnedArray f4 = make_array<double>(DType::F64, 1, 1, true, {9223372036854775808.0});
  expect_error([&] { zvf::convert_dtype(f4, DType::I64); }, kInvalid, {"int64"});
  OwnedArray u = make_array<std::uint64_t>(DType::U64, 1, 1, true, {~0ull});
  EXPECT_EQ(values<std::uint64_t>(zvf::convert_dtype(u, DType::U64)), (std::vector<std::uint64_t>{~0ull}));
  expect_error([&] { zvf::convert_dtype(u, DType::I64); }, kInvalid, {"18446744073709551615"});
  zvf::TableOptions opt;
  opt.positions_dtype = DType::I32;
  std::string p = write_file("p.csv", "x,y\n1,2\n");
  expect_error([&] { zvf::read_csv(p, opt); }, kInvalid, {"int32", "float32 or float64"});
}

}  // namespace
