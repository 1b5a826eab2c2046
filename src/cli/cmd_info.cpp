#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/core/config.hpp"
#include "src/core/table.hpp"
#include "src/eval/session.hpp"

namespace qnas::cli {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "list the search space: every variable, its choices, the space size");
  auto args = std::make_shared<ConfigArgs>();
  auto format = std::make_shared<std::string>("text");
  add_config_args(*cmd, *args);
  add_table_format(*cmd, *format);
  cmd->callback([args, format] {
    const auto config = core::load_config(args->path, args->sets);
    const auto session = eval::open_session(config);
    eval::require_one_process(session, "info");
    const auto& space = session.net->space();
    core::Table t({"variable", "choices", "active_if", "layers"});
    std::string methods;  // the method variables' choices, by name
    for (const auto& m : space.methods) methods += (methods.empty() ? "[" : ",") + quant::method_choice_text(m);
    for (const auto& v : space.variables)
      t.add({v.name, v.field == "method" ? methods + "]" : nlohmann::json(v.choices).dump(),
             v.active_var.empty() ? "always" : v.active_var + " >= " + std::to_string(v.active_min),
             v.layers.size() > 1 ? nlohmann::json(v.layers).dump() : ""});
    std::printf("%s", t.render(*format).c_str());
    if (*format == "text")
      std::printf("\n%zu variables (%zu compressible layers), 10^%.2f subnets, structure hash %s\n",
                  space.variables.size(), space.layers.size(), space.log10_size(), space.structure_hash().c_str());
    if (*format == "text" && space.couple_act_bits)
      std::printf("quant.couple_act_bits: each layer's activations follow its weight bits (8-bit, fp32 for 32)\n");
  });
}

void register_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "validate a config and print it resolved (every key), or the key reference");
  auto args = std::make_shared<ConfigArgs>();
  auto reference = std::make_shared<bool>(false);
  cmd->add_option("config", args->path, "YAML config");
  cmd->add_option("--set", args->sets, "override a key (repeatable)")->take_all();
  cmd->add_flag("--reference", *reference, "print every key as a markdown table instead");
  cmd->callback([args, reference] {
    if (*reference) {
      std::printf("%s", core::config_reference_markdown().c_str());
      return;
    }
    if (args->path.empty()) throw CLI::RequiredError("config");
    std::printf("%s", core::to_yaml(core::load_config(args->path, args->sets)).c_str());
  });
}

}  // namespace qnas::cli
