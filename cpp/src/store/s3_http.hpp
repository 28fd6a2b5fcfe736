// One HTTP exchange through libcurl, signed with SigV4, on a pooled easy
// handle (each keeps its connections alive, so requests reuse them). No
// retries here: s3_store.cpp decides what to retry. Internal to libzvf.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "zvf/s3.hpp"
#include "zvf/store.hpp"

namespace zvf::s3 {

struct HttpRequest {
  std::string method;                  // GET, HEAD, PUT, POST, DELETE
  std::string url;                     // fully encoded, query already canonical (sorted)
  std::vector<std::string> headers;    // "Name: value"
  std::span<const ByteSpan> body;      // PUT/POST payload, sent without copying
  const AwsCredentials* credentials = nullptr;  // signs the request; null or no key: unsigned
};

struct HttpResponse {
  int curl_code = 0;                   // CURLcode; 0 = the exchange completed
  std::string curl_error;              // curl's text for curl_code
  long status = 0;                     // HTTP status, 0 if none was received
  Bytes body;
  std::optional<std::size_t> content_length;  // as announced by the server
  std::string etag;                    // the ETag header, quotes included ("" if none)
};

class HttpClient {
 public:
  explicit HttpClient(const S3Config& config);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse perform(const HttpRequest& request) const;

  // True for curl failures worth another attempt (resets, timeouts, refused connections).
  static bool transient(int curl_code);
  // True if curl_code means the body ended before its Content-Length.
  static bool truncated(int curl_code);

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

// One request outside the S3 pool, for credential endpoints (STS, container,
// instance metadata, SSO): a fresh handle, `body` sent as is, and when
// `sigv4_scope` ("aws:amz:REGION:SERVICE") is set, signed with `credentials`.
struct SimpleRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string body;
  std::string sigv4_scope;
  const AwsCredentials* credentials = nullptr;
  long connect_timeout_ms = 2000;
  long timeout_ms = 10000;
};
HttpResponse perform_simple(const SimpleRequest& request);

}  // namespace zvf::s3
