// The report's assets as bytes of this object file (the assembler's .incbin;
// CMake passes the paths and makes this file depend on them).

#include "src/report/assets.hpp"

// Symbols NAME and NAME_end around the file's bytes, in read-only data.
#define QNAS_EMBED(NAME, PATH)                                                                \
  __asm__(".section .rodata\n.global " #NAME "\n.balign 16\n" #NAME ":\n.incbin \"" PATH "\"\n" \
          ".global " #NAME "_end\n" #NAME "_end:\n.byte 0\n.previous\n");                      \
  extern "C" const char NAME[];                                                               \
  extern "C" const char NAME##_end[];

QNAS_EMBED(qnas_asset_vega, QNAS_ASSET_VEGA)
QNAS_EMBED(qnas_asset_vega_lite, QNAS_ASSET_VEGA_LITE)
QNAS_EMBED(qnas_asset_vega_embed, QNAS_ASSET_VEGA_EMBED)
QNAS_EMBED(qnas_asset_page, QNAS_ASSET_PAGE)
QNAS_EMBED(qnas_asset_style, QNAS_ASSET_STYLE)

namespace qnas::report {

namespace {
std::string_view bytes(const char* begin, const char* end) { return {begin, size_t(end - begin)}; }
}  // namespace

Asset asset(AssetId id) {
  switch (id) {
    case AssetId::kVega: return {"vega " QNAS_VEGA_VERSION " (vega.min.js)", bytes(qnas_asset_vega, qnas_asset_vega_end)};
    case AssetId::kVegaLite:
      return {"vega-lite " QNAS_VEGA_LITE_VERSION " (vega-lite.min.js)", bytes(qnas_asset_vega_lite, qnas_asset_vega_lite_end)};
    case AssetId::kVegaEmbed:
      return {"vega-embed " QNAS_VEGA_EMBED_VERSION " (vega-embed.min.js)", bytes(qnas_asset_vega_embed, qnas_asset_vega_embed_end)};
    case AssetId::kPage: return {"qnas report.js", bytes(qnas_asset_page, qnas_asset_page_end)};
    case AssetId::kStyle: return {"qnas report.css", bytes(qnas_asset_style, qnas_asset_style_end)};
  }
  return {"", ""};
}

}  // namespace qnas::report
