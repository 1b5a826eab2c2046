#pragma once
// The `qnas` subcommands. Each registers its options on the CLI11 app and
// dispatches to the library; no logic of its own beyond printing.

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace qnas::cli {

/// Options every config-taking command shares.
struct ConfigArgs {
  std::string path;
  std::vector<std::string> sets;
};

void add_config_args(CLI::App& cmd, ConfigArgs& args);

/// --format text | csv | md | json for a command's stdout table.
void add_table_format(CLI::App& cmd, std::string& format);

void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_info(CLI::App& app);
void register_config(CLI::App& app);
void register_export(CLI::App& app);
void register_search(CLI::App& app);
void register_pareto(CLI::App& app);
void register_predict(CLI::App& app);
void register_compress(CLI::App& app);
void register_sensitivity(CLI::App& app);
void register_recipe(CLI::App& app);
void register_report(CLI::App& app);

}  // namespace qnas::cli
