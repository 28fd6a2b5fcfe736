// The S3 backend: settings (URL, environment, ~/.aws files), the helpers it
// signs and parses with, the Store conformance suite against a real S3 server
// (moto, on 127.0.0.1), the engine's write/partition/finalise/read path on S3,
// and failures (no server, no bucket) with their messages.
//
// Server: ctest starts moto through a fixture (cpp/src/store/sources.cmake) and
// passes its address in ZVF_S3_TEST_SERVER_FILE. Run directly, the binary
// starts its own with tests/s3/moto_server.py. ZVF_S3_TEST_ENDPOINT (and
// ZVF_S3_TEST_BUCKET) point the tests at any other S3 server. Without a server
// the tests that need one skip, unless ZVF_REQUIRE_S3 is set: then they fail.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/s3_util.hpp"
#include "zvf/error.hpp"
#include "zvf/points.hpp"
#include "zvf/s3.hpp"
#include "zvf/store.hpp"

namespace fs = std::filesystem;
using zvf::Bytes;
using zvf::Error;
using zvf::S3Config;
using zvf::S3Store;
using zvf::Store;

namespace {

constexpr const char* kAccessKey = "AKIAZVFTESTKEY000001";
constexpr const char* kSecretKey = "zvfTestSecret/0123456789+abcdefghijKLMNOP";
constexpr const char* kToken = "zvfSessionToken//abcdefghij0123456789==";

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

template <class F>
void expect_error(F&& f, Error::Code code, const std::vector<std::string>& needles = {},
                  const std::vector<std::string>& absent = {}) {
  try {
    f();
    ADD_FAILURE() << "expected zvf::Error, nothing was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    const std::string what = e.what();
    for (const auto& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
    for (const auto& n : absent) EXPECT_EQ(what.find(n), std::string::npos) << "'" << n << "' leaked into: " << what;
  }
}

zvf::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string random_hex() {
  static std::mt19937_64 rng(std::random_device{}() ^ static_cast<std::uint64_t>(::getpid()));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "zvf_s3_test_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

// ---- the test server ----------------------------------------------------------

struct TestServer {
  std::string endpoint, bucket, unavailable;
  bool server_missing = false;  // moto is not installed: the only reason to skip
  std::string own_state;  // set when this process started the server itself
  ~TestServer() {
    if (own_state.empty()) return;
    const std::string cmd = "python3 '" + script() + "' stop --state '" + own_state + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not stop the moto server of %s\n", own_state.c_str());
  }
  static std::string script() {
    return (fs::path(__FILE__).parent_path().parent_path().parent_path() / "tests" / "s3" / "moto_server.py").string();
  }
};

void load_state(TestServer& s, const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    s.unavailable = "no server state file " + file;
    return;
  }
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    s.unavailable = "unreadable server state file " + file;
  } else if (j.contains("missing")) {
    s.unavailable = j["missing"].get<std::string>();
    s.server_missing = true;
  } else {
    s.endpoint = j.value("endpoint", "");
    s.bucket = j.value("bucket", "zvf-tests");
    if (s.endpoint.empty()) s.unavailable = "no endpoint in " + file;
  }
}

const TestServer& test_server() {
  static TestServer server = [] {
    TestServer s;
    if (const char* ep = std::getenv("ZVF_S3_TEST_ENDPOINT"); ep && *ep) {
      s.endpoint = ep;
      const char* b = std::getenv("ZVF_S3_TEST_BUCKET");
      s.bucket = b && *b ? b : "zvf-tests";
      return s;
    }
    if (const char* f = std::getenv("ZVF_S3_TEST_SERVER_FILE"); f && *f) {
      load_state(s, f);
      return s;
    }
    // Run outside ctest: start a server for this process.
    const std::string state = (fs::temp_directory_path() / ("zvf-s3-test-" + random_hex() + ".json")).string();
    const std::string cmd = "python3 '" + TestServer::script() + "' start --state '" + state + "' >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      s.unavailable = "could not start moto (" + cmd + ")";
      return s;
    }
    load_state(s, state);
    if (s.unavailable.empty()) s.own_state = state;
    return s;
  }();
  return server;
}

// Skips only when moto is not installed (and ZVF_REQUIRE_S3 is unset); a
// server that was there but failed to start or answer is a failure.
#define REQUIRE_S3_SERVER()                                                                          \
  do {                                                                                               \
    const auto& srv_ = test_server();                                                                \
    if (!srv_.unavailable.empty()) {                                                                 \
      if (!srv_.server_missing) FAIL() << "the S3 test server is not available: " << srv_.unavailable; \
      if (std::getenv("ZVF_REQUIRE_S3")) FAIL() << "ZVF_REQUIRE_S3 is set but: " << srv_.unavailable; \
      GTEST_SKIP() << "no S3 server: " << srv_.unavailable;                                          \
    }                                                                                                \
  } while (0)

