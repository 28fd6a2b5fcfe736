// The AWS credential chain, in the order of the AWS CLI and SDKs:
//
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), unless the URL names a profile
//   2. the profile's role_arn with source_profile or credential_source: STS AssumeRole
//   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or the profile's
//      web_identity_token_file + role_arn: STS AssumeRoleWithWebIdentity (unsigned)
//   4. the profile's SSO settings: the token that `aws sso login` cached, then the portal's GetRoleCredentials
//   5. keys in ~/.aws/credentials; 6. the profile's credential_process; 7. keys in ~/.aws/config
//   8. container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI)
//   9. EC2 instance metadata (IMDSv2), unless AWS_EC2_METADATA_DISABLED; if it does
//      not answer, anonymous requests
//
// Temporary credentials are cached and renewed `window` before they expire
// (credential_action). Every secret a source handles is registered with its
// Secrets, so messages can be scrubbed of all of them.
#include "store/s3_credentials.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/s3_http.hpp"
#include "zvf/error.hpp"

extern char** environ;

namespace zvf {

CredentialAction credential_action(std::chrono::system_clock::time_point now,
                                   std::optional<std::chrono::system_clock::time_point> expiration,
                                   std::optional<std::chrono::system_clock::time_point> failed_at,
                                   const CredentialTiming& timing) {
  if (!expiration) return CredentialAction::Use;
  if (now < *expiration - timing.window) return CredentialAction::Use;
  // Due for renewal; after a failed attempt, wait a little while the old ones still work.
  if (failed_at && now < *failed_at + timing.retry_after && now < *expiration - timing.margin)
    return CredentialAction::Use;
  return CredentialAction::Refresh;
}

namespace s3 {

namespace {

using Clock = std::chrono::system_clock;
using json = nlohmann::json;

// Every secret seen by one credential chain: keys, session tokens, web identity
// and container tokens. Shared by the providers of the chain.
class Secrets {
 public:
  void add(const std::string& s) {
    if (s.size() < 4) return;
    std::lock_guard g(m_);
    if (std::find(items_.begin(), items_.end(), s) == items_.end()) items_.push_back(s);
  }
  void add(const AwsCredentials& c) {
    add(c.access_key);
    add(c.secret_key);
    add(c.session_token);
  }
  std::string redact(std::string text) const {
    std::vector<std::string> all;
    {
      std::lock_guard g(m_);
      all = items_;
    }
    // Longest first, so a secret that contains another goes whole.
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& secret : all)
      for (std::size_t pos = 0; (pos = text.find(secret, pos)) != std::string::npos;) {
        text.replace(pos, secret.size(), "***");
        pos += 3;
      }
    return text;
  }

 private:
  mutable std::mutex m_;
  std::vector<std::string> items_;
};

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string form(std::initializer_list<std::pair<std::string, std::string>> fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (v.empty()) continue;
    out += (out.empty() ? "" : "&") + k + "=" + uri_encode(v, false);
  }
  return out;
}

std::string text_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

// A cache over one fetch function; renews per credential_action().
class CachedProvider final : public CredentialProvider {
 public:
  using Fetch = std::function<AwsCredentials()>;
  CachedProvider(std::string description, Fetch fetch, std::shared_ptr<Secrets> secrets, bool refreshable, bool log)
      : description_(std::move(description)),
        fetch_(std::move(fetch)),
        secrets_(std::move(secrets)),
        refreshable_(refreshable),
        log_(log) {}

  AwsCredentials current() override {
    std::lock_guard g(m_);
    const auto now = Clock::now();
    if (!have_) {
      store(fetch_checked());
      return creds_;
    }
    if (credential_action(now, creds_.expiration, failed_at_) == CredentialAction::Use) return creds_;
    try {
      store(fetch_checked());
    } catch (const Error& e) {
      if (!creds_.expiration || now >= *creds_.expiration - CredentialTiming{}.margin) throw;
      failed_at_ = now;
      log("renewing credentials from " + description_ + " failed (" + e.what() +
          "); the current ones stay in use while they last");
    }
    return creds_;
  }

