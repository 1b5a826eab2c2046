// qnas report.
#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/core/error.hpp"
#include "src/report/report.hpp"

namespace qnas::cli {

void register_report(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "write one self-contained HTML report of one or several search runs");
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>(), data = std::make_shared<std::string>();
  cmd->add_option("runs", *dirs, "run folders (the output.dir of `qnas search`), compared on one page")->required();
  cmd->add_option("--out", *out, "the HTML file to write (default: RUN_DIR/report.html for one run)");
  cmd->add_option("--data", *data, "also write the page's data as JSON (experiments/report_figures.py draws it "
                  "as PNG/PDF figures)");
  cmd->callback([dirs, out, data] {
    QNAS_CHECK(!out->empty() || dirs->size() == 1, "report: ", dirs->size(),
               " runs given; name the page to write with --out FILE.html");
    const std::string path = out->empty() ? dirs->front() + "/report.html" : *out;
    const size_t bytes = report::write_report(*dirs, path, *data);
    std::printf("report: wrote %s (%.1f MB, %zu run%s)%s%s\n", path.c_str(), double(bytes) / 1e6, dirs->size(),
                dirs->size() == 1 ? "" : "s", data->empty() ? "" : " and ", data->c_str());
  });
}

}  // namespace qnas::cli
