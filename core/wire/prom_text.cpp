#include "core/wire/prom_text.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace evstream {

namespace {

// Prometheus floats: shortest round-trip text, with the spellings it expects for the specials.
std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", value);  // 10, not 1e+01
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", value);
  // Prefer the short form when it reads back identically (0.1 rather than 0.10000000000000001).
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
    if (std::strtod(shorter, nullptr) == value) return shorter;
  }
  return buf;
}

}  // namespace

void PromText::family(std::string_view name, std::string_view type, std::string_view help) {
  m_text += "# HELP ";
  m_text += name;
  m_text += ' ';
  m_text += help;
  m_text += "\n# TYPE ";
  m_text += name;
  m_text += ' ';
  m_text += type;
  m_text += '\n';
}

void PromText::sample(std::string_view name, std::string_view labels, double value) {
  sample_text(name, labels, format_value(value));
}

void PromText::sample(std::string_view name, std::string_view labels, std::uint64_t value) {
  sample_text(name, labels, std::to_string(value));
}

void PromText::sample_text(std::string_view name, std::string_view labels, std::string_view value) {
  m_text += name;
  if (!labels.empty()) {
    m_text += '{';
    m_text += labels;
    m_text += '}';
  }
  m_text += ' ';
  m_text += value;
  m_text += '\n';
}

void PromText::counter(std::string_view name, std::string_view help, std::uint64_t value) {
  family(name, "counter", help);
  sample(name, "", value);
}

void PromText::gauge(std::string_view name, std::string_view help, double value) {
  family(name, "gauge", help);
  sample(name, "", value);
}

void PromText::histogram(std::string_view name, std::string_view help, const Histogram& histogram,
                         std::span<const std::int64_t> bounds, double unit) {
  family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  for (const std::int64_t bound : bounds) {
    sample(bucket, "le=\"" + format_value(static_cast<double>(bound) / unit) + "\"",
           histogram.count_at_or_below(bound));
  }
  sample(bucket, "le=\"+Inf\"", histogram.count());
  const double sum = histogram.mean() * static_cast<double>(histogram.count()) / unit;
  sample(std::string(name) + "_sum", "", sum);
  sample(std::string(name) + "_count", "", histogram.count());
}

std::vector<PromBucket> read_histogram_buckets(std::string_view text, std::string_view name) {
  const std::string prefix = std::string(name) + "_bucket{le=\"";
  std::vector<PromBucket> buckets;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (!line.starts_with(prefix)) continue;
    const auto close = line.find("\"} ", prefix.size());
    if (close == std::string_view::npos) continue;
    const std::string le(line.substr(prefix.size(), close - prefix.size()));
    const std::string count(line.substr(close + 3));
    char* end = nullptr;
    PromBucket bucket;
    bucket.le = le == "+Inf" ? INFINITY : std::strtod(le.c_str(), &end);
    if (le != "+Inf" && *end != '\0') continue;
    bucket.count = std::strtod(count.c_str(), &end);
    if (*end != '\0') continue;
    buckets.push_back(bucket);
  }
  return buckets;
}

std::string prom_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace evstream
