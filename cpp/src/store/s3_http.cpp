#include "store/s3_http.hpp"

#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <mutex>

#include "zvf/error.hpp"

namespace zvf::s3 {

namespace {

void global_init() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] {
    result = curl_global_init(CURL_GLOBAL_DEFAULT);
    // With CURLOPT_NOSIGNAL (required with threads) libcurl leaves SIGPIPE
    // alone, and a TLS write to a connection the server reset would kill the
    // process. Ignore it, unless the program already handles it (Python
    // ignores it already; the zvf CLI does not).
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
        !(current.sa_flags & SA_SIGINFO))
      ::signal(SIGPIPE, SIG_IGN);
  });
  if (result != CURLE_OK) fail(Error::Code::IO, std::string("cannot initialise libcurl: ") + curl_easy_strerror(result));
}

// Upload state: the parts of one body, read in order; rewound for retries.
struct Upload {
  std::span<const ByteSpan> parts;
  std::size_t part = 0, offset = 0;

  std::size_t total() const {
    std::size_t n = 0;
    for (const auto& p : parts) n += p.size();
    return n;
  }
  void seek(std::size_t to) {
    part = 0;
    offset = 0;
    while (part < parts.size() && to >= parts[part].size()) {
      to -= parts[part].size();
      ++part;
    }
    offset = to;
  }
};

std::size_t read_body(char* buffer, std::size_t size, std::size_t nitems, void* user) {
  auto* up = static_cast<Upload*>(user);
  const std::size_t room = size * nitems;
  std::size_t written = 0;
  while (written < room && up->part < up->parts.size()) {
    const ByteSpan& p = up->parts[up->part];
    const std::size_t n = std::min(room - written, p.size() - up->offset);
    if (n) std::memcpy(buffer + written, p.data() + up->offset, n);
    written += n;
    up->offset += n;
    if (up->offset == p.size()) {
      ++up->part;
      up->offset = 0;
    }
  }
  return written;
}

int seek_body(void* user, curl_off_t offset, int origin) {
  auto* up = static_cast<Upload*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > up->total()) return CURL_SEEKFUNC_FAIL;
  up->seek(static_cast<std::size_t>(offset));
  return CURL_SEEKFUNC_OK;
}

std::size_t write_body(char* data, std::size_t size, std::size_t nmemb, void* user) {
  auto* resp = static_cast<HttpResponse*>(user);
  const std::size_t n = size * nmemb;
  resp->body.insert(resp->body.end(), reinterpret_cast<const std::uint8_t*>(data),
                    reinterpret_cast<const std::uint8_t*>(data) + n);
  return n;
}

std::size_t read_header(char* data, std::size_t size, std::size_t nitems, void* user) {
  auto* resp = static_cast<HttpResponse*>(user);
  const std::size_t n = size * nitems;
  std::string line(data, n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    resp->content_length.reset();  // a new response (after "100 Continue" or a redirect)
    resp->etag.clear();
    return n;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  std::string name = line.substr(0, colon);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "etag") {
    std::size_t i = colon + 1;
    while (i < line.size() && line[i] == ' ') ++i;
    resp->etag = line.substr(i);
    while (!resp->etag.empty() && resp->etag.back() == ' ') resp->etag.pop_back();
  } else if (name == "content-length") {
    std::size_t v = 0, i = colon + 1;
    while (i < line.size() && line[i] == ' ') ++i;
    bool any = false;
    for (; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i) {
      v = v * 10 + static_cast<std::size_t>(line[i] - '0');
      any = true;
    }
    if (any) {
      resp->content_length = v;
      if (v <= (std::size_t{1} << 33)) resp->body.reserve(v);
    }
  }
  return n;
}

}  // namespace

struct HttpClient::Pool {
  S3Config config;
  std::string sigv4;  // "aws:amz:REGION:s3"
  std::mutex m;
  std::vector<CURL*> idle;
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Pool*>(user)->locks[static_cast<std::size_t>(data)].lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Pool*>(user)->locks[static_cast<std::size_t>(data)].unlock();
  }

  CURL* acquire() {
    {
      std::lock_guard g(m);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (!h) fail(Error::Code::IO, "cannot create a libcurl handle");
    return h;
  }
  void release(CURL* h) {
    std::lock_guard g(m);
    idle.push_back(h);
  }
};