  bool refresh() override {
    if (!refreshable_) return false;
    std::lock_guard g(m_);
    store(fetch_checked());
    return true;
  }

  std::string describe() const override { return description_; }
  std::string redact(std::string text) const override { return secrets_->redact(std::move(text)); }

 private:
  AwsCredentials fetch_checked() {
    try {
      AwsCredentials c = fetch_();
      secrets_->add(c);
      return c;
    } catch (const Error& e) {
      fail(e.code(), secrets_->redact(e.what()));
    }
  }
  void store(AwsCredentials c) {
    creds_ = std::move(c);
    have_ = true;
    failed_at_.reset();
  }
  void log(const std::string& line) const {
    if (!log_) return;
    const std::string text = secrets_->redact("zvf s3: " + line + "\n");
    std::fwrite(text.data(), 1, text.size(), stderr);
  }

  std::string description_;
  Fetch fetch_;
  std::shared_ptr<Secrets> secrets_;
  bool refreshable_;
  bool log_;
  std::mutex m_;
  bool have_ = false;
  AwsCredentials creds_;
  std::optional<Clock::time_point> failed_at_;
};

using Provider = std::shared_ptr<CredentialProvider>;

// ---- fetching ------------------------------------------------------------------------

// One HTTP exchange with a few attempts on network errors and 5xx. Returns the
// last response; `what` names the source for messages.
HttpResponse call(const SimpleRequest& req, const std::string& what, int attempts = 3) {
  HttpResponse r;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    r = perform_simple(req);
    const bool transient = r.curl_code != 0 ? HttpClient::transient(r.curl_code) : (r.status >= 500 || r.status == 429);
    if (!transient || attempt == attempts) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
  }
  if (r.curl_code != 0)
    fail(Error::Code::IO, what + ": " + r.curl_error + " (curl error " + std::to_string(r.curl_code) + ")");
  return r;
}

std::chrono::system_clock::time_point expiry_or_fail(const std::string& text, const std::string& what) {
  auto t = parse_iso8601(text);
  if (!t) fail(Error::Code::IO, what + ": the expiration '" + text + "' is not an ISO 8601 time");
  return *t;
}

// {"AccessKeyId", "SecretAccessKey", "Token" or "SessionToken", "Expiration"}:
// the container, instance metadata and credential_process format.
AwsCredentials credentials_from_json(const std::string& body, const std::string& what) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(Error::Code::IO, what + ": the response is not a JSON object");
  auto str = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  AwsCredentials c;
  c.access_key = str("AccessKeyId");
  c.secret_key = str("SecretAccessKey");
  c.session_token = str("Token");
  if (c.session_token.empty()) c.session_token = str("SessionToken");
  if (c.access_key.empty() || c.secret_key.empty())
    fail(Error::Code::IO, what + ": the response has no AccessKeyId or SecretAccessKey");
  if (const std::string e = str("Expiration"); !e.empty()) c.expiration = expiry_or_fail(e, what);
  return c;
}

std::string sts_endpoint(const CredentialSettings& s, const std::string& region) {
  std::string e;
  if (auto v = nonempty(s.env, "AWS_ENDPOINT_URL_STS")) e = *v;
  else if (auto v2 = nonempty(s.env, "AWS_ENDPOINT_URL")) e = *v2;
  else return "https://sts." + region + ".amazonaws.com";
  while (!e.empty() && e.back() == '/') e.pop_back();
  if (e.find("://") == std::string::npos) e = "https://" + e;
  return e;
}

