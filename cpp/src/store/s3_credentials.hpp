// The AWS credential chain of the S3 backend. resolve_credentials() decides,
// without touching the network, which source a store uses; the provider it
// returns fetches on first use and renews temporary credentials before they
// expire. Internal to libzvf.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/s3_util.hpp"
#include "zvf/s3.hpp"

namespace zvf::s3 {

struct CredentialSettings {
  EnvLookup env;
  Ini credentials_file, config_file;        // ~/.aws/credentials and ~/.aws/config, parsed
  std::string credentials_path, config_path;  // for messages
  std::string profile = "default";
  bool profile_from_url = false;  // ?profile= beats environment keys
  bool profile_explicit = false;  // from the URL or AWS_PROFILE: must exist
  std::string region;             // for STS and SSO when the profile names none
  std::string home;               // for ~/.aws/sso/cache
  bool log = false;
};

// Null: anonymous requests (no source gave credentials and instance metadata is disabled).
// Throws Error(InvalidArgument) for a profile that is missing, circular or incomplete.
std::shared_ptr<CredentialProvider> resolve_credentials(const CredentialSettings& settings);

// "2024-05-01T12:00:00Z", "...T12:00:00.123Z", "...+00:00"; nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

}  // namespace zvf::s3