HttpClient::HttpClient(const S3Config& config) : pool_(std::make_unique<Pool>()) {
  global_init();
  pool_->config = config;
  pool_->sigv4 = "aws:amz:" + config.region + ":s3";
  pool_->share = curl_share_init();
  if (pool_->share) {
    curl_share_setopt(pool_->share, CURLSHOPT_LOCKFUNC, &Pool::lock);
    curl_share_setopt(pool_->share, CURLSHOPT_UNLOCKFUNC, &Pool::unlock);
    curl_share_setopt(pool_->share, CURLSHOPT_USERDATA, pool_.get());
    curl_share_setopt(pool_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(pool_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
}

HttpClient::~HttpClient() {
  for (CURL* h : pool_->idle) curl_easy_cleanup(h);
  if (pool_->share) curl_share_cleanup(pool_->share);
}

bool HttpClient::transient(int code) {
  switch (static_cast<CURLcode>(code)) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_PARTIAL_FILE:
    case CURLE_UPLOAD_FAILED:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_AGAIN:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool HttpClient::truncated(int code) { return static_cast<CURLcode>(code) == CURLE_PARTIAL_FILE; }

// The transfer's outcome: libcurl's code and message (without a trailing newline)
// and the HTTP status, if any.
static void record_outcome(CURL* h, CURLcode rc, const char* errbuf, HttpResponse& resp) {
  resp.curl_code = static_cast<int>(rc);
  if (rc != CURLE_OK) {
    resp.curl_error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    while (!resp.curl_error.empty() && (resp.curl_error.back() == '\n' || resp.curl_error.back() == '\r'))
      resp.curl_error.pop_back();
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  resp.status = status;
}

HttpResponse HttpClient::perform(const HttpRequest& req) const {
  Pool& p = *pool_;
  const S3Config& c = p.config;
  HttpResponse resp;
  CURL* h = p.acquire();
  struct Release {
    Pool& p;
    CURL* h;
    curl_slist* headers = nullptr;
    ~Release() {
      curl_slist_free_all(headers);
      p.release(h);
    }
  } guard{p, h};
  curl_easy_reset(h);  // keeps the handle's live connections and caches

  char errbuf[CURL_ERROR_SIZE] = {0};
  Upload upload{req.body};
  for (const auto& line : req.headers) {
    curl_slist* next = curl_slist_append(guard.headers, line.c_str());
    if (!next) fail(Error::Code::IO, "out of memory building an S3 request");
    guard.headers = next;
  }

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "zvf/0.1");
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (p.share) curl_easy_setopt(h, CURLOPT_SHARE, p.share);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c.connect_timeout_ms);
  if (c.request_timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c.request_timeout_ms);
  if (c.stall_timeout_s > 0) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c.stall_timeout_s);
  }
  // Objects above 1 MB go out with "Expect: 100-continue"; servers that ignore
  // it would cost this much per PUT.
  curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 300L);
  if (!c.ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, c.ca_bundle.c_str());
  if (req.credentials && !req.credentials->access_key.empty()) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, p.sigv4.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, req.credentials->access_key.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, req.credentials->secret_key.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, guard.headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &read_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);

  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_body);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &seek_body);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &upload);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload.total()));
  } else if (req.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_body);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &seek_body);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &upload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(upload.total()));
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  const CURLcode rc = curl_easy_perform(h);
  record_outcome(h, rc, errbuf, resp);
  return resp;
}

HttpResponse perform_simple(const SimpleRequest& req) {
  global_init();
  HttpResponse resp;
  CURL* h = curl_easy_init();
  if (!h) fail(Error::Code::IO, "cannot create a libcurl handle");
  curl_slist* headers = nullptr;
  struct Cleanup {
    CURL* h;
    curl_slist*& headers;
    ~Cleanup() {
      curl_slist_free_all(headers);
      curl_easy_cleanup(h);
    }
  } cleanup{h, headers};
  for (const auto& line : req.headers) {
    curl_slist* next = curl_slist_append(headers, line.c_str());
    if (!next) fail(Error::Code::IO, "out of memory building a request");
    headers = next;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "zvf/0.1");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req.connect_timeout_ms);
  if (req.timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  if (!req.sigv4_scope.empty() && req.credentials && !req.credentials->access_key.empty()) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, req.sigv4_scope.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, req.credentials->access_key.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, req.credentials->secret_key.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &read_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
  if (req.method == "POST") {
    // Copied, so libcurl can hash it for the signature.
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, req.body.c_str());
  } else if (req.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, req.body.c_str());
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  record_outcome(h, rc, errbuf, resp);
  return resp;
}

}  // namespace zvf::s3
