#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"

namespace qnas::cli {

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train the supernet (sandwich rule + in-place distillation)");
  auto args = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  add_config_args(*cmd, *args);
  cmd->add_flag("--resume", *resume, "continue from <output.dir>/supernet.pt");
  cmd->callback([args, resume] {
    const auto config = core::load_config(args->path, args->sets);
    auto session = eval::open_session(config);  // bad data fails here, before the run folder exists
    const bool writer = session.world->coordinator();
    if (writer) {
      core::ensure_dir(config.output.dir);
      core::write_resolved_config(session.config, config.output.dir);
      core::write_class_names(session.data.class_names, config.output.dir);
      eval::record_run_session(session, config.output.dir, *resume ? "train --resume" : "train");
      std::fprintf(stderr, "train: %lld training, %lld validation images%s; %s, %d thread%s per rank; space 10^%.1f subnets\n",
                   (long long)session.data.train.size(), (long long)session.data.val.size(),
                   session.data.streamed ? " (streamed from disk)" : "", session.world->describe().c_str(),
                   session.threads, session.threads == 1 ? "" : "s", session.net->space().log10_size());
    }
    const auto summary = eval::train_supernet(session, *resume);
    if (!writer) return;
    core::Table t({"key", "value"});
    t.add({"checkpoint", supernet::checkpoint_path(config.output.dir)});
    t.add({"epochs", std::to_string(summary.epochs_done)});
    t.add({"train_s", core::fixed(summary.seconds, 1)});
    t.add({"images_per_s", core::fixed(summary.images_per_s, 1)});
    if (session.world->size() > 1)  // rank 0's wait, the others' work included: the cost of data parallelism
      t.add({"allreduce_s", core::fixed(summary.allreduce_s, 1)});
    t.add({"log", config.output.dir + "/train_log.csv"});
    std::printf("%s", t.render().c_str());
  });
}

}  // namespace qnas::cli