// AssumeRole and AssumeRoleWithWebIdentity share their response format.
AwsCredentials sts_call(const std::string& endpoint, const std::string& region, const std::string& body,
                        const AwsCredentials* signer, const std::string& what) {
  SimpleRequest req;
  req.method = "POST";
  req.url = endpoint + "/";
  req.body = body;
  req.headers = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: application/xml"};
  if (signer) {
    req.sigv4_scope = "aws:amz:" + region + ":sts";
    req.credentials = signer;
    if (!signer->session_token.empty()) req.headers.push_back("x-amz-security-token: " + signer->session_token);
  }
  const HttpResponse r = call(req, what);
  const XmlAnswer xml(text_of(r.body));
  if (r.status != 200) {
    std::string detail = "HTTP " + std::to_string(r.status);
    if (auto code = xml_text(xml, "Code")) detail += " " + *code;
    if (auto msg = xml_text(xml, "Message"); msg && !msg->empty()) detail += ": " + *msg;
    fail(Error::Code::IO, what + " failed: " + detail);
  }
  const auto block = xml_elements(xml.top(), "Credentials");
  if (block.empty()) fail(Error::Code::IO, what + ": the STS response holds no Credentials");
  AwsCredentials c;
  c.access_key = xml_text(block[0], "AccessKeyId").value_or("");
  c.secret_key = xml_text(block[0], "SecretAccessKey").value_or("");
  c.session_token = xml_text(block[0], "SessionToken").value_or("");
  if (c.access_key.empty() || c.secret_key.empty()) fail(Error::Code::IO, what + ": the STS credentials are incomplete");
  if (auto e = xml_text(block[0], "Expiration")) c.expiration = expiry_or_fail(*e, what);
  return c;
}