// Fixed settings for the tests: never the caller's ~/.aws or environment.
std::map<std::string, std::string> test_env(std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", kAccessKey},   {"AWS_SECRET_ACCESS_KEY", kSecretKey},
      {"AWS_SESSION_TOKEN", kToken},       {"AWS_REGION", "us-east-1"},
      {"HOME", "/nonexistent-zvf-home"},   {"ZVF_S3_RETRY_BASE_MS", "5"},
      {"ZVF_S3_RETRY_MAX_MS", "50"},       {"ZVF_S3_MAX_ATTEMPTS", "8"},
      {"ZVF_S3_CONNECT_TIMEOUT_MS", "2000"},
  };
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

std::string store_url(const std::string& prefix) {
  const auto& srv = test_server();
  return "s3://" + srv.bucket + "/" + prefix + "?endpoint=" + srv.endpoint;
}

std::shared_ptr<S3Store> make_store(const std::string& prefix, std::map<std::string, std::string> extra = {}) {
  return std::make_shared<S3Store>(zvf::s3_config_from_url(store_url(prefix), env_of(test_env(std::move(extra)))));
}

std::string unique_prefix(const std::string& what) {
  return "cpp-" + what + "-" + random_hex() + ".zarrvectors";
}

// ---- settings ---------------------------------------------------------------------

TEST(S3Config, UrlBucketPrefixAndDefaults) {
  auto c = zvf::s3_config_from_url("s3://my-bucket/scan.zarrvectors/", env_of({}));
  EXPECT_EQ(c.bucket, "my-bucket");
  EXPECT_EQ(c.prefix, "scan.zarrvectors");
  EXPECT_EQ(c.region, "us-east-1");
  EXPECT_TRUE(c.endpoint.empty());
  EXPECT_FALSE(c.path_style);  // AWS: virtual-hosted style
  EXPECT_TRUE(c.access_key.empty());
  EXPECT_EQ(c.concurrency, 16);
  EXPECT_EQ(c.max_attempts, 8);
  auto whole = zvf::s3_config_from_url("S3://b", env_of({}));
  EXPECT_EQ(whole.bucket, "b");
  EXPECT_EQ(whole.prefix, "");
  EXPECT_EQ(zvf::s3_config_from_url("s3://b/a/b/c", env_of({})).prefix, "a/b/c");
  // Dotted buckets break TLS under virtual hosting.
  EXPECT_TRUE(zvf::s3_config_from_url("s3://my.bucket/x", env_of({})).path_style);
}

TEST(S3Config, BadUrlsAreInvalidArguments) {
  for (const char* url : {"s3://", "s3:///prefix", "s3://bucket/a//b", "s3://bucket/../x", "s3://bu cket/x",
                          "s3://bucket/x?colour=blue", "s3://bucket/x?addressing=sideways", "http://bucket/x"}) {
    SCOPED_TRACE(url);
    expect_error([&] { zvf::s3_config_from_url(url, env_of({})); }, Error::Code::InvalidArgument);
  }
  expect_error([&] { zvf::s3_config_from_url("s3://b/x?endpoint=ftp://host", env_of({})); },
               Error::Code::InvalidArgument, {"http://"});
  expect_error([&] { zvf::s3_config_from_url("s3://b/x", env_of({{"ZVF_S3_CONCURRENCY", "many"}})); },
               Error::Code::InvalidArgument, {"ZVF_S3_CONCURRENCY", "many"});
  expect_error([&] { zvf::s3_config_from_url("s3://b/x", env_of({{"ZVF_S3_MAX_ATTEMPTS", "0"}})); },
               Error::Code::InvalidArgument, {"ZVF_S3_MAX_ATTEMPTS"});
}

