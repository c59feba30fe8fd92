// SLO parsing/evaluation and the loadtest report (table and JSON).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/client/loadtest.hpp"
#include "core/util/error.hpp"

namespace evstream {

namespace {

bool is_latency(std::string_view name) {
  return name == "p50" || name == "p90" || name == "p99" || name == "p999" || name == "max";
}

double quantile_of(std::string_view name) {
  if (name == "p50") return 0.50;
  if (name == "p90") return 0.90;
  if (name == "p99") return 0.99;
  if (name == "p999") return 0.999;
  return 1.0;
}

std::string ms(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3gms", us / 1000.0);
  return buf;
}

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fMiB", bytes / (1024.0 * 1024.0));
  return buf;
}

bool compare(double actual, const std::string& op, double limit) {
  if (op == "<") return actual < limit;
  if (op == "<=") return actual <= limit;
  if (op == ">") return actual > limit;
  if (op == ">=") return actual >= limit;
  return std::fabs(actual - limit) < 1e-9;
}

SloCheck parse_one(std::string_view item) {
  static constexpr std::string_view kOps[] = {"<=", ">=", "<", ">", "="};
  for (const auto op : kOps) {
    const auto at = item.find(op);
    if (at == std::string_view::npos) continue;
    SloCheck check{std::string(item.substr(0, at)), std::string(op), 0, std::string(item)};
    std::string value(item.substr(at + op.size()));
    if (is_latency(check.name)) {
      check.limit = static_cast<double>(parse_duration_us(value));
    } else if (check.name == "loss" || check.name == "connected") {
      const bool percent = !value.empty() && value.back() == '%';
      if (percent) value.pop_back();
      char* end = nullptr;
      check.limit = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0') break;
      if (percent) check.name += "%";
    } else if (check.name == "rss_growth") {
      check.limit = static_cast<double>(parse_size(value));
    } else {
      break;
    }
    return check;
  }
  throw Error("invalid --slo item \"" + std::string(item) +
              "\": use e.g. p99<100ms, max<1s, loss=0, loss<0.1%, connected=100%, "
              "rss_growth<10MiB");
}

// "within 1ms 78.2%, 2ms 97.0%, 20ms 100%" style shares, for the table.
std::string delivery_shares(const LoadtestReport& r) {
  std::string out;
  for (const double seconds : {0.001, 0.002, 0.02}) {
    const auto share = r.server_delivered_within(seconds);
    if (!share) continue;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%gms %.1f%%", out.empty() ? "" : ", ", seconds * 1000,
                  100 * *share);
    out += buf;
  }
  return out;
}

}  // namespace

std::optional<double> LoadtestReport::server_delivered_within(double seconds) const {
  if (server_delivery.empty() || server_delivery.back().count <= 0) return std::nullopt;
  for (const auto& bucket : server_delivery) {
    if (std::fabs(bucket.le - seconds) < 1e-12) return bucket.count / server_delivery.back().count;
  }
  return std::nullopt;
}

std::vector<SloCheck> parse_slo(std::string_view text) {
  std::vector<SloCheck> checks;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) checks.push_back(parse_one(item));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return checks;
}