// Runs `command` through /bin/sh, its stdout captured (stderr stays the user's).
AwsCredentials run_credential_process(const std::string& command, const std::string& what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail(Error::Code::IO, what + ": cannot create a pipe: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    fail(Error::Code::IO, what + ": cannot start /bin/sh: " + std::strerror(rc));
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail(Error::Code::IO, what + " failed: " +
                              (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                                 : std::string("killed by a signal")) +
                              " (its own messages, if any, are on stderr)");
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(Error::Code::IO, what + ": its output is not a JSON object");
  if (!j.contains("Version") || j["Version"] != 1)
    fail(Error::Code::IO, what + ": its output must have \"Version\": 1");
  return credentials_from_json(out, what);
}

// ---- the chain -----------------------------------------------------------------------

using Section = std::map<std::string, std::string>;

class Resolver {
 public:
  explicit Resolver(const CredentialSettings& s) : s_(s), secrets_(std::make_shared<Secrets>()) {}

  Provider resolve() {
    if (!s_.profile_from_url)
      if (auto p = env_keys()) return p;
    const bool exists = cred_section(s_.profile) || conf_section(s_.profile);
    if (s_.profile_explicit && !exists)
      invalid("AWS profile '" + s_.profile + "' is in neither " + s_.credentials_path + " nor " + s_.config_path);
    std::vector<std::string> chain;
    if (auto p = profile(s_.profile, chain, true)) return p;
    if (auto p = container(false)) return p;
    return instance_metadata(true);
  }

 private:
  const Section* cred_section(const std::string& name) const {
    auto it = s_.credentials_file.find(name);
    return it == s_.credentials_file.end() ? nullptr : &it->second;
  }
  const Section* conf_section(const std::string& name) const {
    auto it = s_.config_file.find("profile " + name);
    if (it != s_.config_file.end()) return &it->second;
    if (name == "default")
      if (auto d = s_.config_file.find("default"); d != s_.config_file.end()) return &d->second;
    return nullptr;
  }
  static std::optional<std::string> get(const Section* sec, const std::string& key) {
    if (!sec) return std::nullopt;
    auto it = sec->find(key);
    if (it == sec->end() || it->second.empty()) return std::nullopt;
    return it->second;
  }
  // A profile setting: the credentials file first, then the config file.
  std::optional<std::string> value(const std::string& profile, const std::string& key) const {
    if (auto v = get(cred_section(profile), key)) return v;
    return get(conf_section(profile), key);
  }

  Provider make(std::string description, CachedProvider::Fetch fetch, bool refreshable = true) {
    return std::make_shared<CachedProvider>(std::move(description), std::move(fetch), secrets_, refreshable, s_.log);
  }
  Provider fixed(std::string description, AwsCredentials c) {
    secrets_->add(c);
    return make(std::move(description), [c] { return c; }, false);
  }

  Provider env_keys() {
    auto key = nonempty(s_.env, "AWS_ACCESS_KEY_ID"), secret = nonempty(s_.env, "AWS_SECRET_ACCESS_KEY");
    if (!key || !secret) return nullptr;
    AwsCredentials c{*key, *secret,
                     nonempty(s_.env, "AWS_SESSION_TOKEN").value_or(nonempty(s_.env, "AWS_SECURITY_TOKEN").value_or("")),
                     std::nullopt};
    return fixed("environment (AWS_ACCESS_KEY_ID)", c);
  }

  Provider keys_in(const Section* sec, const std::string& profile, const std::string& file) {
    auto k = get(sec, "aws_access_key_id"), s = get(sec, "aws_secret_access_key");
    if (!k || !s) return nullptr;
    return fixed("profile '" + profile + "' (" + file + ")",
                 AwsCredentials{*k, *s, get(sec, "aws_session_token").value_or(""), std::nullopt});
  }

  std::string region_of(const std::string& profile) const {
    if (auto r = get(conf_section(profile), "region")) return *r;
    return s_.region.empty() ? "us-east-1" : s_.region;
  }

  // The credentials of `name` (null if it gives none). `chain` lists the
  // profiles being resolved, to catch source_profile cycles.
  Provider profile(const std::string& name, std::vector<std::string>& chain, bool top) {
    if (std::find(chain.begin(), chain.end(), name) != chain.end()) {
      std::string path;
      for (const auto& p : chain) path += "'" + p + "' -> ";
      invalid("AWS profiles form a source_profile cycle: " + path + "'" + name + "'");
    }
    chain.push_back(name);
    const std::string what = "profile '" + name + "'";
    auto role_arn = value(name, "role_arn");
    const auto token_file = value(name, "web_identity_token_file");
    if (role_arn && !token_file) return assume_role(name, *role_arn, chain);
    if (top)
      if (auto p = web_identity_from_env()) return p;
    if (role_arn && token_file) return web_identity(*role_arn, *token_file, value(name, "role_session_name"), what);
    if (value(name, "sso_session") || value(name, "sso_start_url")) return sso(name);
    if (auto p = keys_in(cred_section(name), name, s_.credentials_path)) return p;
    if (auto cmd = value(name, "credential_process")) {
      const std::string command = *cmd, desc = "credential_process of " + what;
      return make(desc, [command, desc] { return run_credential_process(command, desc); });
    }
    if (auto p = keys_in(conf_section(name), name, s_.config_path)) return p;
    return nullptr;
  }

  Provider assume_role(const std::string& name, const std::string& role_arn, std::vector<std::string>& chain) {
    const std::string what = "profile '" + name + "'";
    if (value(name, "mfa_serial"))
      invalid(what + " needs an MFA code (mfa_serial), which zvf cannot ask for; get temporary credentials with "
                     "`aws configure export-credentials --profile " + name + " --format process` as a "
                     "credential_process in another profile, or in the AWS_* variables");
    Provider source;
    std::string source_desc;
    if (auto sp = value(name, "source_profile")) {
      if (*sp == name) {
        // A profile may hold the keys its own role is assumed with.
        source = keys_in(cred_section(name), name, s_.credentials_path);
        if (!source) source = keys_in(conf_section(name), name, s_.config_path);
      } else {
        if (!cred_section(*sp) && !conf_section(*sp))
          invalid(what + " names source_profile '" + *sp + "', which is in neither " + s_.credentials_path + " nor " +
                  s_.config_path);
        source = profile(*sp, chain, false);
      }
      if (!source) invalid("source_profile '" + *sp + "' of " + what + " has no credentials");
    } else if (auto cs = value(name, "credential_source")) {
      if (*cs == "Environment") source = env_keys();
      else if (*cs == "EcsContainer") source = container(true);
      else if (*cs == "Ec2InstanceMetadata") source = instance_metadata(false);
      else
        invalid("credential_source '" + *cs + "' of " + what +
                " is not one of Environment, EcsContainer, Ec2InstanceMetadata");
      if (!source) invalid("credential_source '" + *cs + "' of " + what + " gives no credentials");
    } else {
      invalid(what + " has role_arn but neither source_profile, credential_source nor web_identity_token_file");
    }
    const std::string region = region_of(name);
    const std::string endpoint = sts_endpoint(s_, region);
    const std::string session = value(name, "role_session_name").value_or("zvf-session");
    const std::string external_id = value(name, "external_id").value_or("");
    const std::string duration = value(name, "duration_seconds").value_or("");
    const std::string desc = what + ": assume role " + role_arn + " with " + source->describe();
    return make(desc, [=] {
      const AwsCredentials src = source->current();
      if (src.access_key.empty()) fail(Error::Code::IO, desc + ": the source gives no credentials");
      const std::string body = form({{"Action", "AssumeRole"},
                                     {"DurationSeconds", duration},
                                     {"ExternalId", external_id},
                                     {"RoleArn", role_arn},
                                     {"RoleSessionName", session},
                                     {"Version", "2011-06-15"}});
      return sts_call(endpoint, region, body, &src, "STS AssumeRole for " + desc);
    });
  }

  Provider web_identity_from_env() {
    auto file = nonempty(s_.env, "AWS_WEB_IDENTITY_TOKEN_FILE"), role = nonempty(s_.env, "AWS_ROLE_ARN");
    if (!file || !role) return nullptr;
    return web_identity(*role, *file, nonempty(s_.env, "AWS_ROLE_SESSION_NAME"), "AWS_WEB_IDENTITY_TOKEN_FILE");
  }

  Provider web_identity(const std::string& role_arn, const std::string& token_file,
                        const std::optional<std::string>& session_name, const std::string& from) {
    const std::string region = s_.region.empty() ? "us-east-1" : s_.region;
    const std::string endpoint = sts_endpoint(s_, region);
    const std::string session = session_name.value_or("zvf-session");
    const std::string desc = "web identity (" + from + "): assume role " + role_arn;
    auto secrets = secrets_;
    return make(desc, [=] {
      // Re-read every time: the platform rotates the token in place.
      auto token = read_text(token_file);
      if (!token) fail(Error::Code::IO, desc + ": cannot read the token file " + token_file);
      const std::string t = trim(*token);
      if (t.empty()) fail(Error::Code::IO, desc + ": the token file " + token_file + " is empty");
      secrets->add(t);
      const std::string body = form({{"Action", "AssumeRoleWithWebIdentity"},
                                     {"RoleArn", role_arn},
                                     {"RoleSessionName", session},
                                     {"Version", "2011-06-15"},
                                     {"WebIdentityToken", t}});
      return sts_call(endpoint, region, body, nullptr, "STS AssumeRoleWithWebIdentity for " + desc);
    });
  }

  // ECS/EKS: an HTTP endpoint on the host; plain HTTP only to loopback or the
  // platform's link-local addresses, as the AWS SDKs allow.
  Provider container(bool required) {
    std::string url;
    if (auto rel = nonempty(s_.env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
      url = "http://169.254.170.2" + (rel->front() == '/' ? *rel : "/" + *rel);
    } else if (auto full = nonempty(s_.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
      url = *full;
      const std::string l = lower(url);
      if (l.rfind("http://", 0) == 0) {
        std::string host = l.substr(7, l.find_first_of("/?#", 7) - 7);
        if (!host.empty() && host.front() == '[') host = host.substr(0, host.find(']') + 1);
        else host = host.substr(0, host.find(':'));
        const bool allowed = host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]" ||
                             host == "169.254.170.2" || host == "169.254.170.23" || host == "[fd00:ec2::23]";
        if (!allowed)
          invalid("AWS_CONTAINER_CREDENTIALS_FULL_URI '" + url +
                  "': plain http is allowed only to a loopback address or the ECS/EKS agent; use https");
      } else if (l.rfind("https://", 0) != 0) {
        invalid("AWS_CONTAINER_CREDENTIALS_FULL_URI '" + url + "' must start with http:// or https://");
      }
    } else {
      if (required) invalid("credential_source EcsContainer, but AWS_CONTAINER_CREDENTIALS_*_URI is not set");
      return nullptr;
    }
    const auto token_file = nonempty(s_.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const auto token = nonempty(s_.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (token) secrets_->add(*token);
    const std::string desc = "container credentials (" + url + ")";
    auto secrets = secrets_;
    return make(desc, [=] {
      SimpleRequest req;
      req.url = url;
      req.connect_timeout_ms = 2000;
      req.timeout_ms = 5000;
      std::string auth;
      if (token_file) {
        auto t = read_text(*token_file);
        if (!t) fail(Error::Code::IO, desc + ": cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + *token_file);
        auth = trim(*t);
      } else if (token) {
        auth = *token;
      }
      if (!auth.empty()) {
        secrets->add(auth);
        req.headers.push_back("Authorization: " + auth);
      }
      const HttpResponse r = call(req, desc);
      if (r.status != 200) fail(Error::Code::IO, desc + ": HTTP " + std::to_string(r.status));
      return credentials_from_json(text_of(r.body), desc);
    });
  }

  // IMDSv2: a session token (PUT), the role's name, then its credentials.
  // As the last link of the chain (`fallback`), an instance metadata service
  // that does not answer means "not on EC2": anonymous requests.
  Provider instance_metadata(bool fallback) {
    const auto disabled = nonempty(s_.env, "AWS_EC2_METADATA_DISABLED");
    if (disabled && lower(*disabled) == "true") {
      if (fallback) return nullptr;
      invalid("credential_source Ec2InstanceMetadata, but AWS_EC2_METADATA_DISABLED is true");
    }
    std::string base;
    if (auto e = nonempty(s_.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")) base = *e;
    else if (lower(nonempty(s_.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").value_or("")) == "ipv6")
      base = "http://[fd00:ec2::254]";
    else base = "http://169.254.169.254";
    while (!base.empty() && base.back() == '/') base.pop_back();
    auto number = [&](const char* var, long fallback_value) {
      auto v = nonempty(s_.env, var);
      if (!v) return fallback_value;
      char* end = nullptr;
      const long n = std::strtol(v->c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > 3600) invalid(std::string(var) + "='" + *v + "' is not a whole number in [1, 3600]");
      return n;
    };
    const long timeout_ms = number("AWS_METADATA_SERVICE_TIMEOUT", 1) * 1000;
    const int attempts = static_cast<int>(number("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1));
    const std::string desc = "EC2 instance metadata (" + base + ")";
    auto secrets = secrets_;
    auto reached = std::make_shared<bool>(false);
    return make(fallback ? desc + ", else anonymous" : desc, [=]() -> AwsCredentials {
      SimpleRequest token_req;
      token_req.method = "PUT";
      token_req.url = base + "/latest/api/token";
      token_req.headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
      token_req.connect_timeout_ms = timeout_ms;
      token_req.timeout_ms = timeout_ms;
      HttpResponse t;
      try {
        t = call(token_req, desc, attempts);
      } catch (const Error&) {
        if (fallback && !*reached) return {};  // not on EC2
        throw;
      }
      *reached = true;
      if (t.status != 200) fail(Error::Code::IO, desc + ": the token request answered HTTP " + std::to_string(t.status));
      const std::string token = trim(text_of(t.body));
      secrets->add(token);
      SimpleRequest role_req = token_req;
      role_req.method = "GET";
      role_req.headers = {"X-aws-ec2-metadata-token: " + token};
      role_req.url = base + "/latest/meta-data/iam/security-credentials/";
      const HttpResponse roles = call(role_req, desc, attempts);
      if (roles.status == 404 && fallback) return {};  // no role attached to this instance
      if (roles.status != 200) fail(Error::Code::IO, desc + ": listing roles answered HTTP " + std::to_string(roles.status));
      std::string role = text_of(roles.body);
      role = trim(role.substr(0, role.find('\n')));
      if (role.empty()) fail(Error::Code::IO, desc + ": no IAM role is attached to this instance");
      role_req.url += uri_encode(role, false);
      const HttpResponse cr = call(role_req, desc, attempts);
      if (cr.status != 200) fail(Error::Code::IO, desc + ": role '" + role + "' answered HTTP " + std::to_string(cr.status));
      const std::string body = text_of(cr.body);
      json j = json::parse(body, nullptr, false);
      if (j.is_object() && j.contains("Code") && j["Code"] != "Success")
        fail(Error::Code::IO, desc + ": role '" + role + "': " + j["Code"].dump());
      return credentials_from_json(body, desc);
    });
  }

  // IAM Identity Center: the access token `aws sso login` cached, then the
  // portal's GetRoleCredentials. An expired token needs a new `aws sso login`.
  Provider sso(const std::string& name) {
    const std::string what = "profile '" + name + "'";
    std::string start_url, sso_region;
    if (auto session = value(name, "sso_session")) {
      auto it = s_.config_file.find("sso-session " + *session);
      if (it == s_.config_file.end())
        invalid(what + " names sso_session '" + *session + "', which has no [sso-session " + *session + "] in " +
                s_.config_path);
      start_url = get(&it->second, "sso_start_url").value_or("");
      sso_region = get(&it->second, "sso_region").value_or("");
    } else {
      start_url = value(name, "sso_start_url").value_or("");
      sso_region = value(name, "sso_region").value_or("");
    }
    const auto account = value(name, "sso_account_id"), role = value(name, "sso_role_name");
    if (start_url.empty() || sso_region.empty() || !account || !role)
      invalid(what + " is an SSO profile but lacks one of sso_start_url, sso_region, sso_account_id, sso_role_name");
    std::string portal;
    if (auto e = nonempty(s_.env, "AWS_ENDPOINT_URL_SSO")) portal = *e;
    else if (auto e2 = nonempty(s_.env, "AWS_ENDPOINT_URL")) portal = *e2;
    else portal = "https://portal.sso." + sso_region + ".amazonaws.com";
    while (!portal.empty() && portal.back() == '/') portal.pop_back();
    const std::string cache_dir = s_.home.empty() ? std::string() : s_.home + "/.aws/sso/cache";
    const std::string desc = what + ": SSO role " + *role + " in account " + *account;
    const std::string url = portal + "/federation/credentials?account_id=" + uri_encode(*account, false) +
                            "&role_name=" + uri_encode(*role, false);
    auto secrets = secrets_;
    return make(desc, [=] {
      const std::string token = sso_token(cache_dir, start_url, name, desc);
      secrets->add(token);
      SimpleRequest req;
      req.url = url;
      req.headers = {"x-amz-sso_bearer_token: " + token};
      const HttpResponse r = call(req, desc);
      if (r.status == 401 || r.status == 403)
        fail(Error::Code::IO, desc + ": the portal refused the cached SSO token (HTTP " + std::to_string(r.status) +
                                  "); run `aws sso login --profile " + name + "`");
      if (r.status != 200) fail(Error::Code::IO, desc + ": GetRoleCredentials answered HTTP " + std::to_string(r.status));
      json j = json::parse(text_of(r.body), nullptr, false);
      if (j.is_discarded() || !j.contains("roleCredentials") || !j["roleCredentials"].is_object())
        fail(Error::Code::IO, desc + ": the portal's answer has no roleCredentials");
      const json& rc = j["roleCredentials"];
      AwsCredentials c;
      c.access_key = rc.value("accessKeyId", "");
      c.secret_key = rc.value("secretAccessKey", "");
      c.session_token = rc.value("sessionToken", "");
      if (c.access_key.empty() || c.secret_key.empty()) fail(Error::Code::IO, desc + ": incomplete roleCredentials");
      if (rc.contains("expiration") && rc["expiration"].is_number())
        c.expiration = Clock::time_point(std::chrono::milliseconds(rc["expiration"].get<std::int64_t>()));
      return c;
    });
  }

  // The newest unexpired token for `start_url` among ~/.aws/sso/cache/*.json.
  static std::string sso_token(const std::string& dir, const std::string& start_url, const std::string& profile,
                               const std::string& desc) {
    const std::string login = "run `aws sso login --profile " + profile + "`";
    DIR* d = dir.empty() ? nullptr : ::opendir(dir.c_str());
    if (!d) fail(Error::Code::IO, desc + ": no SSO token cache at " + dir + "; " + login);
    std::string best;
    Clock::time_point best_expiry{};
    bool expired_only = false;
    while (dirent* e = ::readdir(d)) {
      const std::string file = e->d_name;
      if (file.size() < 5 || file.compare(file.size() - 5, 5, ".json") != 0) continue;
      auto text = read_text(dir + "/" + file);
      if (!text) continue;
      json j = json::parse(*text, nullptr, false);
      if (!j.is_object() || j.value("startUrl", "") != start_url || !j.contains("accessToken")) continue;
      auto expiry = parse_iso8601(j.value("expiresAt", ""));
      if (!expiry) continue;
      if (*expiry <= Clock::now()) {
        expired_only = true;
        continue;
      }
      if (best.empty() || *expiry > best_expiry) {
        best = j.value("accessToken", "");
        best_expiry = *expiry;
      }
    }
    ::closedir(d);
    if (best.empty())
      fail(Error::Code::IO, desc + ": " + (expired_only ? "the cached SSO token has expired" : "no cached SSO token") +
                                " for " + start_url + " in " + dir + "; " + login);
    return best;
  }

  const CredentialSettings& s_;
  std::shared_ptr<Secrets> secrets_;
};

}  // namespace

namespace {

// Everything the chain's result depends on besides the network: the two files
// and the environment variables it reads.
std::string cache_key(const CredentialSettings& s, const std::string& description) {
  std::string key = description + '\n' + s.profile + (s.profile_from_url ? "\n1" : "\n0") + '\n' + s.region + '\n' + s.home;
  for (const Ini* ini : {&s.credentials_file, &s.config_file}) {
    key += "\n[files]";
    for (const auto& [section, values] : *ini) {
      key += "\n[" + section + "]";
      for (const auto& [k, v] : values) key += "\n" + k + "=" + v;
    }
  }
  for (const char* var :
       {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS"})
    key += std::string("\n") + var + "=" + s.env(var).value_or("\x01");
  return key;
}

}  // namespace

std::shared_ptr<CredentialProvider> resolve_credentials(const CredentialSettings& settings) {
  auto provider = Resolver(settings).resolve();
  if (!provider) return provider;
  // One provider per distinct setup in a process: every store opened with the
  // same settings (each Python call opens one) shares its cached credentials,
  // instead of asking STS or the metadata service again.
  static std::mutex m;
  static std::map<std::string, std::shared_ptr<CredentialProvider>> cache;
  const std::string key = cache_key(settings, provider->describe());
  std::lock_guard g(m);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= 64) cache.clear();  // bounded: a process rarely has more than a few
  cache.emplace(key, provider);
  return provider;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > t.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(t[i]))) return std::nullopt;
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  auto Y = digits(0, 4), M = digits(5, 2), D = digits(8, 2), h = digits(11, 2), m = digits(14, 2), s = digits(17, 2);
  if (!Y || !M || !D || !h || !m || !s || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') ||
      t[13] != ':' || t[16] != ':')
    return std::nullopt;
  if (*M < 1 || *M > 12 || *D < 1 || *D > 31 || *h > 23 || *m > 59 || *s > 60) return std::nullopt;
  std::size_t pos = 19;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    while (pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos]))) ++pos;
  }
  long offset = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || pos + 3 >= t.size() || t[pos + 3] != ':') return std::nullopt;
    offset = (t[pos] == '+' ? 1 : -1) * (*oh * 3600L + *om * 60L);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *Y - 1900;
  tm.tm_mon = *M - 1;
  tm.tm_mday = *D;
  tm.tm_hour = *h;
  tm.tm_min = *m;
  tm.tm_sec = *s;
  const std::time_t secs = ::timegm(&tm);
  return Clock::from_time_t(secs - offset);
}

}  // namespace s3
}  // namespace zvf
