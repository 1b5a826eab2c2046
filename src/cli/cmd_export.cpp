#include <cstdio>
#include <filesystem>

#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/table.hpp"
#include "src/deploy/export.hpp"
#include "src/eval/evaluator.hpp"

namespace qnas::cli {

namespace {

struct ExportArgs {
  SubnetArgs target;
  std::string format;
  std::string out;
  bool force = false;
};

}  // namespace

void register_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "export one subnet's deployed model (input normalisation folded in): onnx | torchscript | safetensors");
  auto a = std::make_shared<ExportArgs>();
  add_subnet_args(*cmd, a->target);
  cmd->add_option("--format", a->format, "onnx | torchscript | safetensors")->required();
  cmd->add_option("--out", a->out, "output folder (written whole: temporary folder, renamed at the end)")->required();
  cmd->add_flag("--force", a->force, "replace an existing, non-empty output folder");
  cmd->callback([a] {
    deploy::ExportOptions opts;
    opts.format = deploy::parse_export_format(a->format);  // before anything loads
    opts.out_dir = a->out;
    opts.overwrite = a->force;
    auto [session, spec] = open_subnet(a->target);
    opts.spec = supernet::to_json(spec);
    opts.class_names = session.data.class_names;
    eval::Evaluator evaluator(session.config, session.net, session.data);
    const auto prepared = evaluator.prepare(spec);
    const auto r = deploy::export_graph(prepared.graph, opts);

    core::Table t({"file", "bytes"});
    for (const auto& f : r.files)
      t.add({r.dir + "/" + f, std::to_string(std::filesystem::file_size(r.dir + "/" + f))});
    std::printf("%s", t.render("text").c_str());
    std::printf("exported %s (%s) as %s; model_bytes %lld\n", a->target.subnet.c_str(),
                a->target.bits.empty() ? "its own policy" : ("@" + a->target.bits).c_str(), deploy::export_format_name(opts.format),
                static_cast<long long>(prepared.graph.model_bytes()));
    for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  });
}

}  // namespace qnas::cli