std::vector<SloResult> evaluate_slo(const std::vector<SloCheck>& checks,
                                    const LoadtestReport& report) {
  std::vector<SloResult> results;
  for (const auto& check : checks) {
    SloResult result{check, 0, false, {}};
    if (is_latency(check.name)) {
      result.actual =
          check.name == "max"
              ? static_cast<double>(report.latency_us.max())
              : static_cast<double>(report.latency_us.percentile(quantile_of(check.name)));
      result.actual_text = report.latency_us.count() == 0 ? "no events" : ms(result.actual);
      result.pass = report.latency_us.count() > 0 && compare(result.actual, check.op, check.limit);
    } else if (check.name == "loss" || check.name == "loss%") {
      result.actual = static_cast<double>(report.lost());
      if (check.name == "loss%") {
        result.actual =
            report.expected == 0 ? 0 : 100.0 * result.actual / static_cast<double>(report.expected);
      }
      result.actual_text = std::to_string(report.lost()) + " of " + std::to_string(report.expected);
      result.pass = report.expected > 0 && compare(result.actual, check.op, check.limit);
    } else if (check.name == "connected" || check.name == "connected%") {
      result.actual =
          static_cast<double>(report.connected - std::min(report.connected, report.disconnected));
      if (check.name == "connected%") {
        result.actual =
            report.clients == 0 ? 0 : 100.0 * result.actual / static_cast<double>(report.clients);
      }
      result.actual_text = std::to_string(report.connected) + "/" + std::to_string(report.clients);
      if (report.disconnected > 0)
        result.actual_text += " (" + std::to_string(report.disconnected) + " lost)";
      result.pass = compare(result.actual, check.op, check.limit);
    } else if (check.name == "rss_growth") {
      if (report.server_rss_before && report.server_rss_after) {
        result.actual = static_cast<double>(*report.server_rss_after - *report.server_rss_before);
        result.actual_text = mib(result.actual);
        result.pass = compare(result.actual, check.op, check.limit);
      } else {
        result.actual_text = "unknown";
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

std::string report_json(const LoadtestReport& r, const std::vector<SloResult>& slo) {
  using nlohmann::ordered_json;
  const auto latency = [](const Histogram& h) {
    return ordered_json{{"count", h.count()},
                        {"min", h.min()},
                        {"p50", h.percentile(0.5)},
                        {"p90", h.percentile(0.9)},
                        {"p99", h.percentile(0.99)},
                        {"p999", h.percentile(0.999)},
                        {"max", h.max()},
                        {"mean", h.mean()}};
  };
  ordered_json out{
      {"clients", r.clients},
      {"connected", r.connected},
      {"disconnected", r.disconnected},
      {"connect_us", latency(r.connect_us)},
      {"latency_us", latency(r.latency_us)},
      {"published", r.published},
      {"expected", r.expected},
      {"received", r.received},
      {"lost", r.lost()},
      {"loss_ratio",
       r.expected == 0 ? 0.0 : static_cast<double>(r.lost()) / static_cast<double>(r.expected)},
      {"pings", r.pings},
      {"publish_seconds", r.publish_seconds},
      {"delivered_per_s", r.delivered_per_s},
      {"server_rss_before",
       r.server_rss_before ? ordered_json(*r.server_rss_before) : ordered_json()},
      {"server_rss_after", r.server_rss_after ? ordered_json(*r.server_rss_after) : ordered_json()},
      {"server_cpu_percent",
       r.server_cpu_percent ? ordered_json(*r.server_cpu_percent) : ordered_json()},
      {"self_cpu_percent", r.self_cpu_percent}};
  if (r.server_delivery.empty() || r.server_delivery.back().count <= 0) {
    out["server_delivery"] = nullptr;
  } else {
    ordered_json delivery{{"count", static_cast<std::uint64_t>(r.server_delivery.back().count)}};
    for (const auto& [name, seconds] :
         {std::pair{"within_1ms", 0.001}, std::pair{"within_2ms", 0.002},
          std::pair{"within_20ms", 0.02}}) {
      const auto share = r.server_delivered_within(seconds);
      delivery[name] = share ? ordered_json(*share) : ordered_json();
    }
    // The bucket bound under which half and 99% of the deliveries were written (seconds; null
    // past the last finite bound).
    for (const auto& [name, share] :
         {std::pair{"p50_at_most", 0.5}, std::pair{"p99_at_most", 0.99}}) {
      delivery[name] = ordered_json();
      for (const auto& bucket : r.server_delivery) {
        if (bucket.count >= share * r.server_delivery.back().count) {
          if (!std::isinf(bucket.le)) delivery[name] = bucket.le;
          break;
        }
      }
    }
    // The whole histogram over the run: [upper bound in seconds (null: +Inf), cumulative count].
    ordered_json buckets = ordered_json::array();
    for (const auto& bucket : r.server_delivery) {
      buckets.push_back({std::isinf(bucket.le) ? ordered_json() : ordered_json(bucket.le),
                         static_cast<std::uint64_t>(bucket.count)});
    }
    delivery["buckets"] = std::move(buckets);
    out["server_delivery"] = delivery;
  }
  if (!r.error.empty()) out["error"] = r.error;
  ordered_json checks = ordered_json::array();
  bool pass = r.error.empty();
  for (const auto& result : slo) {
    checks.push_back(
        {{"check", result.check.text}, {"actual", result.actual_text}, {"pass", result.pass}});
    pass = pass && (result.pass || result.actual_text == "unknown");
  }
  out["slo"] = checks;
  out["pass"] = pass;
  return out.dump();
}

std::string report_table(const LoadtestReport& r, const std::vector<SloResult>& slo) {
  char line[256];
  std::string out;
  std::snprintf(line, sizeof line, "clients     %zu connected, %zu lost, connect p50 %s p99 %s\n",
                r.connected, r.disconnected,
                ms(static_cast<double>(r.connect_us.percentile(0.5))).c_str(),
                ms(static_cast<double>(r.connect_us.percentile(0.99))).c_str());
  out += line;
  std::snprintf(line, sizeof line,
                "events      %llu published in %.1fs, %llu of %llu delivered (%.0f/s), %s\n",
                static_cast<unsigned long long>(r.published), r.publish_seconds,
                static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.expected), r.delivered_per_s,
                count_of(r.pings, "ping").c_str());
  out += line;
  const Histogram& h = r.latency_us;
  std::snprintf(line, sizeof line, "latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
                ms(static_cast<double>(h.percentile(0.5))).c_str(),
                ms(static_cast<double>(h.percentile(0.9))).c_str(),
                ms(static_cast<double>(h.percentile(0.99))).c_str(),
                ms(static_cast<double>(h.percentile(0.999))).c_str(),
                ms(static_cast<double>(h.max())).c_str());
  out += line;
  if (r.server_rss_before && r.server_rss_after) {
    std::snprintf(line, sizeof line, "server      rss %s -> %s",
                  mib(static_cast<double>(*r.server_rss_before)).c_str(),
                  mib(static_cast<double>(*r.server_rss_after)).c_str());
    out += line;
    if (r.server_cpu_percent) {
      std::snprintf(line, sizeof line, ", cpu %.0f%%", *r.server_cpu_percent);
      out += line;
    }
    out += "\n";
  }
  if (const std::string shares = delivery_shares(r); !shares.empty()) {
    std::snprintf(line, sizeof line, "server      delivered within %s of %.0f writes\n",
                  shares.c_str(), r.server_delivery.back().count);
    out += line;
  }
  std::snprintf(line, sizeof line, "loadtest    cpu %.0f%%\n", r.self_cpu_percent);
  out += line;
  if (!r.error.empty()) out += "error       " + r.error + "\n";
  if (!slo.empty()) {
    std::snprintf(line, sizeof line, "\n%-22s %-22s %s\n", "check", "actual", "result");
    out += line;
    for (const auto& result : slo) {
      const char* verdict = result.pass                       ? "PASS"
                            : result.actual_text == "unknown" ? "SKIP"
                                                              : "FAIL";
      std::snprintf(line, sizeof line, "%-22s %-22s %s\n", result.check.text.c_str(),
                    result.actual_text.c_str(), verdict);
      out += line;
    }
  }
  return out;
}

}  // namespace evstream
