// Small helpers of the S3 backend: URI encoding for SigV4 canonical requests,
// lookups in S3's XML (parsed and written by pugixml), MD5/base64 for
// DeleteObjects (OpenSSL's libcrypto), and the INI reader for ~/.aws files.
// Internal to libzvf.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "zvf/s3.hpp"

namespace zvf::s3 {

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
// (A-Z a-z 0-9 - . _ ~) stay, everything else becomes %XX with upper-case hex.
// With keep_slash, '/' stays too (object paths); query values encode it.
std::string uri_encode(std::string_view s, bool keep_slash);

// Inverse of S3's "encoding-type=url" ('+' is a space, as in form encoding).
std::string url_decode(std::string_view s);

// An S3 or STS answer, parsed by pugixml. Only element texts are read, so a
// body that is not XML (a proxy's HTML page, an empty body) simply holds no
// elements; the callers say what they expected instead.
class XmlAnswer {
 public:
  explicit XmlAnswer(std::string_view body);
  XmlAnswer(const XmlAnswer&) = delete;
  XmlAnswer& operator=(const XmlAnswer&) = delete;
  pugi::xml_node top() const { return doc_; }
  // Whether the document element is <name> ("ListBucketResult", ...).
  bool is(std::string_view name) const;

 private:
  pugi::xml_document doc_;
};

// The text of the first element named `tag` at any depth below `node` (in
// document order), entities decoded; nullopt when there is none. S3's
// documents are flat enough that a name alone finds what is wanted.
std::optional<std::string> xml_text(const pugi::xml_node& node, std::string_view tag);
std::optional<std::string> xml_text(const XmlAnswer& answer, std::string_view tag);
std::optional<std::string> xml_text(std::string_view body, std::string_view tag);  // parses body first
// Every element named `tag` below `node`, outermost first, in document order.
std::vector<pugi::xml_node> xml_elements(const pugi::xml_node& node, std::string_view tag);
// A request body (DeleteObjects, CompleteMultipartUpload) as compact XML, with
// the declaration; pugixml escapes the texts.
std::string xml_serialize(const pugi::xml_document& doc);

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
