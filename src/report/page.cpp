// render_page(): the runs' JSON, the style, the charting library and the
// page's script, all inlined into one HTML file. A Content-Security-Policy
// forbids every fetch, so a report that opens is one that needs no network.

#include <string_view>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/report/assets.hpp"
#include "src/report/report.hpp"

namespace qnas::report {

namespace {

// JSON inside <script>: '<' only occurs in strings, where \u003c is the same
// character, so no "</script>" or "<!--" can end the element early.
std::string script_safe_json(const nlohmann::json& data) {
  const std::string text = data.dump();
  std::string out;
  out.reserve(text.size() + 64);
  for (char c : text) {
    if (c == '<') out += "\\u003c";
    else out += c;
  }
  return out;
}

std::string inline_script(const Asset& a) {
  QNAS_CHECK(a.text.find("</script") == std::string_view::npos, "report: the embedded ", a.name,
             " contains '</script' and cannot be inlined");
  return "<script>/* " + std::string(a.name) + " */\n" + std::string(a.text) + "\n</script>\n";
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_page(const nlohmann::json& data) {
  std::string page =
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      // Vega compiles its expressions with Function(): 'unsafe-eval'; nothing may be fetched.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline' "
      "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:\">\n"
      "<meta name=\"generator\" content=\"qnas " + html_escape(data.value("qnas_version", "")) + "\">\n"
      "<title>" + html_escape(data.value("title", "qnas report")) + "</title>\n<style>\n" +
      std::string(asset(AssetId::kStyle).text) + "</style>\n</head>\n<body>\n<div id=\"app\"></div>\n"
      "<noscript>This report draws its charts with JavaScript.</noscript>\n"
      "<script id=\"qnas-data\" type=\"application/json\">" + script_safe_json(data) + "</script>\n";
  for (auto id : {AssetId::kVega, AssetId::kVegaLite, AssetId::kVegaEmbed, AssetId::kPage}) page += inline_script(asset(id));
  page += "</body>\n</html>\n";
  return page;
}

size_t write_report(const std::vector<std::string>& run_dirs, const std::string& out, const std::string& data_out) {
  const auto data = collect(run_dirs);
  const std::string page = render_page(data);
  if (!data_out.empty()) core::write_file_atomic(data_out, data.dump(1) + "\n");
  core::write_file_atomic(out, page);
  return page.size();
}

}  // namespace qnas::report
