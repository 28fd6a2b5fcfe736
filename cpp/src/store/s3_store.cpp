// S3Store: the Store contract over the S3 REST API.
//
//   get        GET object (404 -> nullopt)
//   set        PUT object, one request (S3 makes it atomic); above the multipart
//              threshold CreateMultipartUpload, UploadPart (in parallel), then
//              CompleteMultipartUpload, or AbortMultipartUpload on failure
//   exists     HEAD object
//   erase      DELETE object (a missing key is fine)
//   list       ListObjectsV2 under the prefix, every page
//   list_dir   ListObjectsV2 with delimiter '/'
//   erase_prefix  list, then DeleteObjects in batches of 1000 (DELETE loop as fallback)
//   rename     PUT with x-amz-copy-source, then DELETE
//
// Every request goes through execute(), which retries transient failures
// (5xx, 429, SlowDown, RequestTimeout, resets, timeouts, truncated bodies) with
// capped, jittered exponential backoff, signs each attempt with the current
// credentials (renewed on ExpiredToken), and turns the rest into Error(IO) that
// name the operation, the key and the last status, never a credential.
#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <semaphore>
#include <system_error>
#include <set>
#include <thread>

#include "store/s3_credentials.hpp"
#include "store/s3_http.hpp"
#include "store/s3_util.hpp"
#include "zvf/error.hpp"
#include "zvf/s3.hpp"

