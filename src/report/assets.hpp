#pragma once
// The files a report inlines, compiled into qnas (assets.cpp) so the binary
// alone writes a report: the charting library's browser bundles from
// src/report/js/node_modules (npm, installed by scripts/install-deps.sh) and
// the page's own script and style (src/report/js).

#include <string_view>

namespace qnas::report {

enum class AssetId { kVega, kVegaLite, kVegaEmbed, kPage, kStyle };

struct Asset {
  std::string_view name;  // e.g. "vega 6.4.0 (vega.min.js)"
  std::string_view text;
};

Asset asset(AssetId id);

}  // namespace qnas::report
