// Small helpers of the S3 backend: URI encoding for SigV4 canonical requests,
// a minimal XML reader for S3 responses, MD5/base64 for DeleteObjects, and the
// INI reader for ~/.aws files. Internal to libzvf.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zvf/s3.hpp"

namespace zvf::s3 {

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
// (A-Z a-z 0-9 - . _ ~) stay, everything else becomes %XX with upper-case hex.
// With keep_slash, '/' stays too (object paths); query values encode it.
std::string uri_encode(std::string_view s, bool keep_slash);

// Inverse of S3's "encoding-type=url" ('+' is a space, as in form encoding).
std::string url_decode(std::string_view s);

// XML of S3 responses: flat enough that "the text of every <tag> element, in
// order" is all we need. Entities (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) are decoded.
std::vector<std::string> xml_texts(std::string_view xml, std::string_view tag);
std::optional<std::string> xml_text(std::string_view xml, std::string_view tag);
// Every <tag>...</tag> element's inner XML, undecoded (for nested lookups).
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag);
std::string xml_escape(std::string_view s);

std::array<std::uint8_t, 16> md5(std::string_view data);
std::string base64(const std::uint8_t* data, std::size_t n);

// ~/.aws/credentials and ~/.aws/config: section -> key -> value. Keys are
// lower-cased; '#' and ';' start comments; indented lines (nested settings)
// are ignored.
using Ini = std::map<std::string, std::map<std::string, std::string>>;
Ini parse_ini(std::string_view text);

// Small helpers shared by the configuration and the credential chain.
std::string lower(std::string s);  // ASCII lower case
// The variable's value, or nullopt when it is unset or empty (as the AWS tools treat it).
std::optional<std::string> nonempty(const EnvLookup& env, const std::string& name);
// A whole file's bytes, or nullopt when it cannot be opened.
std::optional<std::string> read_text(const std::string& path);

}  // namespace zvf::s3
