// S3 (and S3-compatible: MinIO, Ceph RGW, moto...) backend of the store layer.
//
// URL: "s3://BUCKET[/PREFIX][?OPTION=VALUE&...]". Keys live under "PREFIX/".
// Options (all optional; each overrides the environment):
//   endpoint=URL        S3-compatible endpoint ("http://127.0.0.1:9000")
//   region=NAME         signing region
//   profile=NAME        profile of ~/.aws/credentials and ~/.aws/config
//   addressing=path|virtual
//
// Settings come from, in order: the URL options; the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
// AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_PROFILE,
// AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_CA_BUNDLE); then the
// profile in ~/.aws/credentials and ~/.aws/config. Credentials follow the AWS
// chain (s3_credentials.cpp): environment, the profile (role_arn, web identity,
// static keys, credential_process), container credentials, EC2 instance
// metadata. Tuning: ZVF_S3_CONCURRENCY, ZVF_S3_MAX_ATTEMPTS,
// ZVF_S3_RETRY_BASE_MS, ZVF_S3_RETRY_MAX_MS, ZVF_S3_CONNECT_TIMEOUT_MS,
// ZVF_S3_REQUEST_TIMEOUT_MS, ZVF_S3_STALL_TIMEOUT_S, ZVF_S3_ADDRESSING,
// ZVF_S3_MULTIPART_THRESHOLD, ZVF_S3_PART_SIZE, ZVF_S3_LOG. docs/s3.md describes each.
//
// Requests are signed by libcurl (CURLOPT_AWS_SIGV4) with an unsigned payload.
// An object is one PUT, or above the multipart threshold one multipart upload
// that is completed only when every part arrived (and aborted otherwise), so
// set() is atomic: S3 never shows part of an object.
// Credentials never appear in error messages or logs.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "zvf/store.hpp"

namespace zvf {

// One set of AWS credentials. An empty access_key means anonymous (unsigned) requests.
struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  // When temporary credentials stop working; none for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

// Where a store's credentials come from (static keys, credential_process, STS,
// container or instance metadata). Fetches lazily, caches, and refreshes
// temporary credentials before they expire. Thread-safe.
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // The credentials to sign the next request with (fetched or refreshed if due).
  // Throws Error(IO) naming the source if none can be had.
  virtual AwsCredentials current() = 0;
  // Fetches new credentials now (after the server said they expired); false
  // if this source cannot give new ones (static keys).
  virtual bool refresh() = 0;
  // Where they come from, for messages ("profile 'dev': assume role ... from ...").
  virtual std::string describe() const = 0;
  // `text` with every secret this source has used or handed out replaced by "***".
  virtual std::string redact(std::string text) const = 0;
};

// When cached temporary credentials are renewed: `window` before they expire.
// A failed renewal keeps the old ones, and is tried again after `retry_after`,
// until they are within `margin` of expiry; then a failure is an error.
struct CredentialTiming {
  std::chrono::seconds window{300};
  std::chrono::seconds margin{30};
  std::chrono::seconds retry_after{10};
};
enum class CredentialAction { Use, Refresh };
// Pure decision, for the cache and its tests: `expiration` of the cached
// credentials (none: they never expire), `failed_at` the last failed renewal.
CredentialAction credential_action(std::chrono::system_clock::time_point now,
                                   std::optional<std::chrono::system_clock::time_point> expiration,
                                   std::optional<std::chrono::system_clock::time_point> failed_at,
                                   const CredentialTiming& timing = {});

struct S3Config {
  std::string bucket;
  std::string prefix;           // no leading or trailing '/'; "" = the whole bucket
  std::string region = "us-east-1";
  std::string endpoint;         // "scheme://host[:port]"; "" = AWS
  bool path_style = false;      // https://endpoint/bucket/key rather than https://bucket.endpoint/key
  // Null = anonymous (unsigned) requests.
  std::shared_ptr<CredentialProvider> credentials;
  std::string credentials_from; // where the credentials come from, for messages ("environment", ...)
  std::string ca_bundle;        // AWS_CA_BUNDLE
  int concurrency = 16;         // io_concurrency(): requests in flight for cell loops
  int max_attempts = 8;         // per request, first try included
  int retry_base_ms = 100;      // backoff: random in [0, min(max, base * 2^retry)]
  int retry_max_ms = 10000;
  long connect_timeout_ms = 10000;
  long request_timeout_ms = 0;  // whole request; 0 = no limit (stalls are caught below)
  long stall_timeout_s = 30;    // abort a transfer that moves no bytes for this long
  std::size_t multipart_threshold = std::size_t{64} << 20;  // objects above this: multipart upload
  std::size_t part_size = std::size_t{16} << 20;            // bytes per part (S3: >= 5 MiB but the last)
  bool log = false;             // one line on stderr per retry (never credentials)
};

// Environment lookup; tests inject their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// Parses an s3:// URL and resolves every setting. Throws Error(InvalidArgument)
// for a malformed URL or option; never contacts the network.
S3Config s3_config_from_url(const std::string& url, const EnvLookup& env = process_env());

// Replaces every credential of `config` that occurs in `text` by "***".
// (Everything its credential source has used: keys, tokens, web identity tokens.)
std::string s3_redact(const S3Config& config, std::string text);

class S3Store final : public Store {
 public:
  explicit S3Store(S3Config config);
  ~S3Store() override;
  S3Store(const S3Store&) = delete;
  S3Store& operator=(const S3Store&) = delete;

  std::optional<Bytes> get(const std::string& key) const override;
  void set(const std::string& key, ByteSpan value) override;
  void set_parts(const std::string& key, std::span<const ByteSpan> parts) override;
  using Store::set;
  bool exists(const std::string& key) const override;
  void erase(const std::string& key) override;
  void erase_prefix(const std::string& prefix) override;
  std::vector<std::string> list(const std::string& prefix) const override;
  std::vector<std::string> list_dir(const std::string& prefix) const override;
  // Server-side copy (x-amz-copy-source), then delete: never atomic, but each
  // step is, so a reader finds the value under `from`, `to` or both.
  void rename(const std::string& from, const std::string& to) override;
  // "s3://bucket/prefix": no endpoint, no credentials.
  std::string describe() const override;
  int io_concurrency() const override;
  // True if any key lies under the prefix (false for a missing bucket).
  bool root_exists() const override;

  const S3Config& config() const;
  // The request URL of a key (for tests and messages).
  std::string object_url(const std::string& key) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zvf
