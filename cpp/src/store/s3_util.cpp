#include "store/s3_util.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

#include "zvf/error.hpp"

namespace zvf::s3 {

namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

XmlAnswer::XmlAnswer(std::string_view body) {
  // Whitespace-only text is kept when it is an element's only content ("<Key> </Key>").
  doc_.load_buffer(body.data(), body.size(), pugi::parse_default | pugi::parse_ws_pcdata_single);
}

bool XmlAnswer::is(std::string_view name) const { return name == doc_.document_element().name(); }

namespace {

// Walks the elements below `top` in document order without recursion (a
// hostile answer may nest deeply). visit returns whether to enter the element.
template <class Visit>
void walk_elements(const pugi::xml_node& top, Visit visit) {
  pugi::xml_node n = top.first_child();
  while (n) {
    const bool enter = n.type() != pugi::node_element || visit(n);
    if (enter && n.first_child()) {
      n = n.first_child();
      continue;
    }
    while (n != top && !n.next_sibling()) n = n.parent();
    if (n == top) return;
    n = n.next_sibling();
  }
}

}  // namespace

std::optional<std::string> xml_text(const pugi::xml_node& node, std::string_view tag) {
  std::optional<std::string> found;
  walk_elements(node, [&](const pugi::xml_node& e) {
    if (found) return false;
    if (tag != e.name()) return true;
    found = e.text().get();
    return false;
  });
  return found;
}

std::optional<std::string> xml_text(const XmlAnswer& answer, std::string_view tag) { return xml_text(answer.top(), tag); }

std::optional<std::string> xml_text(std::string_view body, std::string_view tag) { return xml_text(XmlAnswer(body), tag); }

std::vector<pugi::xml_node> xml_elements(const pugi::xml_node& node, std::string_view tag) {
  std::vector<pugi::xml_node> out;
  walk_elements(node, [&](const pugi::xml_node& e) {
    if (tag != e.name()) return true;
    out.push_back(e);
    return false;
  });
  return out;
}

std::string xml_serialize(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw, pugi::encoding_utf8);
  return out.str();
}

// MD5 (RFC 1321), used only for the Content-MD5 header that DeleteObjects requires.
std::array<std::uint8_t, 16> md5(std::string_view data) {
  std::array<std::uint8_t, 16> out{};
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_md5(), nullptr) != 1 || n != out.size())
    throw Error(Error::Code::Unsupported,
                "OpenSSL gave no MD5 digest (is it restricted to FIPS algorithms?); S3 DeleteObjects needs one "
                "for its Content-MD5 header");
  return out;
}

std::string base64(const std::uint8_t* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Ini parse_ini(std::string_view text) {
  Ini ini;
  std::string section;
  bool in_section = false;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view raw = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    const bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      const std::size_t close = line.find(']');
      if (close == std::string_view::npos) continue;
      // "[profile  name]" -> "profile name" with single spaces.
      std::string name;
      for (char c : trim(line.substr(1, close - 1))) {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (!name.empty() && name.back() != ' ') name += ' ';
        } else {
          name += c;
        }
      }
      section = name;
      in_section = true;
      ini[section];
      continue;
    }
    if (!in_section || indented) continue;  // nested values (e.g. "s3 =\n  addressing_style = path")
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key = lower(trim(line.substr(0, eq)));
    std::string_view value = trim(line.substr(eq + 1));
    // Inline comments need whitespace before them, as in the AWS CLI.
    for (std::size_t i = 1; i < value.size(); ++i) {
      if ((value[i] == '#' || value[i] == ';') && std::isspace(static_cast<unsigned char>(value[i - 1]))) {
        value = trim(value.substr(0, i));
        break;
      }
    }
    ini[section][key] = std::string(value);
  }
  return ini;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::string> nonempty(const EnvLookup& env, const std::string& name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace zvf::s3
