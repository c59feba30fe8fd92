// Fuzz target: loadtest reading the server's /metrics scrape from the network
// (core/wire/prom_text.hpp). Invariants: any scrape reads without crashing; a histogram written
// with PromText (values taken from the input) reads back with its exact bucket counts.
#include <array>
#include <cmath>
#include <string>

#include "core/util/histogram.hpp"
#include "core/wire/prom_text.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace evstream;
  const std::string_view text = fuzz::as_text(data, size);
  (void)read_histogram_buckets(text, "evstream_delivery_seconds");

  Histogram histogram;
  for (std::size_t i = 0; i + 3 <= size; i += 3) {
    histogram.record((std::int64_t{data[i]} << 16) | (std::int64_t{data[i + 1]} << 8) |
                     data[i + 2]);
  }
  static constexpr std::array<std::int64_t, 4> kBounds{1'000, 10'000, 100'000, 1'000'000};
  PromText scrape;
  scrape.histogram("evstream_fuzz_seconds", "fuzz", histogram, kBounds, 1e6);
  scrape.gauge("evstream_label", prom_label_value(text), 1.0);
  const auto buckets = read_histogram_buckets(scrape.text(), "evstream_fuzz_seconds");
  FUZZ_CHECK(buckets.size() == kBounds.size() + 1);
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    FUZZ_CHECK(buckets[i].count == static_cast<double>(histogram.count_at_or_below(kBounds[i])));
  }
  FUZZ_CHECK(std::isinf(buckets.back().le));
  FUZZ_CHECK(buckets.back().count == static_cast<double>(histogram.count()));

  // The label escaping keeps a scrape line-oriented whatever the value holds.
  FUZZ_CHECK(prom_label_value(text).find('\n') == std::string::npos);
  return 0;
}
