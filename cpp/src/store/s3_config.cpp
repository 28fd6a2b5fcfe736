// S3 settings: the s3:// URL, the environment and the ~/.aws profile files.
// Nothing here touches the network.
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "store/s3_credentials.hpp"
#include "store/s3_util.hpp"
#include "zvf/error.hpp"
#include "zvf/s3.hpp"

namespace zvf {

namespace {

using s3::lower;
using s3::nonempty;
using s3::read_text;

std::string expand_home(const std::string& path, const EnvLookup& env) {
  if (path.empty() || path[0] != '~') return path;
  if (path.size() > 1 && path[1] != '/') return path;  // "~user" is not expanded
  auto home = nonempty(env, "HOME");
  return home ? *home + path.substr(1) : path;
}

std::string aws_file(const EnvLookup& env, const char* variable, const char* name) {
  if (auto v = nonempty(env, variable)) return expand_home(*v, env);
  auto home = nonempty(env, "HOME");
  return home ? *home + "/.aws/" + name : std::string();
}

long env_number(const EnvLookup& env, const std::string& name, long fallback, long lo, long hi) {
  auto v = nonempty(env, name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v->c_str(), &end, 10);
  if (errno != 0 || end == v->c_str() || *end != '\0' || n < lo || n > hi)
    invalid("environment variable " + name + "='" + *v + "' is not a whole number in [" + std::to_string(lo) + ", " +
            std::to_string(hi) + "]");
  return n;
}

// S3's limits: parts of 5 MiB to 5 GiB (the last may be smaller), objects up to 5 TiB.
constexpr std::size_t kMinPart = std::size_t{5} << 20, kMaxPart = std::size_t{5} << 30;
constexpr std::size_t kMaxObject = std::size_t{5} << 40;

// A byte count: "67108864", "64M", "64MiB", "5G" (K, M, G, T are powers of 1024).
std::size_t env_size(const EnvLookup& env, const std::string& name, std::size_t fallback, std::size_t lo,
                     std::size_t hi) {
  auto v = nonempty(env, name);
  if (!v) return fallback;
  const std::string text = *v;
  std::size_t i = 0;
  unsigned long long n = 0;
  bool any = false;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    any = true;
    if (n > (1ULL << 50)) break;
    n = n * 10 + static_cast<unsigned>(text[i] - '0');
  }
  std::string unit = lower(text.substr(i));
  if (unit.size() > 1 && (unit.substr(1) == "ib" || unit.substr(1) == "b")) unit = unit.substr(0, 1);
  int shift = -1;
  if (unit.empty() || unit == "b") shift = 0;
  else if (unit == "k") shift = 10;
  else if (unit == "m") shift = 20;
  else if (unit == "g") shift = 30;
  else if (unit == "t") shift = 40;
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "] bytes";
  if (!any || shift < 0 || n > (1ULL << 50))
    invalid("environment variable " + name + "='" + text + "' is not a size in bytes (e.g. 67108864 or 64MiB)");
  const unsigned long long bytes = n << shift;
  if ((bytes >> shift) != n || bytes < lo || bytes > hi)
    invalid("environment variable " + name + "='" + text + "' is outside " + range);
  return static_cast<std::size_t>(bytes);
}

bool env_flag(const EnvLookup& env, const std::string& name) {
  auto v = nonempty(env, name);
  if (!v) return false;
  const std::string s = lower(*v);
  return !(s == "0" || s == "false" || s == "no" || s == "off");
}

bool valid_bucket(const std::string& b) {
  if (b.size() < 1 || b.size() > 255) return false;
  for (char c : b)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

std::string normalize_endpoint(std::string e, const std::string& url) {
  while (!e.empty() && e.back() == '/') e.pop_back();
  if (e.empty()) invalid("empty S3 endpoint for '" + url + "'");
  const std::size_t sep = e.find("://");
  if (sep == std::string::npos) {
    e = "https://" + e;
  } else {
    const std::string scheme = lower(e.substr(0, sep));
    if (scheme != "http" && scheme != "https")
      invalid("S3 endpoint '" + e + "' must start with http:// or https:// (in '" + url + "')");
    e = scheme + e.substr(sep);
  }
  return e;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

S3Config s3_config_from_url(const std::string& url, const EnvLookup& env) {
  S3Config c;
  const std::string scheme = "s3://";
  if (lower(url.substr(0, scheme.size())) != scheme) invalid("not an s3:// URL: '" + url + "'");
  std::string rest = url.substr(scheme.size());

  // Options after '?'.
  std::map<std::string, std::string> opts;
  if (const std::size_t q = rest.find('?'); q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    std::size_t pos = 0;
    while (pos <= query.size()) {
      std::size_t amp = query.find('&', pos);
      if (amp == std::string::npos) amp = query.size();
      const std::string item = query.substr(pos, amp - pos);
      pos = amp + 1;
      if (item.empty()) continue;
      const std::size_t eq = item.find('=');
      const std::string name = lower(s3::url_decode(item.substr(0, eq)));
      const std::string value = eq == std::string::npos ? "" : s3::url_decode(item.substr(eq + 1));
      if (name != "endpoint" && name != "region" && name != "profile" && name != "addressing")
        invalid("unknown option '" + name + "' in S3 URL '" + url +
                "'; the options are endpoint, region, profile and addressing");
      opts[name] = value;
    }
  }

  const std::size_t slash = rest.find('/');
  c.bucket = rest.substr(0, slash);
  if (c.bucket.empty()) invalid("S3 URL '" + url + "' has no bucket; expected s3://BUCKET/PREFIX");
  if (!valid_bucket(c.bucket))
    invalid("S3 URL '" + url + "': '" + c.bucket + "' is not a valid bucket name (letters, digits, '.', '-')");
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) {
    try {
      check_key(prefix);
    } catch (const Error& e) {
      invalid("S3 URL '" + url + "' has an invalid prefix '" + prefix +
              "': no empty, '.' or '..' components, no backslashes");
    }
  }
  c.prefix = prefix;

  // Profile files.
  s3::CredentialSettings cs;
  cs.env = env;
  cs.profile_from_url = opts.count("profile") > 0;
  cs.profile_explicit = cs.profile_from_url || nonempty(env, "AWS_PROFILE").has_value();
  cs.profile = cs.profile_from_url ? opts["profile"] : nonempty(env, "AWS_PROFILE").value_or("default");
  cs.credentials_path = aws_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  cs.config_path = aws_file(env, "AWS_CONFIG_FILE", "config");
  if (!cs.credentials_path.empty())
    if (auto t = read_text(cs.credentials_path)) cs.credentials_file = s3::parse_ini(*t);
  if (!cs.config_path.empty())
    if (auto t = read_text(cs.config_path)) cs.config_file = s3::parse_ini(*t);
  cs.home = nonempty(env, "HOME").value_or("");
  const std::map<std::string, std::string>* conf_section = nullptr;
  if (auto it = cs.config_file.find("profile " + cs.profile); it != cs.config_file.end()) conf_section = &it->second;
  else if (cs.profile == "default")
    if (auto d = cs.config_file.find("default"); d != cs.config_file.end()) conf_section = &d->second;
  auto config_value = [&](const std::string& key) -> std::optional<std::string> {
    if (!conf_section) return std::nullopt;
    if (auto it = conf_section->find(key); it != conf_section->end() && !it->second.empty()) return it->second;
    return std::nullopt;
  };

  if (opts.count("region") && !opts["region"].empty()) c.region = opts["region"];
  else if (auto r = nonempty(env, "AWS_REGION")) c.region = *r;
  else if (auto r2 = nonempty(env, "AWS_DEFAULT_REGION")) c.region = *r2;
  else if (auto r3 = config_value("region")) c.region = *r3;
  for (char ch : c.region)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_')
      invalid("'" + c.region + "' is not a valid AWS region name");

  // Credentials: the AWS chain (s3_credentials.cpp); nothing is fetched yet.
  c.log = env_flag(env, "ZVF_S3_LOG");
  cs.region = c.region;
  cs.log = c.log;
  try {
    c.credentials = s3::resolve_credentials(cs);
  } catch (const Error& e) {
    invalid(std::string(e.what()) + " (for '" + url + "')");
  }
  c.credentials_from = c.credentials ? c.credentials->describe() : "none (anonymous requests)";

  std::optional<std::string> endpoint;
  if (opts.count("endpoint")) endpoint = opts["endpoint"];
  else if (auto e = nonempty(env, "AWS_ENDPOINT_URL_S3")) endpoint = e;
  else if (auto e2 = nonempty(env, "AWS_ENDPOINT_URL")) endpoint = e2;
  else if (auto e3 = config_value("endpoint_url")) endpoint = e3;
  if (endpoint) c.endpoint = normalize_endpoint(*endpoint, url);

  std::string addressing = opts.count("addressing") ? lower(opts["addressing"])
                                                    : lower(nonempty(env, "ZVF_S3_ADDRESSING").value_or(""));
  if (addressing.empty()) {
    // Custom endpoints (MinIO, Ceph, moto) rarely have wildcard DNS; dotted
    // bucket names break TLS certificates under virtual hosting.
    c.path_style = !c.endpoint.empty() || c.bucket.find('.') != std::string::npos;
  } else if (addressing == "path") {
    c.path_style = true;
  } else if (addressing == "virtual") {
    c.path_style = false;
  } else {
    invalid("S3 addressing must be 'path' or 'virtual', got '" + addressing + "'");
  }

  if (auto ca = nonempty(env, "AWS_CA_BUNDLE")) c.ca_bundle = expand_home(*ca, env);
  c.concurrency = static_cast<int>(env_number(env, "ZVF_S3_CONCURRENCY", c.concurrency, 1, 1024));
  c.max_attempts = static_cast<int>(env_number(env, "ZVF_S3_MAX_ATTEMPTS", c.max_attempts, 1, 100));
  c.retry_base_ms = static_cast<int>(env_number(env, "ZVF_S3_RETRY_BASE_MS", c.retry_base_ms, 0, 600000));
  c.retry_max_ms = static_cast<int>(env_number(env, "ZVF_S3_RETRY_MAX_MS", c.retry_max_ms, 0, 3600000));
  c.connect_timeout_ms = env_number(env, "ZVF_S3_CONNECT_TIMEOUT_MS", c.connect_timeout_ms, 1, 3600000);
  c.request_timeout_ms = env_number(env, "ZVF_S3_REQUEST_TIMEOUT_MS", c.request_timeout_ms, 0, 86400000);
  c.stall_timeout_s = env_number(env, "ZVF_S3_STALL_TIMEOUT_S", c.stall_timeout_s, 0, 86400);
  c.multipart_threshold = env_size(env, "ZVF_S3_MULTIPART_THRESHOLD", c.multipart_threshold, 0, kMaxObject);
  c.part_size = env_size(env, "ZVF_S3_PART_SIZE", c.part_size, kMinPart, kMaxPart);
  return c;
}

std::string s3_redact(const S3Config& config, std::string text) {
  return config.credentials ? config.credentials->redact(std::move(text)) : text;
}

}  // namespace zvf
