// validate_store: runs the check levels in order, with the reference's gating
// (structure errors stop everything; metadata errors stop the data checks).
#include <limits>

#include "engine/input.hpp"
#include "format/metadata.hpp"
#include "validate/checks.hpp"
#include "zvf/error.hpp"

namespace zvf {

const char* severity_name(Severity s) { return s == Severity::Error ? "error" : "warning"; }

std::size_t ValidationReport::error_count() const {
  std::size_t n = 0;
  for (const auto& f : findings) n += f.severity == Severity::Error;
  return n;
}

std::size_t ValidationReport::warning_count() const { return findings.size() - error_count(); }

namespace detail::validation {

std::int64_t LevelGrid::bins_total() const {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t n = 1;  // saturates: the per-axis counts come from unchecked metadata
  for (auto b : bins_per_chunk) n = b > 0 && n > kMax / b ? kMax : n * b;
  return n;
}

void Checker::add(Severity s, const std::string& key, const std::string& message) {
  report.findings.push_back({current_level, s, key, message});
}

void Checker::pass(const std::string& message) {
  report.passed.push_back(message);
}

std::size_t Checker::errors_since(std::size_t mark) const {
  std::size_t n = 0;
  for (std::size_t i = mark; i < report.findings.size(); ++i) n += report.findings[i].severity == Severity::Error;
  return n;
}

std::optional<json> Checker::read_doc(const std::string& key) {
  try {
    return meta::read_json(store, key);
  } catch (const Error& e) {
    if (e.code() != Error::Code::Corrupt) throw;  // I/O failures are not findings
    error(key, e.what());  // "<store>/<key> is not valid JSON: ..."
    return std::nullopt;
  }
}

LevelState* Checker::level(int n) {
  for (auto& l : levels)
    if (l.level == n) return &l;
  return nullptr;
}

std::string level_key(int level, const std::string& rest) {
  return std::to_string(level) + (rest.empty() ? "" : "/" + rest);
}

bool is_number_array(const json& j, std::size_t size) {
  if (!j.is_array() || (size && j.size() != size)) return false;
  for (const auto& x : j)
    if (!x.is_number()) return false;
  return true;
}

std::string numbers_text(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number_text(v[i]);
  return s + "]";
}

std::string numbers_text(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace detail::validation

ValidationReport validate_store(const Store& store, const ValidateOptions& options, const Exec& exec) {
  if (options.level < 1 || options.level > kMaxValidationLevel)
    invalid("validation level must be 1 to " + std::to_string(kMaxValidationLevel) + ", got " +
            std::to_string(options.level));
  if (!store.root_exists()) fail(Error::Code::NotFound, "no store at " + store.describe());

  ValidationReport report;
  report.level = options.level;
  detail::validation::Checker c(store, report, exec);
  using Step = void (*)(detail::validation::Checker&);
  const Step steps[] = {detail::validation::check_structure, detail::validation::check_metadata,
                        detail::validation::check_consistency, detail::validation::check_conformance,
                        detail::validation::check_multiscale};
  for (int lv = 1; lv <= options.level; ++lv) {
    const std::size_t mark = report.findings.size();
    c.current_level = lv;
    steps[lv - 1](c);
    // Level 1 errors leave nothing to check; level 2 errors leave the data
    // unreadable as described (the reference stops at the same points).
    if (c.errors_since(mark) > 0 && (lv == 1 || (lv == 2 && options.level >= 3))) break;
  }
  return report;
}

}  // namespace zvf
