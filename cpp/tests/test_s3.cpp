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

#include "store/s3_credentials.hpp"
#include "store/s3_util.hpp"
#include "store_conformance.hpp"
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
using zvf::testing::StoreConformance;

namespace {

constexpr const char* kAccessKey = "AKIAZVFTESTKEY000001";
constexpr const char* kSecretKey = "zvfTestSecret/0123456789+abcdefghijKLMNOP";
constexpr const char* kToken = "zvfSessionToken//abcdefghij0123456789==";


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

// The credentials of a config whose source needs no network (keys).
zvf::AwsCredentials creds(const S3Config& c) {
  if (!c.credentials) return {};
  return c.credentials->current();
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
      {"ZVF_S3_CONNECT_TIMEOUT_MS", "2000"}, {"AWS_EC2_METADATA_DISABLED", "true"},
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
  // No credentials anywhere: instance metadata is the last source (not asked yet), else anonymous.
  EXPECT_NE(c.credentials_from.find("instance metadata"), std::string::npos) << c.credentials_from;
  EXPECT_FALSE(zvf::s3_config_from_url("s3://b/p", env_of({{"AWS_EC2_METADATA_DISABLED", "true"}})).credentials);
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
  EXPECT_EQ(creds(c).access_key, "AKIAENV");
  EXPECT_EQ(creds(c).secret_key, "envsecret");
  EXPECT_EQ(creds(c).session_token, "envtoken");
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
  EXPECT_EQ(creds(d).access_key, "AKIADEFAULT");
  EXPECT_EQ(creds(d).secret_key, "defaultsecret");
  EXPECT_EQ(d.region, "us-west-2");
  EXPECT_TRUE(d.endpoint.empty());
  EXPECT_NE(d.credentials_from.find("default"), std::string::npos);

  auto env = home;
  env["AWS_PROFILE"] = "hpc";
  auto h = zvf::s3_config_from_url("s3://b/p", env_of(env));
  EXPECT_EQ(creds(h).access_key, "AKIAHPC");
  EXPECT_EQ(creds(h).secret_key, "hpc/secret+x");
  EXPECT_EQ(creds(h).session_token, "hpctoken");
  EXPECT_EQ(h.region, "eu-central-1");
  EXPECT_EQ(h.endpoint, "http://rgw.cluster:7480");

  // Environment credentials beat the profile's, as in the AWS CLI; a profile in the URL beats both.
  env["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  EXPECT_EQ(creds(zvf::s3_config_from_url("s3://b/p", env_of(env))).access_key, "AKIAENV");
  EXPECT_EQ(creds(zvf::s3_config_from_url("s3://b/p?profile=hpc", env_of(env))).access_key, "AKIAHPC");

  // AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files.
  const std::string creds_path = dir.write("other-creds", "[default]\naws_access_key_id=AKIAOTHER\naws_secret_access_key=s\n");
  const std::string conf = dir.write("other-config", "[default]\nregion=sa-east-1\n");
  auto o = zvf::s3_config_from_url("s3://b/p", env_of({{"HOME", dir.path()},
                                                       {"AWS_SHARED_CREDENTIALS_FILE", creds_path},
                                                       {"AWS_CONFIG_FILE", conf}}));
  EXPECT_EQ(creds(o).access_key, "AKIAOTHER");
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

// ---- credential sources (no network: resolution, refresh decisions, processes) -----

using Clock = std::chrono::system_clock;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(S3Credentials, RefreshDecision) {
  const auto now = Clock::now();
  const zvf::CredentialTiming t;  // renew 5 min before expiry; retry a failed renewal after 10 s; 30 s margin
  using zvf::CredentialAction;
  EXPECT_EQ(zvf::credential_action(now, std::nullopt, std::nullopt), CredentialAction::Use);  // long-term keys
  EXPECT_EQ(zvf::credential_action(now, now + minutes(60), std::nullopt), CredentialAction::Use);
  EXPECT_EQ(zvf::credential_action(now, now + minutes(5) + seconds(1), std::nullopt), CredentialAction::Use);
  EXPECT_EQ(zvf::credential_action(now, now + minutes(5), std::nullopt), CredentialAction::Refresh);
  EXPECT_EQ(zvf::credential_action(now, now + minutes(2), std::nullopt), CredentialAction::Refresh);
  EXPECT_EQ(zvf::credential_action(now, now - seconds(1), std::nullopt), CredentialAction::Refresh);  // expired
  // A renewal just failed: keep the old ones for a while, as long as they are not about to expire...
  EXPECT_EQ(zvf::credential_action(now, now + minutes(2), now - seconds(3)), CredentialAction::Use);
  EXPECT_EQ(zvf::credential_action(now, now + minutes(2), now - seconds(10)), CredentialAction::Refresh);
  // ...but within the margin every use tries again.
  EXPECT_EQ(zvf::credential_action(now, now + seconds(20), now - seconds(1)), CredentialAction::Refresh);
  zvf::CredentialTiming quick{seconds(60), seconds(5), seconds(1)};
  EXPECT_EQ(zvf::credential_action(now, now + minutes(2), std::nullopt, quick), CredentialAction::Use);
  EXPECT_EQ(zvf::credential_action(now, now + seconds(59), std::nullopt, quick), CredentialAction::Refresh);
  (void)t;
}

TEST(S3Credentials, Iso8601) {
  using zvf::s3::parse_iso8601;
  const auto epoch = [](const char* s) { return Clock::to_time_t(*parse_iso8601(s)); };
  EXPECT_EQ(epoch("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(epoch("2024-05-01T12:00:00Z"), 1714564800);
  EXPECT_EQ(epoch("2024-05-01T12:00:00.123456Z"), 1714564800);
  EXPECT_EQ(epoch("2024-05-01T14:00:00+02:00"), 1714564800);
  EXPECT_EQ(epoch("2024-05-01T10:30:00-01:30"), 1714564800);
  for (const char* bad : {"", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00Zjunk",
                          "yesterday", "2024-05-01T12:00:00+0200"})
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
}

// A HOME with ~/.aws/config and ~/.aws/credentials, and an environment that points at it.
struct AwsHome {
  TempDir dir;
  std::map<std::string, std::string> env;
  AwsHome(const std::string& config, const std::string& credentials = "") {
    fs::create_directories(dir.path() + "/.aws");
    dir.write(".aws/config", config);
    dir.write(".aws/credentials", credentials);
    env = {{"HOME", dir.path()}, {"AWS_EC2_METADATA_DISABLED", "true"}};
  }
  S3Config config(const std::string& url = "s3://b/p", std::map<std::string, std::string> extra = {}) const {
    auto e = env;
    for (auto& [k, v] : extra) e[k] = v;
    return zvf::s3_config_from_url(url, env_of(e));
  }
  std::string from(const std::string& url = "s3://b/p", std::map<std::string, std::string> extra = {}) const {
    return config(url, std::move(extra)).credentials_from;
  }
};

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(S3Credentials, ChainOrder) {
  AwsHome home(
      "[default]\nregion = eu-west-1\n"
      "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/reader\nsource_profile = base\n"
      "aws_access_key_id = AKIACONFIGROLE\naws_secret_access_key = x\n"
      "[profile proc]\ncredential_process = /bin/echo\naws_access_key_id = AKIACONFIGPROC\naws_secret_access_key = x\n"
      "[profile both]\ncredential_process = /bin/echo\n"
      "[profile cfgonly]\naws_access_key_id = AKIACFG\naws_secret_access_key = x\n",
      "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = basesecret\n"
      "[both]\naws_access_key_id = AKIABOTH\naws_secret_access_key = x\n");
  // Environment keys first; a profile named in the URL beats them.
  const std::map<std::string, std::string> keys = {{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "e"}};
  EXPECT_EQ(home.from("s3://b/p", keys), "environment (AWS_ACCESS_KEY_ID)");
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=role", keys), "assume role arn:aws:iam::123456789012:role/reader"));
  // role_arn beats keys in the same profile, and names its source.
  const std::string role = home.from("s3://b/p?profile=role");
  EXPECT_TRUE(contains(role, "profile 'role': assume role arn:aws:iam::123456789012:role/reader with profile 'base'"))
      << role;
  // Keys in the credentials file beat credential_process, which beats keys in the config file.
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=both"), "profile 'both' (")) << home.from("s3://b/p?profile=both");
  EXPECT_EQ(creds(home.config("s3://b/p?profile=both")).access_key, "AKIABOTH");
  EXPECT_EQ(home.from("s3://b/p?profile=proc"), "credential_process of profile 'proc'");
  EXPECT_EQ(creds(home.config("s3://b/p?profile=cfgonly")).access_key, "AKIACFG");
  // AWS_PROFILE selects too; the region comes from the profile's config.
  EXPECT_EQ(creds(home.config("s3://b/p", {{"AWS_PROFILE", "base"}})).access_key, "AKIABASE");
  // Web identity from the environment comes after a profile's role but before its keys.
  const std::map<std::string, std::string> wi = {{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"},
                                                 {"AWS_ROLE_ARN", "arn:aws:iam::1:role/web"}};
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=cfgonly", wi), "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"));
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=role", wi), "assume role arn:aws:iam::123456789012:role/reader"));
  // Nothing in the profile: container credentials, then instance metadata (if enabled), then anonymous.
  AwsHome empty("");
  EXPECT_FALSE(empty.config().credentials);
  EXPECT_EQ(empty.from(), "none (anonymous requests)");
  EXPECT_TRUE(contains(empty.from("s3://b/p", {{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}}),
                       "container credentials (http://169.254.170.2/v2/credentials/abc)"));
  EXPECT_TRUE(contains(empty.from("s3://b/p", {{"AWS_EC2_METADATA_DISABLED", "false"},
                                               {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/"}}),
                       "EC2 instance metadata (http://127.0.0.1:1), else anonymous"));
}

TEST(S3Credentials, RoleChainsAndSources) {
  AwsHome home(
      "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
      "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = c\n"
      "[profile c]\naws_access_key_id = AKIAC\naws_secret_access_key = c\n"
      "[profile self]\nrole_arn = arn:aws:iam::1:role/self\nsource_profile = self\n"
      "aws_access_key_id = AKIASELF\naws_secret_access_key = s\n"
      "[profile envsrc]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Environment\n"
      "[profile ecs]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = EcsContainer\n"
      "[profile imds]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Ec2InstanceMetadata\n"
      "[profile web]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\n"
      "[profile sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Reader\n"
      "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n");
  const std::string chain = home.from("s3://b/p?profile=a");
  EXPECT_TRUE(contains(chain, "profile 'a': assume role arn:aws:iam::1:role/a with profile 'b': assume role "
                              "arn:aws:iam::1:role/b with profile 'c'"))
      << chain;
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=self"), "assume role arn:aws:iam::1:role/self with profile 'self'"));
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=envsrc", {{"AWS_ACCESS_KEY_ID", "AKIAE"}, {"AWS_SECRET_ACCESS_KEY", "e"}}),
                       "with environment"));
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=ecs", {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c"}}),
                       "with container credentials (http://127.0.0.1:9/c)"));
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=imds", {{"AWS_EC2_METADATA_DISABLED", "false"}}),
                       "with EC2 instance metadata (http://169.254.169.254)"));
  EXPECT_TRUE(contains(home.from("s3://b/p?profile=web"), "web identity (profile 'web'): assume role arn:aws:iam::1:role/w"));
  EXPECT_EQ(home.from("s3://b/p?profile=sso"), "profile 'sso': SSO role Reader in account 111122223333");
}

TEST(S3Credentials, BadProfilesAreInvalidArguments) {
  AwsHome home(
      "[profile loop1]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = loop2\n"
      "[profile loop2]\nrole_arn = arn:aws:iam::1:role/y\nsource_profile = loop1\n"
      "[profile nosource]\nrole_arn = arn:aws:iam::1:role/x\n"
      "[profile ghost]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = missing\n"
      "[profile empty]\nregion = x\n"
      "[profile emptysrc]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = empty\n"
      "[profile mfa]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = empty\nmfa_serial = arn:aws:iam::1:mfa/me\n"
      "[profile badsrc]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Somewhere\n"
      "[profile envsrc]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Environment\n"
      "[profile ssobad]\nsso_start_url = https://x\n"
      "[profile ssonosession]\nsso_session = nope\nsso_account_id = 1\nsso_role_name = r\n");
  auto bad = [&](const std::string& profile, std::vector<std::string> needles,
                 std::map<std::string, std::string> extra = {}) {
    SCOPED_TRACE(profile);
    expect_error([&] { home.config("s3://b/p?profile=" + profile, extra); }, Error::Code::InvalidArgument,
                 std::move(needles));
  };
  bad("loop1", {"cycle", "'loop1' -> 'loop2' -> 'loop1'"});
  bad("nosource", {"'nosource'", "source_profile, credential_source"});
  bad("ghost", {"source_profile 'missing'"});
  bad("emptysrc", {"source_profile 'empty'", "no credentials"});
  bad("mfa", {"mfa_serial", "export-credentials --profile mfa --format process"});
  bad("badsrc", {"credential_source 'Somewhere'", "Ec2InstanceMetadata"});
  bad("envsrc", {"credential_source 'Environment'", "no credentials"});
  bad("ssobad", {"'ssobad'", "sso_account_id"});
  bad("ssonosession", {"sso_session 'nope'", "[sso-session nope]"});
  bad("nosuch", {"'nosuch'", "in neither"});
  AwsHome empty("");
  expect_error([&] { empty.config("s3://b/p", {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds"}}); },
               Error::Code::InvalidArgument, {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "loopback"});
  expect_error([&] { empty.config("s3://b/p", {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/c"}}); },
               Error::Code::InvalidArgument, {"http://"});
  EXPECT_TRUE(contains(empty.from("s3://b/p", {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.internal/c"}}),
                       "https://creds.internal/c"));
}

// A credential_process that counts its runs in `counter` and hands out keys
// numbered by run, expiring `expires_in` seconds from now.
std::string counting_process(const TempDir& dir, const std::string& counter, long expires_in) {
  const std::string script = dir.write("creds.sh",
      "#!/bin/sh\n"
      "n=$(cat '" + counter + "' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '" + counter + "'\n"
      "exp=$(date -u -d \"@$(( $(date +%s) + " + std::to_string(expires_in) + " ))\" +%Y-%m-%dT%H:%M:%SZ)\n"
      "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC%04d\", \"SecretAccessKey\": \"procSecret%04dXYZ\", "
      "\"SessionToken\": \"procToken%04dXYZ\", \"Expiration\": \"%s\"}' $n $n $n $exp\n");
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

int read_counter(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  in >> n;
  return n;
}

TEST(S3Credentials, CredentialProcessIsCachedUntilDueForRenewal) {
  TempDir dir;
  const std::string counter = dir.path() + "/count";
  AwsHome home("[profile long]\ncredential_process = " + counting_process(dir, counter, 3600) + "\n");
  auto c = home.config("s3://b/p?profile=long");
  ASSERT_TRUE(c.credentials);
  EXPECT_EQ(read_counter(counter), 0);  // nothing runs until credentials are needed
  const auto first = c.credentials->current();
  EXPECT_EQ(first.access_key, "AKIAPROC0001");
  EXPECT_EQ(first.secret_key, "procSecret0001XYZ");
  EXPECT_EQ(first.session_token, "procToken0001XYZ");
  ASSERT_TRUE(first.expiration);
  EXPECT_GT(*first.expiration, Clock::now() + minutes(50));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.credentials->current().access_key, "AKIAPROC0001");
  EXPECT_EQ(read_counter(counter), 1);  // an hour left: cached
  // The server said ExpiredToken: refresh() asks again.
  EXPECT_TRUE(c.credentials->refresh());
  EXPECT_EQ(c.credentials->current().access_key, "AKIAPROC0002");
  // Every credential the source handed out is scrubbed from messages.
  EXPECT_EQ(zvf::s3_redact(c, "a procSecret0001XYZ b procToken0002XYZ c AKIAPROC0002"), "a *** b *** c ***");
}

TEST(S3Credentials, CredentialsCloseToExpiryAreRenewed) {
  TempDir dir;
  const std::string counter = dir.path() + "/count";
  // 2 minutes left: inside the 5-minute renewal window.
  AwsHome home("[profile short]\ncredential_process = " + counting_process(dir, counter, 120) + "\n");
  auto c = home.config("s3://b/p?profile=short");
  EXPECT_EQ(c.credentials->current().access_key, "AKIAPROC0001");
  EXPECT_EQ(c.credentials->current().access_key, "AKIAPROC0002");
  EXPECT_EQ(read_counter(counter), 2);
}

TEST(S3Credentials, FailedRenewalKeepsValidCredentials) {
  TempDir dir;
  const std::string counter = dir.path() + "/count";
  const std::string script = counting_process(dir, counter, 120);
  // The second run fails: the first credentials (2 minutes left) stay in use.
  const std::string wrapper = dir.write("wrap.sh", "#!/bin/sh\n[ -f '" + counter + "' ] && exit 7\nexec '" + script + "'\n");
  fs::permissions(wrapper, fs::perms::owner_all);
  AwsHome home("[profile flaky]\ncredential_process = " + wrapper + "\n");
  auto c = home.config("s3://b/p?profile=flaky");
  EXPECT_EQ(c.credentials->current().access_key, "AKIAPROC0001");
  EXPECT_EQ(c.credentials->current().access_key, "AKIAPROC0001");
  // A forced refresh has no old credentials to fall back on: it reports the failure.
  expect_error([&] { c.credentials->refresh(); }, Error::Code::IO, {"credential_process of profile 'flaky'", "exit status 7"});
}

TEST(S3Credentials, CredentialProcessFailuresNameTheProfileNotTheOutput) {
  TempDir dir;
  const std::string leaky = dir.write("leaky.sh",
      "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"AKIALEAK\", \"SecretAccessKey\": \"leakedSecret123\"}'\n");
  const std::string broken = dir.write("broken.sh", "#!/bin/sh\necho 'not json leakedSecret456'\n");
  const std::string partial = dir.write("partial.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAHALF\"}'\n");
  for (const auto& f : {leaky, broken, partial}) fs::permissions(f, fs::perms::owner_all);
  AwsHome home("[profile leaky]\ncredential_process = " + leaky + "\n[profile broken]\ncredential_process = " + broken +
               "\n[profile partial]\ncredential_process = " + partial + "\n[profile exit]\ncredential_process = exit 3\n");
  expect_error([&] { home.config("s3://b/p?profile=leaky").credentials->current(); }, Error::Code::IO,
               {"profile 'leaky'", "\"Version\": 1"}, {"leakedSecret123"});
  expect_error([&] { home.config("s3://b/p?profile=broken").credentials->current(); }, Error::Code::IO,
               {"profile 'broken'", "not a JSON object"}, {"leakedSecret456"});
  expect_error([&] { home.config("s3://b/p?profile=partial").credentials->current(); }, Error::Code::IO,
               {"profile 'partial'", "SecretAccessKey"});
  expect_error([&] { home.config("s3://b/p?profile=exit").credentials->current(); }, Error::Code::IO,
               {"profile 'exit'", "exit status 3"});
  // A store whose credentials cannot be had says so per request, naming the key.
  S3Store st(home.config("s3://b/p?profile=exit&endpoint=http://127.0.0.1:" + std::to_string(1)));
  expect_error([&] { st.get("zarr.json"); }, Error::Code::IO, {"GET of 'zarr.json'", "no credentials", "exit status 3"});
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
  const zvf::s3::XmlAnswer answer(
      "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated><KeyCount>2</KeyCount>"
      "<Contents><Key>a&amp;b</Key><Size>1</Size></Contents><Contents><Key>c&#x41;&#66;&lt;</Key></Contents>"
      "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes><Empty/><Space> </Space>"
      "<NextContinuationToken>t+/=</NextContinuationToken></ListBucketResult>");
  EXPECT_TRUE(answer.is("ListBucketResult"));
  EXPECT_FALSE(answer.is("Error"));
  std::vector<std::string> keys;
  for (auto contents : zvf::s3::xml_elements(answer.top(), "Contents")) keys.push_back(*zvf::s3::xml_text(contents, "Key"));
  EXPECT_EQ(keys, (std::vector<std::string>{"a&b", "cAB<"}));
  EXPECT_EQ(zvf::s3::xml_text(answer, "IsTruncated"), "true");
  EXPECT_EQ(zvf::s3::xml_text(answer, "NextContinuationToken"), "t+/=");
  EXPECT_EQ(zvf::s3::xml_text(answer, "Key"), "a&b");  // the first, at any depth
  EXPECT_EQ(zvf::s3::xml_text(answer, "Empty"), "");
  EXPECT_EQ(zvf::s3::xml_text(answer, "Space"), " ");
  EXPECT_FALSE(zvf::s3::xml_text(answer, "Code"));
  EXPECT_FALSE(zvf::s3::xml_text(answer, "Key2"));  // names match whole, not by prefix
  EXPECT_EQ(zvf::s3::xml_elements(answer.top(), "KeyCount").size(), 1u);
  EXPECT_EQ(zvf::s3::xml_text(std::string_view("<Error><Code>NoSuchBucket</Code></Error>"), "Code"), "NoSuchBucket");
}

TEST(S3Util, XmlThatIsNotXmlHasNoElements) {
  // A proxy's HTML page, an empty body, a cut-off answer: no texts, no throw.
  for (std::string body : {std::string(), std::string("<html><body>502 Bad Gateway</body>"), std::string("\x01\x02<"),
                           std::string("<Error><Code>Slow")}) {
    const zvf::s3::XmlAnswer answer(body);
    EXPECT_FALSE(answer.is("ListBucketResult")) << body;
    EXPECT_FALSE(zvf::s3::xml_text(answer, "Key")) << body;
  }
  // Deep nesting is walked without recursion.
  std::string deep;
  for (int i = 0; i < 200000; ++i) deep += "<a>";
  deep += "<Code>x</Code>";
  for (int i = 0; i < 200000; ++i) deep += "</a>";
  EXPECT_EQ(zvf::s3::xml_text(deep, "Code"), "x");
}

TEST(S3Util, XmlRequestBodiesAreEscaped) {
  pugi::xml_document doc;
  auto del = doc.append_child("Delete");
  del.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  del.append_child("Object").append_child("Key").text() = "a<b>&'\"\x01";
  const std::string xml = zvf::s3::xml_serialize(doc);
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\"?>", 0), 0u) << xml;
  EXPECT_NE(xml.find("<Key>a&lt;b&gt;&amp;'\"&#01;</Key>"), std::string::npos) << xml;
  // And it reads back as written.
  EXPECT_EQ(zvf::s3::xml_text(xml, "Key"), "a<b>&'\"\x01");
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

// ---- conformance on a real server (store_conformance.cpp) --------------------------

zvf::testing::StoreBackend s3_backend() {
  zvf::testing::StoreBackend b;
  b.name = "s3";
  b.require = [] { REQUIRE_S3_SERVER(); };
  b.make = [] { return std::shared_ptr<Store>(make_store(unique_prefix("conf"))); };
  b.reopen = [](const Store& s) -> std::shared_ptr<Store> {
    return make_store(dynamic_cast<const S3Store&>(s).config().prefix);
  };
  b.cleanup = [](Store& s) { s.erase_prefix(""); };
  b.threads_keys = 30;
  // moto answers some concurrent overwrites of one key with HTTP 500 (a race in
  // its in-memory backend); the retries ride that out, as they would a real
  // server's 500s. Fewer rounds, bigger values: more time in flight per PUT.
  b.overwrite_rounds = 25;
  b.overwrite_max = 300000;
  return b;
}

INSTANTIATE_TEST_SUITE_P(S3, StoreConformance, ::testing::Values(s3_backend()), zvf::testing::backend_name);

class S3Store_ : public ::testing::Test {
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

TEST_F(S3Store_, RenameOfAnAbsentKeyOntoItself) {
  expect_error([&] { s().rename("absent", "absent"); }, Error::Code::NotFound, {"absent"});
}

TEST_F(S3Store_, RootExistsAndDescribe) {
  EXPECT_FALSE(s().root_exists());
  s().set("k", std::string("v"));
  EXPECT_TRUE(s().root_exists());
  EXPECT_EQ(s().describe().rfind("s3://" + test_server().bucket + "/cpp-conf-", 0), 0u) << s().describe();
  EXPECT_EQ(s().describe().find("?"), std::string::npos);  // no endpoint or options in messages
  // A sibling prefix that merely starts with ours is another store.
  auto sibling = make_store(store_->config().prefix + "-sibling");
  EXPECT_FALSE(sibling->root_exists());
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
