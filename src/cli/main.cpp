// qnas: joint neural architecture and compression-policy search.
#include <c10/util/Exception.h>

#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/core/error.hpp"
#include "src/core/version.hpp"

namespace qnas::cli {

void add_config_args(CLI::App& cmd, ConfigArgs& args) {
  cmd.add_option("config", args.path, "YAML config (e.g. configs/quickstart.yaml)")->required();
  cmd.add_option("--set", args.sets, "override a key: --set train.epochs=3 (repeatable; value is YAML)")
      ->take_all();
}

void add_table_format(CLI::App& cmd, std::string& format) {
  cmd.add_option("--format", format, "stdout table format: text | csv | md | json")
      ->check(CLI::IsMember({"text", "csv", "md", "json"}))->capture_default_str();
}

}  // namespace qnas::cli

int main(int argc, char** argv) {
  CLI::App app{"qnas: search neural architectures and their per-layer compression policies together"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qnas ") + qnas::core::version());
  qnas::cli::register_train(app);
  qnas::cli::register_eval(app);
  qnas::cli::register_info(app);
  qnas::cli::register_config(app);
  qnas::cli::register_export(app);
  qnas::cli::register_search(app);
  qnas::cli::register_pareto(app);
  qnas::cli::register_predict(app);
  qnas::cli::register_compress(app);
  qnas::cli::register_sensitivity(app);
  qnas::cli::register_recipe(app);
  qnas::cli::register_report(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const qnas::Error& e) {
    std::fprintf(stderr, "qnas: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "qnas: internal error (LibTorch): %s\n", e.what_without_backtrace());
    return 3;
  } catch (const std::exception& e) {  // a bug: every user error is a qnas::Error
    std::fprintf(stderr, "qnas: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