TEST(S3Config, EnvironmentCredentialsRegionEndpointTuning) {
  auto c = zvf::s3_config_from_url("s3://b/p", env_of({
                                                      {"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                                      {"AWS_SECRET_ACCESS_KEY", "envsecret"},
                                                      {"AWS_SESSION_TOKEN", "envtoken"},
                                                      {"AWS_DEFAULT_REGION", "eu-west-1"},
                                                      {"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"},
                                                      {"ZVF_S3_CONCURRENCY", "64"},
                                                      {"ZVF_S3_MAX_ATTEMPTS", "3"},
                                                      {"ZVF_S3_LOG", "1"},
                                                  }));
  EXPECT_EQ(c.access_key, "AKIAENV");
  EXPECT_EQ(c.secret_key, "envsecret");
  EXPECT_EQ(c.session_token, "envtoken");
  EXPECT_EQ(c.region, "eu-west-1");
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:9000");
  EXPECT_TRUE(c.path_style);  // custom endpoints: path style
  EXPECT_EQ(c.concurrency, 64);
  EXPECT_EQ(c.max_attempts, 3);
  EXPECT_TRUE(c.log);
  EXPECT_EQ(S3Store(c).io_concurrency(), 64);

  // AWS_REGION beats AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL; URL options beat both.
  auto d = zvf::s3_config_from_url("s3://b/p", env_of({{"AWS_REGION", "ap-south-1"},
                                                       {"AWS_DEFAULT_REGION", "eu-west-1"},
                                                       {"AWS_ENDPOINT_URL", "http://generic:1"},
                                                       {"AWS_ENDPOINT_URL_S3", "minio.example:9000"}}));
  EXPECT_EQ(d.region, "ap-south-1");
  EXPECT_EQ(d.endpoint, "https://minio.example:9000");
  auto e = zvf::s3_config_from_url("s3://b/p?endpoint=http%3A%2F%2Fceph%3A7480&region=zz-1&addressing=virtual",
                                   env_of({{"AWS_REGION", "ap-south-1"}, {"AWS_ENDPOINT_URL_S3", "http://x:1"}}));
  EXPECT_EQ(e.endpoint, "http://ceph:7480");
  EXPECT_EQ(e.region, "zz-1");
  EXPECT_FALSE(e.path_style);
  EXPECT_EQ(e.prefix, "p");
}

TEST(S3Config, ProfilesFromSharedFiles) {
  TempDir dir;
  fs::create_directories(dir.path() + "/.aws");
  dir.write(".aws/credentials",
            "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = defaultsecret\n\n"
            "[hpc]\naws_access_key_id=AKIAHPC\naws_secret_access_key=hpc/secret+x  ; inline\n"
            "aws_session_token = hpctoken\n");
  dir.write(".aws/config",
            "[default]\nregion = us-west-2\n\n[profile hpc]\nregion = eu-central-1\n"
            "endpoint_url = http://rgw.cluster:7480\ns3 =\n  addressing_style = path\n");
  const std::map<std::string, std::string> home = {{"HOME", dir.path()}};

  auto d = zvf::s3_config_from_url("s3://b/p", env_of(home));
  EXPECT_EQ(d.access_key, "AKIADEFAULT");
  EXPECT_EQ(d.secret_key, "defaultsecret");
  EXPECT_EQ(d.region, "us-west-2");
  EXPECT_TRUE(d.endpoint.empty());
  EXPECT_NE(d.credentials_from.find("default"), std::string::npos);

  auto env = home;
  env["AWS_PROFILE"] = "hpc";
  auto h = zvf::s3_config_from_url("s3://b/p", env_of(env));
  EXPECT_EQ(h.access_key, "AKIAHPC");
  EXPECT_EQ(h.secret_key, "hpc/secret+x");
  EXPECT_EQ(h.session_token, "hpctoken");
  EXPECT_EQ(h.region, "eu-central-1");
  EXPECT_EQ(h.endpoint, "http://rgw.cluster:7480");

  // Environment credentials beat the profile's, as in the AWS CLI; a profile in the URL beats both.
  env["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  EXPECT_EQ(zvf::s3_config_from_url("s3://b/p", env_of(env)).access_key, "AKIAENV");
  EXPECT_EQ(zvf::s3_config_from_url("s3://b/p?profile=hpc", env_of(env)).access_key, "AKIAHPC");

  // AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files.
  const std::string creds = dir.write("other-creds", "[default]\naws_access_key_id=AKIAOTHER\naws_secret_access_key=s\n");
  const std::string conf = dir.write("other-config", "[default]\nregion=sa-east-1\n");
  auto o = zvf::s3_config_from_url("s3://b/p", env_of({{"HOME", dir.path()},
                                                       {"AWS_SHARED_CREDENTIALS_FILE", creds},
                                                       {"AWS_CONFIG_FILE", conf}}));
  EXPECT_EQ(o.access_key, "AKIAOTHER");
  EXPECT_EQ(o.region, "sa-east-1");

  expect_error([&] { zvf::s3_config_from_url("s3://b/p?profile=nosuch", env_of(home)); },
               Error::Code::InvalidArgument, {"nosuch"});
}

TEST(S3Config, RedactRemovesEveryCredential) {
  auto c = zvf::s3_config_from_url("s3://b/p", env_of(test_env()));
  const std::string text = std::string("key ") + kAccessKey + " secret " + kSecretKey + " token " + kToken + kSecretKey;
  const std::string red = zvf::s3_redact(c, text);
  EXPECT_EQ(red.find(kAccessKey), std::string::npos);
  EXPECT_EQ(red.find(kSecretKey), std::string::npos);
  EXPECT_EQ(red.find(kToken), std::string::npos);
  EXPECT_EQ(red, "key *** secret *** token ******");
}

TEST(S3Config, ObjectUrlsPathAndVirtualStyle) {
  auto path = S3Store(zvf::s3_config_from_url("s3://bkt/scan.zarrvectors?endpoint=http://127.0.0.1:9000", env_of({})));
  EXPECT_EQ(path.object_url("0/vertices/c/-1/2/3"), "http://127.0.0.1:9000/bkt/scan.zarrvectors/0/vertices/c/-1/2/3");
  EXPECT_EQ(path.object_url("a b+c"), "http://127.0.0.1:9000/bkt/scan.zarrvectors/a%20b%2Bc");
  EXPECT_EQ(path.describe(), "s3://bkt/scan.zarrvectors");
  auto aws = S3Store(zvf::s3_config_from_url("s3://bkt/p", env_of({{"AWS_REGION", "eu-west-1"}})));
  EXPECT_EQ(aws.object_url("zarr.json"), "https://bkt.s3.eu-west-1.amazonaws.com/p/zarr.json");
  auto root = S3Store(zvf::s3_config_from_url("s3://bkt", env_of({})));
  EXPECT_EQ(root.object_url("zarr.json"), "https://bkt.s3.us-east-1.amazonaws.com/zarr.json");
  EXPECT_EQ(root.describe(), "s3://bkt");
}

TEST(S3Config, OpenStoreUrlRoutesS3) {
  auto s = zvf::open_store_url("s3://bucket/scan.zarrvectors");
  auto* s3 = dynamic_cast<S3Store*>(s.get());
  ASSERT_TRUE(s3);
  EXPECT_EQ(s3->describe(), "s3://bucket/scan.zarrvectors");
  EXPECT_EQ(s3->config().bucket, "bucket");
  EXPECT_EQ(s3->config().prefix, "scan.zarrvectors");
  expect_error([] { zvf::open_store_url("s3:///x"); }, Error::Code::InvalidArgument, {"bucket"});
}

// ---- helpers ----------------------------------------------------------------------

TEST(S3Util, UriEncoding) {
  using zvf::s3::uri_encode;
  EXPECT_EQ(uri_encode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(uri_encode("a/b c+d=e&f", false), "a%2Fb%20c%2Bd%3De%26f");
  EXPECT_EQ(uri_encode("a/b c", true), "a/b%20c");
  EXPECT_EQ(uri_encode("\xc3\xa9", true), "%C3%A9");
  EXPECT_EQ(zvf::s3::url_decode("a%2Fb+c%2bd%zz"), "a/b c+d%zz");
}

TEST(S3Util, XmlTextsAndEntities) {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated><KeyCount>2</KeyCount>"
      "<Contents><Key>a&amp;b</Key><Size>1</Size></Contents><Contents><Key>c&#x41;&#66;&lt;</Key></Contents>"
      "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes><Empty/><NextContinuationToken>t+/=</NextContinuationToken>"
      "</ListBucketResult>";
  EXPECT_EQ(zvf::s3::xml_texts(xml, "Key"), (std::vector<std::string>{"a&b", "cAB<"}));
  EXPECT_EQ(zvf::s3::xml_text(xml, "IsTruncated"), "true");
  EXPECT_EQ(zvf::s3::xml_text(xml, "NextContinuationToken"), "t+/=");
  EXPECT_EQ(zvf::s3::xml_text(xml, "Empty"), "");
  EXPECT_FALSE(zvf::s3::xml_text(xml, "Code"));
  EXPECT_EQ(zvf::s3::xml_elements(xml, "Contents").size(), 2u);
  EXPECT_EQ(zvf::s3::xml_escape("a<b>&'\"\x01"), "a&lt;b&gt;&amp;&apos;&quot;&#1;");
}

TEST(S3Util, Md5AndBase64) {
  auto hex = [](const std::array<std::uint8_t, 16>& d) {
    std::string s;
    char buf[3];
    for (auto b : d) {
      std::snprintf(buf, sizeof buf, "%02x", b);
      s += buf;
    }
    return s;
  };
  // RFC 1321 test suite.
  EXPECT_EQ(hex(zvf::s3::md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hex(zvf::s3::md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(hex(zvf::s3::md5("message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(hex(zvf::s3::md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890")),
            "57edf4a22be3c955ac49da2e2107b67a");
  const std::uint8_t raw[] = {'f', 'o', 'o', 'b', 'a', 'r'};
  EXPECT_EQ(zvf::s3::base64(raw, 6), "Zm9vYmFy");
  EXPECT_EQ(zvf::s3::base64(raw, 5), "Zm9vYmE=");
  EXPECT_EQ(zvf::s3::base64(raw, 4), "Zm9vYg==");
}

TEST(S3Util, IniFiles) {
  auto ini = zvf::s3::parse_ini("[default]\r\nRegion = x ; c\r\n[profile  a b]\nk=v=w\n  nested = no\n#x=y\nbad line\n");
  EXPECT_EQ(ini["default"]["region"], "x");
  EXPECT_EQ(ini["profile a b"]["k"], "v=w");
  EXPECT_EQ(ini["profile a b"].count("nested"), 0u);
  EXPECT_EQ(ini["profile a b"].size(), 1u);
}

// ---- conformance on a real server -------------------------------------------------

class S3Conformance : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_S3_SERVER();
    store_ = make_store(unique_prefix("conf"));
  }
  void TearDown() override {
    if (store_) {
      try {
        store_->erase_prefix("");
      } catch (...) {
      }
    }
  }
  Store& s() { return *store_; }
  std::shared_ptr<S3Store> store_;
};

TEST_F(S3Conformance, SetGetRoundTrip) {
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
  Bytes big(3 << 20);  // above curl's 1 MB "Expect: 100-continue" threshold
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7 + (i >> 9));
  s().set("0/vertices/c/1/2/3", zvf::ByteSpan(big));
  EXPECT_EQ(*s().get("0/vertices/c/1/2/3"), big);
}

TEST_F(S3Conformance, SetPartsConcatenates) {
  const std::string head = "head:", tail(200000, 't');
  const zvf::ByteSpan parts[] = {{reinterpret_cast<const std::uint8_t*>(head.data()), head.size()},
                                 {},
                                 {reinterpret_cast<const std::uint8_t*>(tail.data()), tail.size()}};
  s().set_parts("p", parts);
  EXPECT_EQ(str(*s().get("p")), head + tail);
}

TEST_F(S3Conformance, Overwrite) {
  s().set("k", std::string("a much longer first value"));
  s().set("k", std::string("short"));
  EXPECT_EQ(str(*s().get("k")), "short");
  s().set("k", std::string());
  EXPECT_EQ(str(*s().get("k")), "");
}

TEST_F(S3Conformance, MissingKeyIsNullopt) {
  EXPECT_FALSE(s().get("nope"));
  EXPECT_FALSE(s().exists("nope"));
  EXPECT_FALSE(s().get("deep/missing/key"));
  s().set("leaf", std::string("v"));
  EXPECT_FALSE(s().get("leaf/child"));
  EXPECT_FALSE(s().exists("leaf/child"));
  s().set("dir/file", std::string("v"));
  EXPECT_FALSE(s().get("dir"));
  EXPECT_FALSE(s().exists("dir"));
}

TEST_F(S3Conformance, ListIsRecursiveAndRelativeToRoot) {
  for (const char* k : {"a/b/c", "a/d", "ab/x", "a-b/y", "e", "zarr.json"}) s().set(k, std::string(k));
  EXPECT_EQ(sorted(s().list("")), (std::vector<std::string>{"a-b/y", "a/b/c", "a/d", "ab/x", "e", "zarr.json"}));
  EXPECT_EQ(sorted(s().list("a")), (std::vector<std::string>{"a/b/c", "a/d"}));
  EXPECT_EQ(sorted(s().list("a/")), (std::vector<std::string>{"a/b/c", "a/d"}));
  EXPECT_EQ(sorted(s().list("a/b")), (std::vector<std::string>{"a/b/c"}));
  EXPECT_EQ(s().list("e"), (std::vector<std::string>{"e"}));
  EXPECT_TRUE(s().list("missing").empty());
  EXPECT_TRUE(s().list("e/below").empty());
}

TEST_F(S3Conformance, ListDir) {
  for (const char* k : {"a/b/c", "a/d", "ab/x", "e", "zarr.json"}) s().set(k, std::string(k));
  EXPECT_EQ(s().list_dir(""), (std::vector<std::string>{"a", "ab", "e", "zarr.json"}));
  EXPECT_EQ(s().list_dir("a"), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(s().list_dir("a/"), (std::vector<std::string>{"b", "d"}));
  EXPECT_TRUE(s().list_dir("missing").empty());
}

TEST_F(S3Conformance, ListingsPageThroughThousandsOfKeys) {
  constexpr int kKeys = 2345;  // three pages of ListObjectsV2, three DeleteObjects batches
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

TEST_F(S3Conformance, Erase) {
  s().set("a/b", std::string("1"));
  s().set("a/c", std::string("2"));
  s().erase("a/b");
  EXPECT_FALSE(s().exists("a/b"));
  EXPECT_FALSE(s().get("a/b"));
  EXPECT_TRUE(s().exists("a/c"));
  EXPECT_NO_THROW(s().erase("a/b"));
  EXPECT_NO_THROW(s().erase("never/was"));
  EXPECT_NO_THROW(s().erase("a"));
  EXPECT_TRUE(s().exists("a/c"));
  EXPECT_EQ(s().list(""), (std::vector<std::string>{"a/c"}));
}

TEST_F(S3Conformance, ErasePrefix) {
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
  s().set("again", std::string("x"));
  EXPECT_EQ(str(*s().get("again")), "x");
}

TEST_F(S3Conformance, Rename) {
  s().set("from", std::string("value"));
  s().rename("from", "to/nested/key");
  EXPECT_FALSE(s().exists("from"));
  EXPECT_EQ(str(*s().get("to/nested/key")), "value");
  s().set("other", std::string("replacement"));
  s().rename("other", "to/nested/key");
  EXPECT_EQ(str(*s().get("to/nested/key")), "replacement");
  EXPECT_FALSE(s().exists("other"));
  s().rename("to/nested/key", "to/nested/key");
  EXPECT_EQ(str(*s().get("to/nested/key")), "replacement");
  expect_error([&] { s().rename("absent", "x"); }, Error::Code::NotFound, {"absent"});
  expect_error([&] { s().rename("absent", "absent"); }, Error::Code::NotFound, {"absent"});
}

TEST_F(S3Conformance, KeysWithUnusualCharacters) {
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

TEST_F(S3Conformance, BadKeysRejected) {
  const std::vector<std::string> bad = {"", "/a", "/", "a//b", "a/", "./a", "a/./b", "..", "a/../b", "a\\b"};
  for (const auto& k : bad) {
    SCOPED_TRACE("key=" + k);
    expect_error([&] { s().get(k); }, Error::Code::InvalidArgument);
    expect_error([&] { s().set(k, std::string("v")); }, Error::Code::InvalidArgument);
    expect_error([&] { s().exists(k); }, Error::Code::InvalidArgument);
    expect_error([&] { s().erase(k); }, Error::Code::InvalidArgument);
    expect_error([&] { s().rename(k, "ok"); }, Error::Code::InvalidArgument);
    if (!k.empty()) expect_error([&] { s().list(k + "/x"); }, Error::Code::InvalidArgument);
  }
  EXPECT_TRUE(s().list("").empty());
}

TEST_F(S3Conformance, ConcurrentSetDistinctKeys) {
  constexpr int kThreads = 8, kPerThread = 30;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = i % 2 ? std::string("shared/d") + std::to_string(i % 5) : std::string("t") + std::to_string(t);
        key += "/k" + std::to_string(t) + "_" + std::to_string(i);
        s().set(key, key + std::string(static_cast<std::size_t>(i * 37), 'x'));
      }
    });
  for (auto& th : threads) th.join();
  const auto keys = s().list("");
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const auto& key : keys) {
    const auto v = s().get(key);
    ASSERT_TRUE(v) << key;
    EXPECT_EQ(str(*v).substr(0, key.size()), key);
  }
}

TEST_F(S3Conformance, ConcurrentOverwriteIsAtomic) {
  // moto answers some concurrent overwrites of one key with HTTP 500 (a race
  // in its in-memory backend); more attempts ride that out, as they would a
  // real server's 500s.
  store_ = make_store(store_->config().prefix, {{"ZVF_S3_MAX_ATTEMPTS", "20"}});
  constexpr int kWriters = 4, kRounds = 25;
  auto value_for = [](int w, int r) {
    const std::string head = "w" + std::to_string(w) + "r" + std::to_string(r) + ":";
    return head + std::string(static_cast<std::size_t>(1000 + (w * 7919 + r * 104729) % 300000), 'a' + w);
  };
  s().set("hot", value_for(0, 0));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0};
  std::atomic<int> failed_reads{0};
  std::thread reader([&] {
    while (!done) {
      std::optional<Bytes> v;
      try {
        v = s().get("hot");
      } catch (const std::exception& e) {
        ++failed_reads;
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
  std::atomic<int> failed_writes{0};
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      for (int r = 0; r < kRounds; ++r) {
        try {
          s().set("hot", value_for(w, r));
        } catch (const std::exception& e) {
          ++failed_writes;
          std::fprintf(stderr, "write failed: %s\n", e.what());
        }
      }
    });
  for (auto& th : writers) th.join();
  done = true;
  reader.join();
  EXPECT_EQ(failed_writes.load(), 0);
  EXPECT_EQ(failed_reads.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(s().list(""), (std::vector<std::string>{"hot"}));
}

TEST_F(S3Conformance, RootExistsAndDescribe) {
  EXPECT_FALSE(s().root_exists());
  s().set("k", std::string("v"));
  EXPECT_TRUE(s().root_exists());
  EXPECT_EQ(s().describe().rfind("s3://" + test_server().bucket + "/cpp-conf-", 0), 0u) << s().describe();
  EXPECT_EQ(s().describe().find("?"), std::string::npos);  // no endpoint or options in messages
  // A sibling prefix that merely starts with ours is another store.
  auto sibling = make_store(store_->config().prefix + "-sibling");
  EXPECT_FALSE(sibling->root_exists());
}

TEST_F(S3Conformance, ManyProcessesOneStore) {
  constexpr int kProcs = 4, kKeys = 20;
  const std::string prefix = store_->config().prefix;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto st = make_store(prefix);
        for (int i = 0; i < kKeys; ++i) {
          st->set("p" + std::to_string(p) + "/k" + std::to_string(i), std::string(500, 'a' + p));
          st->set("common/k" + std::to_string(i), std::string(1000 + p, 'a' + p));
        }
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);
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
    EXPECT_EQ(v, std::string(1000 + p, 'a' + p));
  }
}

// ---- failures ---------------------------------------------------------------------

int closed_port() {
  // Bind and release: nothing listens there afterwards (connection refused).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

TEST(S3Failures, UnreachableServerNamesKeyAndErrorButNoCredentials) {
  const std::string url = "s3://bkt/p?endpoint=http://127.0.0.1:" + std::to_string(closed_port());
  S3Store st(zvf::s3_config_from_url(url, env_of(test_env({{"ZVF_S3_MAX_ATTEMPTS", "3"}}))));
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { st.set("0/vertices/c/1/2/3", std::string("cell")); }, Error::Code::IO,
               {"PUT", "'0/vertices/c/1/2/3'", "s3://bkt/p/0/vertices/c/1/2/3", "3 attempt", "curl error 7"},
               {kAccessKey, kSecretKey, kToken});
  expect_error([&] { st.get("zarr.json"); }, Error::Code::IO, {"GET", "'zarr.json'"}, {kAccessKey, kSecretKey, kToken});
  expect_error([&] { st.list(""); }, Error::Code::IO, {"LIST"}, {kAccessKey, kSecretKey, kToken});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST(S3Failures, RetryLogNamesNoCredentials) {
  const std::string url = "s3://bkt/p?endpoint=http://127.0.0.1:" + std::to_string(closed_port());
  S3Store st(zvf::s3_config_from_url(url, env_of(test_env({{"ZVF_S3_MAX_ATTEMPTS", "3"}, {"ZVF_S3_LOG", "1"}}))));
  ::testing::internal::CaptureStderr();
  EXPECT_THROW(st.set("k", std::string("v")), Error);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("retry 1 of 2"), std::string::npos) << log;
  EXPECT_NE(log.find("retry 2 of 2"), std::string::npos) << log;
  EXPECT_NE(log.find("s3://bkt/p/k"), std::string::npos) << log;
  for (const char* secret : {kAccessKey, kSecretKey, kToken}) EXPECT_EQ(log.find(secret), std::string::npos) << log;
}

TEST(S3Failures, MissingBucket) {
  REQUIRE_S3_SERVER();
  const auto& srv = test_server();
  const std::string url = "s3://no-such-bucket-" + random_hex() + "/p?endpoint=" + srv.endpoint;
  S3Store st(zvf::s3_config_from_url(url, env_of(test_env())));
  EXPECT_FALSE(st.root_exists());
  EXPECT_FALSE(st.exists("k"));
  expect_error([&] { st.set("k", std::string("v")); }, Error::Code::NotFound, {"bucket", "does not exist", "PUT"},
               {kSecretKey});
  expect_error([&] { st.get("k"); }, Error::Code::NotFound, {"bucket", "does not exist"});
  EXPECT_TRUE(st.list("").empty());
}

// ---- the engine on S3 -------------------------------------------------------------

struct Cloud {
  std::vector<float> xyz;
  std::vector<float> intensity;
  std::size_t n() const { return intensity.size(); }
  zvf::ArrayView positions() const { return {xyz.data(), zvf::DType::F32, n(), 3, false}; }
  std::vector<zvf::NamedArray> attrs() const { return {{"intensity", {intensity.data(), zvf::DType::F32, n(), 1, true}}}; }
  Cloud slab(float lo, float hi) const {
    Cloud c;
    for (std::size_t i = 0; i < n(); ++i)
      if (xyz[3 * i + 2] >= lo && xyz[3 * i + 2] < hi) {
        c.xyz.insert(c.xyz.end(), &xyz[3 * i], &xyz[3 * i] + 3);
        c.intensity.push_back(intensity[i]);
      }
    return c;
  }
};

Cloud make_cloud(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 399.99f);
  Cloud c;
  for (std::size_t i = 0; i < n; ++i) {
    for (int d = 0; d < 3; ++d) c.xyz.push_back(u(rng));
    c.intensity.push_back(static_cast<float>(i));
  }
  return c;
}

// Rows (x, y, z, intensity) sorted, for multiset comparison.
std::vector<std::array<float, 4>> rows_of(const zvf::PointCloud& pc) {
  std::vector<std::array<float, 4>> out(pc.positions.rows);
  const auto* p = reinterpret_cast<const float*>(pc.positions.data.data());
  const auto* a = reinterpret_cast<const float*>(pc.attributes.at(0).second.data.data());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = {p[3 * i], p[3 * i + 1], p[3 * i + 2], a[i]};
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::array<float, 4>> rows_of(const Cloud& c, const zvf::Box* bbox = nullptr) {
  std::vector<std::array<float, 4>> out;
  for (std::size_t i = 0; i < c.n(); ++i) {
    std::array<float, 4> r = {c.xyz[3 * i], c.xyz[3 * i + 1], c.xyz[3 * i + 2], c.intensity[i]};
    if (bbox) {
      bool in = true;
      for (int d = 0; d < 3; ++d) in = in && r[d] >= bbox->lo[d] && r[d] <= bbox->hi[d];
      if (!in) continue;
    }
    out.push_back(r);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const zvf::Layout kLayout{{100, 100, 100}, {25, 25, 25}, {}};
const zvf::Exec kExec{2, {}};

TEST(S3Engine, WriteReadAndBboxMatchMemoryStore) {
  REQUIRE_S3_SERVER();
  const Cloud c = make_cloud(20000, 7);
  auto st = make_store(unique_prefix("write"));
  zvf::MemoryStore mem;
  zvf::write_points(*st, c.positions(), c.attrs(), kLayout, std::nullopt, kExec);
  zvf::write_points(mem, c.positions(), c.attrs(), kLayout, std::nullopt, kExec);
  // Same keys, same bytes as the in-memory store (names aside: the store name is in the root).
  EXPECT_EQ(sorted(st->list("")), sorted(mem.list("")));
  for (const auto& k : mem.list("0")) {
    if (k.find("zarr.json") == std::string::npos) {
      EXPECT_EQ(*st->get(k), *mem.get(k)) << k;
    }
  }
  EXPECT_EQ(rows_of(zvf::read_points(*st, {}, kExec)), rows_of(c));
  const zvf::Box box{{50, 120, 0}, {260.5, 300, 180}};
  zvf::ReadOptions opt;
  opt.bbox = box;
  EXPECT_EQ(rows_of(zvf::read_points(*st, opt, kExec)), rows_of(c, &box));
  const auto info = zvf::store_info(*st);
  EXPECT_EQ(info.levels.at(0).vertex_count, c.n());
  expect_error([&] { zvf::write_points(*st, c.positions(), c.attrs(), kLayout, std::nullopt, kExec); },
               Error::Code::Conflict, {"already exists", st->describe()});
  st->erase_prefix("");
}

TEST(S3Engine, PartitionsFromSeveralProcessesThenFinalise) {
  REQUIRE_S3_SERVER();
  const Cloud c = make_cloud(16000, 11);
  const std::string prefix = unique_prefix("parts");
  const std::vector<float> edges = {0, 90, 200, 310, 400};  // unaligned: some chunks are staged
  std::vector<pid_t> kids;
  for (std::size_t k = 0; k + 1 < edges.size(); ++k) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto st = make_store(prefix);
        const Cloud part = c.slab(edges[k], edges[k + 1]);
        zvf::Box range = zvf::Box::unbounded(3);
        range.lo[2] = edges[k];
        range.hi[2] = edges[k + 1];
        zvf::write_points_partition(*st, part.positions(), part.attrs(), kLayout, range, kExec);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "partition %zu: %s\n", k, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto st = make_store(prefix);
  const auto parts = zvf::list_partitions(*st);
  ASSERT_EQ(parts.size(), 4u);
  for (const auto& p : parts) EXPECT_TRUE(p.complete) << p.id;
  expect_error([&] { zvf::read_points(*st, {}, kExec); }, Error::Code::NotFound, {"finalise"});
  const auto rep = zvf::finalise(*st, {}, kExec);
  EXPECT_TRUE(rep.changed);
  EXPECT_EQ(rep.merged.size(), 4u);
  EXPECT_EQ(rep.vertex_count, c.n());
  EXPECT_TRUE(st->list(".zvf").empty());
  EXPECT_EQ(rows_of(zvf::read_points(*st, {}, kExec)), rows_of(c));
  const zvf::Box box{{10, 10, 80}, {390, 200, 215}};
  zvf::ReadOptions opt;
  opt.bbox = box;
  EXPECT_EQ(rows_of(zvf::read_points(*st, opt, kExec)), rows_of(c, &box));
  EXPECT_FALSE(zvf::finalise(*st, {}, kExec).changed);

  // Negative coordinates move the grid origin: finalise renames cells (copy + delete on S3).
  Cloud neg = make_cloud(3000, 12);
  for (std::size_t i = 0; i < neg.n(); ++i) neg.xyz[3 * i + 2] = -neg.xyz[3 * i + 2] / 4.f - 1.f;
  zvf::Box range = zvf::Box::unbounded(3);
  range.lo[2] = -101;
  range.hi[2] = 0;
  zvf::write_points_partition(*st, neg.positions(), neg.attrs(), kLayout, range, kExec);
  const auto rep2 = zvf::finalise(*st, {}, kExec);
  EXPECT_TRUE(rep2.changed);
  EXPECT_EQ(rep2.vertex_count, c.n() + neg.n());
  Cloud all = c;
  all.xyz.insert(all.xyz.end(), neg.xyz.begin(), neg.xyz.end());
  all.intensity.insert(all.intensity.end(), neg.intensity.begin(), neg.intensity.end());
  EXPECT_EQ(rows_of(zvf::read_points(*st, {}, kExec)), rows_of(all));
  st->erase_prefix("");
}

TEST(S3Engine, PartitionWithoutManifestIsNotComplete) {
  REQUIRE_S3_SERVER();
  const std::string prefix = unique_prefix("incomplete");
  auto st = make_store(prefix);
  const Cloud c = make_cloud(2000, 13);
  zvf::Box range = zvf::Box::unbounded(3);
  range.lo[2] = 0;
  range.hi[2] = 400;
  zvf::write_points_partition(*st, c.positions(), c.attrs(), kLayout, range, kExec);
  // Simulate a task killed before its last step: its manifest never appeared.
  const auto parts = zvf::list_partitions(*st);
  ASSERT_EQ(parts.size(), 1u);
  st->erase(".zvf/partitions/" + parts[0].id + "/manifest.json");
  EXPECT_FALSE(zvf::list_partitions(*st).at(0).complete);
  expect_error([&] { zvf::finalise(*st, {}, kExec); }, Error::Code::Conflict, {parts[0].id, "no manifest"});
  st->erase_prefix("");
}

}  // namespace