namespace zvf {

using s3::HttpRequest;
using s3::HttpResponse;

namespace {

constexpr std::size_t kDeleteBatch = 1000;  // the DeleteObjects maximum
constexpr std::size_t kMaxParts = 10000;    // parts per multipart upload
constexpr const char* kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";  // of request bodies

// The bytes [lo, hi) of the concatenation of `parts`, as spans into them.
std::vector<ByteSpan> slice(std::span<const ByteSpan> parts, std::size_t lo, std::size_t hi) {
  std::vector<ByteSpan> out;
  std::size_t offset = 0;
  for (const ByteSpan& p : parts) {
    const std::size_t begin = std::max(lo, offset), end = std::min(hi, offset + p.size());
    if (begin < end) out.push_back(p.subspan(begin - offset, end - begin));
    offset += p.size();
    if (offset >= hi) break;
  }
  return out;
}

// The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, "-", the
// part count. nullopt if a part's ETag is not an MD5 (e.g. SSE-KMS).
std::optional<std::string> multipart_etag(const std::vector<std::string>& part_etags) {
  std::string digests;
  for (std::string e : part_etags) {
    e.erase(std::remove(e.begin(), e.end(), '"'), e.end());
    if (e.size() != 32) return std::nullopt;
    for (std::size_t i = 0; i < 32; i += 2) {
      const int hi = std::isxdigit(static_cast<unsigned char>(e[i])) ? std::stoi(e.substr(i, 1), nullptr, 16) : -1;
      const int lo = std::isxdigit(static_cast<unsigned char>(e[i + 1])) ? std::stoi(e.substr(i + 1, 1), nullptr, 16) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      digests += static_cast<char>(hi * 16 + lo);
    }
  }
  const auto d = s3::md5(digests);
  std::string hex;
  char buf[3];
  for (auto b : d) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    hex += buf;
  }
  return "\"" + hex + "-" + std::to_string(part_etags.size()) + "\"";
}

std::string normalize_prefix(const std::string& prefix) {
  if (prefix.empty()) return prefix;
  std::string p = prefix;
  if (p.size() > 1 && p.back() == '/') p.pop_back();
  check_key(p);
  return p;
}

std::string text_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Runs fn(i) for i in [0, n) on up to `threads` threads; rethrows the first error.
void run_parallel(std::size_t n, int threads, const std::function<void(std::size_t)>& fn) {
  const std::size_t t = std::min<std::size_t>(n, static_cast<std::size_t>(std::max(1, threads)));
  if (t <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex m;
  auto work = [&] {
    for (std::size_t i; !failed && (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard g(m);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  try {
    for (std::size_t k = 1; k < t; ++k) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had (a process or cgroup limit): those running do the work.
  }
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

struct S3Store::Impl {
  S3Config cfg;
  s3::HttpClient http;
  std::string origin;      // "scheme://host[:port]" requests go to
  std::string bucket_path; // "/bucket" (path style) or "" (virtual host)
  std::string root;        // "prefix/" or ""
  std::string location;    // "s3://bucket/prefix"
  // Part uploads in flight across all multipart uploads of this store.
  mutable std::counting_semaphore<> part_slots;

  explicit Impl(S3Config c) : cfg(std::move(c)), http(cfg), part_slots(std::max(1, cfg.concurrency)) {
    std::string endpoint = cfg.endpoint.empty() ? "https://s3." + cfg.region + ".amazonaws.com" : cfg.endpoint;
    if (cfg.path_style) {
      origin = endpoint;
      bucket_path = std::string("/").append(s3::uri_encode(cfg.bucket, false));
    } else {
      const std::size_t sep = endpoint.find("://");
      origin = endpoint.substr(0, sep + 3) + cfg.bucket + "." + endpoint.substr(sep + 3);
    }
    root = cfg.prefix.empty() ? "" : cfg.prefix + "/";
    location = "s3://" + cfg.bucket + (cfg.prefix.empty() ? "" : "/" + cfg.prefix);
  }

  std::string key_url(const std::string& key) const {
    return origin + bucket_path + "/" + s3::uri_encode(root + key, true);
  }
  std::string where(const std::string& key) const { return location + "/" + key; }

  // (The session token is added per attempt, by execute(): credentials may be renewed in between.)
  std::vector<std::string> base_headers() const { return {"x-amz-content-sha256: UNSIGNED-PAYLOAD"}; }

  [[noreturn]] void raise(Error::Code code, const std::string& message) const {
    fail(code, s3_redact(cfg, message));
  }

  void log(const std::string& line) const {
    if (!cfg.log) return;
    const std::string text = s3_redact(cfg, "zvf s3: " + line + "\n");
    std::fwrite(text.data(), 1, text.size(), stderr);
  }

  int backoff_ms(int retry) const {
    thread_local std::mt19937_64 rng(std::random_device{}() ^
                                     std::hash<std::thread::id>{}(std::this_thread::get_id()));
    const double cap = std::min<double>(cfg.retry_max_ms, cfg.retry_base_ms * std::pow(2.0, std::min(retry, 30)));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return static_cast<int>(cap * jitter(rng));
  }

  static std::string status_text(const HttpResponse& r) {
    std::string s = "HTTP " + std::to_string(r.status);
    const s3::XmlAnswer body(text_of(r.body));
    if (auto code = s3::xml_text(body, "Code")) s += " " + *code;
    if (auto msg = s3::xml_text(body, "Message"); msg && !msg->empty()) s += ": " + *msg;
    return s;
  }

  // Performs `req` until it succeeds (2xx, or a status listed in `pass`),
  // retrying transient failures. `what` names the operation for messages
  // ("PUT of '0/zarr.json'"), `url` is where (s3://...).
  HttpResponse execute(const HttpRequest& req, const std::string& what, const std::string& at,
                       std::initializer_list<long> pass = {}, bool body_may_hold_error = false) const {
    std::string last;
    bool renewed = false;
    for (int attempt = 1;; ++attempt) {
      AwsCredentials creds;
      if (cfg.credentials) {
        try {
          creds = cfg.credentials->current();
        } catch (const Error& e) {
          raise(e.code(), "S3 " + what + " at " + at + ": no credentials: " + e.what());
        }
      }
      HttpRequest signed_req = req;
      signed_req.credentials = &creds;
      if (!creds.access_key.empty() && !creds.session_token.empty())
        signed_req.headers.push_back("x-amz-security-token: " + creds.session_token);
      HttpResponse r = http.perform(signed_req);
      if (r.curl_code != 0) {
        last = std::string(s3::HttpClient::truncated(r.curl_code) ? "truncated response: " : "network error: ") +
               r.curl_error + " (curl error " + std::to_string(r.curl_code) + ")";
        if (!s3::HttpClient::transient(r.curl_code)) raise(Error::Code::IO, "S3 " + what + " at " + at + " failed: " + last);
      } else if (r.status >= 200 && r.status < 300) {
        if (req.method != "HEAD" && r.content_length && r.body.size() != *r.content_length) {
          last = "truncated response: " + std::to_string(r.body.size()) + " of " + std::to_string(*r.content_length) +
                 " bytes received";
        } else if (body_may_hold_error && s3::xml_text(text_of(r.body), "Code")) {
          // CopyObject can fail after its 200 status line has gone out.
          last = status_text(r) + " (an error in the body of a " + std::to_string(r.status) + " response)";
        } else {
          return r;
        }
      } else if (std::find(pass.begin(), pass.end(), r.status) != pass.end()) {
        return r;
      } else {
        const std::string code = s3::xml_text(text_of(r.body), "Code").value_or("");
        last = status_text(r);
        // (A HEAD answer has no body to say why: a 403 there may be expiry too.)
        const bool expired = code == "ExpiredToken" || code == "TokenRefreshRequired" || code == "InvalidToken" ||
                             (req.method == "HEAD" && r.status == 403 && code.empty());
        if (expired && !renewed && cfg.credentials) {
          // Temporary credentials ran out (or the clock is off): renew once, then retry at once.
          renewed = true;
          bool ok = false;
          try {
            ok = cfg.credentials->refresh();
          } catch (const Error& e) {
            raise(e.code(), "S3 " + what + " at " + at + ": " + last + "; renewing the credentials failed: " + e.what());
          }
          if (ok) {
            log(req.method + " " + at + ": " + last + "; credentials renewed, retrying");
            --attempt;
            continue;
          }
        }
        if (r.status == 403 || code == "AccessDenied" || code == "InvalidAccessKeyId" ||
            code == "SignatureDoesNotMatch" || code == "ExpiredToken") {
          std::string hint = code == "SignatureDoesNotMatch" ? "check the secret key and the region ('" + cfg.region + "')"
                             : code == "ExpiredToken"        ? "the session token has expired: refresh the credentials"
                                                             : "check the credentials and the bucket policy";
          raise(Error::Code::IO, "S3 " + what + " at " + at + ": access denied (" + last + "); " + hint +
                                     " (credentials from " + cfg.credentials_from + ")");
        }
        const bool retryable = r.status >= 500 || r.status == 429 || r.status == 408 || code == "SlowDown" ||
                               code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
        if (!retryable) raise(Error::Code::IO, "S3 " + what + " at " + at + " failed: " + last);
      }
      if (attempt >= cfg.max_attempts) break;
      const int wait = backoff_ms(attempt - 1);
      log(req.method + " " + at + ": " + last + "; retry " + std::to_string(attempt) + " of " +
          std::to_string(cfg.max_attempts - 1) + " in " + std::to_string(wait) + " ms");
      if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
    raise(Error::Code::IO, "S3 " + what + " at " + at + " failed after " + std::to_string(cfg.max_attempts) +
                               " attempt(s); last error: " + last);
  }

  [[noreturn]] void no_bucket(const std::string& what) const {
    raise(Error::Code::NotFound, "S3 " + what + ": bucket '" + cfg.bucket + "' does not exist" +
                                     (cfg.endpoint.empty() ? "" : " at " + cfg.endpoint));
  }

  // One ListObjectsV2 walk over `full_prefix` (an object-key prefix, root
  // included). Calls on_key / on_prefix with full keys and common prefixes.
  // Returns false if the bucket does not exist.
  bool list_objects(const std::string& full_prefix, bool delimited, std::size_t max_keys,
                    const std::function<void(std::string)>& on_key,
                    const std::function<void(std::string)>& on_prefix) const {
    std::string token;
    std::string at = location;
    if (full_prefix.size() > root.size()) at.append("/").append(full_prefix, root.size());
    while (true) {
      // Parameters in code-point order with canonical encoding: the URL is its
      // own canonical query string, whatever the libcurl version does with it.
      std::string q;
      auto add = [&](const std::string& k, const std::string& v) {
        q += (q.empty() ? "?" : "&") + k + "=" + s3::uri_encode(v, false);
      };
      if (!token.empty()) add("continuation-token", token);
      if (delimited) add("delimiter", "/");
      add("encoding-type", "url");
      add("list-type", "2");
      if (max_keys && max_keys < 1000) add("max-keys", std::to_string(max_keys));
      if (!full_prefix.empty()) add("prefix", full_prefix);
      HttpRequest req{"GET", origin + bucket_path + "/" + q, base_headers(), {}};
      HttpResponse r = execute(req, "LIST", at, {404});
      const s3::XmlAnswer body(text_of(r.body));
      if (r.status == 404) {
        if (s3::xml_text(body, "Code").value_or("") == "NoSuchBucket") return false;
        raise(Error::Code::IO, "S3 LIST at " + at + " failed: " + status_text(r));
      }
      if (!body.is("ListBucketResult"))
        raise(Error::Code::IO, "S3 LIST at " + at + ": the response is not a ListBucketResult");
      for (auto contents : s3::xml_elements(body.top(), "Contents"))
        if (auto key = s3::xml_text(contents, "Key")) on_key(s3::url_decode(*key));
      if (delimited)
        for (auto cp : s3::xml_elements(body.top(), "CommonPrefixes"))
          if (auto pre = s3::xml_text(cp, "Prefix")) on_prefix(s3::url_decode(*pre));
      if (max_keys) return true;
      const bool truncated = s3::xml_text(body, "IsTruncated").value_or("false") == "true";
      if (!truncated) return true;
      auto next = s3::xml_text(body, "NextContinuationToken");
      if (!next || next->empty())
        raise(Error::Code::IO, "S3 LIST at " + at + ": truncated listing without a continuation token");
      token = *next;
    }
  }

  // One object as a multipart upload: parts in parallel (within part_slots),
  // each retried by execute(); completed only when all arrived, aborted on any
  // failure so that nothing becomes visible and no part stays stored.
  void multipart_put(const std::string& key, std::span<const ByteSpan> parts, std::size_t total) const {
    std::size_t part_size = cfg.part_size;
    if ((total + part_size - 1) / part_size > kMaxParts) {  // S3 allows 10000 parts: grow them, in whole MiB
      part_size = (total + kMaxParts - 1) / kMaxParts;
      part_size = (part_size + (std::size_t{1} << 20) - 1) >> 20 << 20;
    }
    const std::size_t count = (total + part_size - 1) / part_size;
    const std::string url = key_url(key), at = where(key);
    auto headers = base_headers();
    headers.push_back("Content-Type: application/octet-stream");
    HttpRequest create{"POST", url + "?uploads=", headers, {}};
    HttpResponse r = execute(create, "CreateMultipartUpload of '" + key + "'", at, {404}, true);
    const std::string created = text_of(r.body);
    if (r.status == 404) {
      if (s3::xml_text(created, "Code").value_or("") == "NoSuchBucket") no_bucket("PUT of '" + key + "'");
      raise(Error::Code::IO, "S3 CreateMultipartUpload of '" + key + "' at " + at + " failed: " + status_text(r));
    }
    const std::string upload_id = s3::xml_text(created, "UploadId").value_or("");
    if (upload_id.empty())
      raise(Error::Code::IO, "S3 CreateMultipartUpload of '" + key + "' at " + at + ": the response has no UploadId");
    const std::string upload_query = "uploadId=" + s3::uri_encode(upload_id, false);

    std::vector<std::string> etags(count);
    try {
      run_parallel(count, static_cast<int>(std::min<std::size_t>(count, cfg.concurrency)), [&](std::size_t i) {
        part_slots.acquire();
        struct Release {
          std::counting_semaphore<>& s;
          ~Release() { s.release(); }
        } release{part_slots};
        const std::size_t lo = i * part_size, hi = std::min(total, lo + part_size);
        const std::vector<ByteSpan> body = slice(parts, lo, hi);
        const std::string number = std::to_string(i + 1);
        const std::string what = "PUT of part " + number + " of " + std::to_string(count) + " of '" + key + "'";
        HttpRequest put{"PUT", url + "?partNumber=" + number + "&" + upload_query, base_headers(), body};
        HttpResponse pr = execute(put, what, at);
        if (pr.etag.empty()) raise(Error::Code::IO, "S3 " + what + " at " + at + ": the response has no ETag");
        etags[i] = pr.etag;
      });
      pugi::xml_document doc;
      auto top = doc.append_child("CompleteMultipartUpload");
      top.append_attribute("xmlns") = kS3Namespace;
      for (std::size_t i = 0; i < count; ++i) {
        auto part = top.append_child("Part");
        part.append_child("PartNumber").text() = static_cast<unsigned long long>(i + 1);
        part.append_child("ETag").text() = etags[i].c_str();
      }
      const std::string xml = s3::xml_serialize(doc);
      const ByteSpan xml_body(reinterpret_cast<const std::uint8_t*>(xml.data()), xml.size());
      auto complete_headers = base_headers();
      complete_headers.push_back("Content-Type: application/xml");
      HttpRequest complete{"POST", url + "?" + upload_query, complete_headers, std::span<const ByteSpan>(&xml_body, 1)};
      const std::string what = "CompleteMultipartUpload of '" + key + "' (" + std::to_string(count) + " parts)";
      // An error can arrive in the body of a 200 (the status line goes out before the work is done).
      HttpResponse cr = execute(complete, what, at, {404}, true);
      if (cr.status == 404) {
        // NoSuchUpload: a retry after a completion whose answer was lost. The
        // object must then carry the ETag of exactly these parts.
        HttpRequest head{"HEAD", url, base_headers(), {}};
        const HttpResponse hr = execute(head, "HEAD of '" + key + "'", at, {404});
        const auto expected = multipart_etag(etags);
        if (hr.status == 404 || !expected || hr.etag != *expected)
          raise(Error::Code::IO, "S3 " + what + " at " + at + " failed: " + status_text(cr));
      } else if (!s3::XmlAnswer(text_of(cr.body)).is("CompleteMultipartUploadResult")) {
        raise(Error::Code::IO, "S3 " + what + " at " + at + ": the response is not a CompleteMultipartUploadResult");
      }
    } catch (const Error& e) {
      HttpRequest abort{"DELETE", url + "?" + upload_query, base_headers(), {}};
      std::string outcome = "the multipart upload was aborted; nothing was written";
      try {
        execute(abort, "AbortMultipartUpload of '" + key + "'", at, {404});
      } catch (const Error& abort_error) {
        outcome = "aborting the multipart upload (id " + upload_id + ") failed too, so its parts stay stored until "
                  "it is aborted or a lifecycle rule removes it: " + abort_error.what();
      }
      raise(e.code(), std::string(e.what()) + "; " + outcome);
    }
  }

  void delete_batch(const std::vector<std::string>& keys, std::size_t lo, std::size_t hi, bool& unsupported) const {
    pugi::xml_document doc;
    auto top = doc.append_child("Delete");
    top.append_attribute("xmlns") = kS3Namespace;
    top.append_child("Quiet").text() = "true";
    for (std::size_t i = lo; i < hi; ++i) top.append_child("Object").append_child("Key").text() = (root + keys[i]).c_str();
    const std::string xml = s3::xml_serialize(doc);
    const auto digest = s3::md5(xml);
    auto headers = base_headers();
    headers.push_back("Content-MD5: " + s3::base64(digest.data(), digest.size()));
    headers.push_back("Content-Type: application/xml");
    const ByteSpan body(reinterpret_cast<const std::uint8_t*>(xml.data()), xml.size());
    HttpRequest req{"POST", origin + bucket_path + "/?delete=", headers, std::span<const ByteSpan>(&body, 1)};
    HttpResponse r = execute(req, "DELETE of " + std::to_string(hi - lo) + " keys", location + "/" + keys[lo] + "...",
                             {404, 501});
    if (r.status == 501 || r.status == 404) {
      if (r.status == 404 && s3::xml_text(text_of(r.body), "Code").value_or("") == "NoSuchBucket") return;
      unsupported = true;
      return;
    }
    const s3::XmlAnswer answer(text_of(r.body));
    for (auto err : s3::xml_elements(answer.top(), "Error")) {
      const std::string key = s3::xml_text(err, "Key").value_or("?");
      const std::string code = s3::xml_text(err, "Code").value_or("?");
      const std::string msg = s3::xml_text(err, "Message").value_or("");
      raise(Error::Code::IO, "S3 DELETE of '" + (key.rfind(root, 0) == 0 ? key.substr(root.size()) : key) +
                                 "' at " + location + " failed: " + code + (msg.empty() ? "" : ": " + msg));
    }
  }
};

S3Store::S3Store(S3Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
S3Store::~S3Store() = default;

const S3Config& S3Store::config() const { return impl_->cfg; }
std::string S3Store::describe() const { return impl_->location; }
int S3Store::io_concurrency() const { return impl_->cfg.concurrency; }
std::string S3Store::object_url(const std::string& key) const { return impl_->key_url(key); }

std::optional<Bytes> S3Store::get(const std::string& key) const {
  check_key(key);
  const Impl& s = *impl_;
  HttpRequest req{"GET", s.key_url(key), s.base_headers(), {}};
  HttpResponse r = s.execute(req, "GET of '" + key + "'", s.where(key), {404});
  if (r.status == 404) {
    if (s3::xml_text(text_of(r.body), "Code").value_or("") == "NoSuchBucket") s.no_bucket("GET of '" + key + "'");
    return std::nullopt;
  }
  return std::move(r.body);
}

void S3Store::set(const std::string& key, ByteSpan value) { set_parts(key, std::span<const ByteSpan>(&value, 1)); }

void S3Store::set_parts(const std::string& key, std::span<const ByteSpan> parts) {
  check_key(key);
  const Impl& s = *impl_;
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  if (total > s.cfg.multipart_threshold) {
    s.multipart_put(key, parts, total);
    return;
  }
  auto headers = s.base_headers();
  headers.push_back("Content-Type: application/octet-stream");
  HttpRequest req{"PUT", s.key_url(key), headers, parts};
  HttpResponse r = s.execute(req, "PUT of '" + key + "'", s.where(key), {404});
  if (r.status == 404) {
    if (s3::xml_text(text_of(r.body), "Code").value_or("") == "NoSuchBucket") s.no_bucket("PUT of '" + key + "'");
    s.raise(Error::Code::IO, "S3 PUT of '" + key + "' at " + s.where(key) + " failed: " + Impl::status_text(r));
  }
}

bool S3Store::exists(const std::string& key) const {
  check_key(key);
  const Impl& s = *impl_;
  HttpRequest req{"HEAD", s.key_url(key), s.base_headers(), {}};
  return s.execute(req, "HEAD of '" + key + "'", s.where(key), {404}).status != 404;
}

void S3Store::erase(const std::string& key) {
  check_key(key);
  const Impl& s = *impl_;
  HttpRequest req{"DELETE", s.key_url(key), s.base_headers(), {}};
  s.execute(req, "DELETE of '" + key + "'", s.where(key), {404});
}

std::vector<std::string> S3Store::list(const std::string& prefix) const {
  const std::string p = normalize_prefix(prefix);
  const Impl& s = *impl_;
  std::vector<std::string> out;
  const std::string full = s.root + p;
  const bool found = s.list_objects(full, false, 0, [&](std::string key) {
    if (key.compare(0, s.root.size(), s.root) != 0) return;
    std::string rel = key.substr(s.root.size());
    // "a" lists "a" and "a/...", not the sibling "ab"; "" lists everything.
    if (p.empty() || rel == p || (rel.size() > p.size() && rel.compare(0, p.size(), p) == 0 && rel[p.size()] == '/'))
      out.push_back(std::move(rel));
  }, {});
  (void)found;  // a missing bucket holds no keys
  return out;
}

std::vector<std::string> S3Store::list_dir(const std::string& prefix) const {
  const std::string p = normalize_prefix(prefix);
  const Impl& s = *impl_;
  const std::string full = s.root + (p.empty() ? "" : p + "/");
  std::set<std::string> names;
  auto add = [&](std::string name) {
    if (name.compare(0, full.size(), full) != 0) return;
    name = name.substr(full.size());
    if (!name.empty() && name.back() == '/') name.pop_back();
    if (!name.empty()) names.insert(name);
  };
  s.list_objects(full, true, 0, add, add);
  return {names.begin(), names.end()};
}

void S3Store::erase_prefix(const std::string& prefix) {
  const Impl& s = *impl_;
  const std::vector<std::string> keys = list(prefix);
  if (keys.empty()) return;
  const std::size_t batches = (keys.size() + kDeleteBatch - 1) / kDeleteBatch;
  std::atomic<bool> unsupported{false};
  run_parallel(batches, std::min(s.cfg.concurrency, 8), [&](std::size_t b) {
    bool no = false;
    s.delete_batch(keys, b * kDeleteBatch, std::min(keys.size(), (b + 1) * kDeleteBatch), no);
    if (no) unsupported = true;
  });
  if (unsupported) {
    // S3-compatible servers without DeleteObjects: one DELETE per key.
    run_parallel(keys.size(), s.cfg.concurrency, [&](std::size_t i) { erase(keys[i]); });
  }
}

void S3Store::rename(const std::string& from, const std::string& to) {
  check_key(from);
  check_key(to);
  const Impl& s = *impl_;
  if (from == to) {
    if (!exists(from))
      s.raise(Error::Code::NotFound, "cannot rename '" + from + "' in " + s.location + ": key does not exist");
    return;
  }
  auto headers = s.base_headers();
  headers.push_back("x-amz-copy-source: /" + s3::uri_encode(s.cfg.bucket, false) + "/" +
                    s3::uri_encode(s.root + from, true));
  HttpRequest req{"PUT", s.key_url(to), headers, {}};
  HttpResponse r = s.execute(req, "COPY of '" + from + "' to '" + to + "'", s.where(to), {404}, true);
  if (r.status == 404) {
    if (s3::xml_text(text_of(r.body), "Code").value_or("") == "NoSuchBucket") s.no_bucket("COPY of '" + from + "'");
    s.raise(Error::Code::NotFound, "cannot rename '" + from + "' in " + s.location + ": key does not exist");
  }
  erase(from);
}

bool S3Store::root_exists() const {
  const Impl& s = *impl_;
  bool any = false;
  const bool bucket = s.list_objects(s.root, false, 1, [&](std::string) { any = true; }, {});
  return bucket && any;
}

}  // namespace zvf
