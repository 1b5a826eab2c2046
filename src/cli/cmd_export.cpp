#include <cstdio>
#include <filesystem>

#include "src/cli/commands.hpp"
#include "src/core/table.hpp"
#include "src/deploy/export.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"

namespace qnas::cli {

namespace {

struct ExportArgs {
  ConfigArgs config;
  std::string subnet = "largest";
  std::string bits;
  std::string format;
  std::string out;
  std::string checkpoint;
  bool force = false;
};

}  // namespace

void register_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "export one subnet's deployed model (input normalisation folded in): onnx | torchscript | safetensors");
  auto a = std::make_shared<ExportArgs>();
  add_config_args(*cmd, a->config);
  cmd->add_option("--subnet", a->subnet, "largest | smallest | random | SPEC.json")->capture_default_str();
  cmd->add_option("--bits", a->bits, "uniform policy W[/A] on every layer, e.g. 8/8 or 4/8 (W alone: weights only)");
  cmd->add_option("--format", a->format, "onnx | torchscript | safetensors")->required();
  cmd->add_option("--out", a->out, "output folder (written whole: temporary folder, renamed at the end)")->required();
  cmd->add_option("--checkpoint", a->checkpoint, "supernet checkpoint (default <output.dir>/supernet.pt)");
  cmd->add_flag("--force", a->force, "replace an existing, non-empty output folder");
  cmd->callback([a] {
    // Arguments first: a typo should not wait for data and checkpoint to load.
    const auto config = core::load_config(a->config.path, a->config.sets);
    deploy::ExportOptions opts;
    opts.format = deploy::parse_export_format(a->format);
    opts.out_dir = a->out;
    opts.overwrite = a->force;
    std::optional<quant::LayerPolicy> bits;
    if (!a->bits.empty()) bits = eval::parse_bits(a->bits);
    eval::check_subnet_word(a->subnet);
    const std::string ckpt = a->checkpoint.empty() ? supernet::checkpoint_path(config.output.dir) : a->checkpoint;
    auto session = eval::open_session(config, ckpt);
    const auto spec = eval::choose_subnet(session.net->space(), a->subnet, bits, config.seed);
    opts.spec = supernet::to_json(spec);
    eval::Evaluator evaluator(config, session.net, session.data);
    const auto prepared = evaluator.prepare(spec);
    const auto r = deploy::export_graph(prepared.graph, opts);

    core::Table t({"file", "bytes"});
    for (const auto& f : r.files)
      t.add({r.dir + "/" + f, std::to_string(std::filesystem::file_size(r.dir + "/" + f))});
    std::printf("%s", t.render("text").c_str());
    std::printf("exported %s (%s) as %s; model_bytes %lld\n", a->subnet.c_str(),
                a->bits.empty() ? "its own policy" : ("@" + a->bits).c_str(), deploy::export_format_name(opts.format),
                static_cast<long long>(prepared.graph.model_bytes()));
    for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  });
}

}  // namespace qnas::cli
