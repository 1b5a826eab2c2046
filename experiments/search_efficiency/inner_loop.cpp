// LINAS's proposal step, timed on one core: refit the predictors on the
// rows of an evaluations.csv, then the inner evolutionary search on
// predictions (search.inner_evaluations, default 20,000), per predictor kind.
//
//   build/bench/bench_inner_loop configs/quickstart.yaml runs/quickstart/evaluations.csv [--format md]
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>

#include "search/results.hpp"
#include "search/tactics.hpp"
#include "src/core/config.hpp"
#include "src/core/error.hpp"
#include "src/core/table.hpp"
#include "supernet/supernet.hpp"

using namespace qnas;

int main(int argc, char** argv) {
  CLI::App app{"time LINAS's predictor refit and inner search on one core"};
  std::string config_path, csv, format = "text";
  std::vector<std::string> sets;
  app.add_option("config", config_path, "config (space and search section)")->required();
  app.add_option("csv", csv, "evaluations.csv whose rows the predictors are fitted on")->required();
  app.add_option("--set", sets, "config overrides")->take_all();
  app.add_option("--format", format, "text | csv | md | json");
  CLI11_PARSE(app, argc, argv);
  try {
    // One core: LibTorch (proxies), TBB (CV folds) and Eigen (not parallelised in qnas_predictors).
    at::set_num_threads(1);
    tbb::global_control one_core(tbb::global_control::max_allowed_parallelism, 1);
    const auto config = core::load_config(config_path, sets);
    const auto net = supernet::make_supernet(config, {});
    const search::Space space(net->space());
    auto cfg = config.search;
    cfg.tactic = "linas";
    const auto goals = search::Goals::from_config(cfg);
    search::History h;
    for (const auto& row : search::read_rows(search::read_csv(csv))) {
      const auto g = search::row_genome(space, row, csv);
      h.add({g, goals.to_min(row.metrics), goals.violation(row.metrics)}, 0, row.metrics);
    }
    core::Table t({"predictor", "rows", "inner_evaluations", "fit_s", "inner_s", "total_s", "proposed"});
    for (const std::string kind : {"ridge", "svr", "auto"}) {
      cfg.predictor = kind;
      double fit_s = 0;
      search::TacticContext ctx{space, goals, cfg, [&](const search::PredictorFit& f) { fit_s += f.fit_s; },
                                search::shape_proxies(space, *net), {}};
      auto tactic = search::make_tactic(ctx);
      core::Rng rng(1);
      const auto start = std::chrono::steady_clock::now();
      const auto batch = tactic->propose(1, h, size_t(cfg.population), rng);
      const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      t.add({kind, std::to_string(h.size()), std::to_string(cfg.inner_evaluations), core::fixed(fit_s, 3),
             core::fixed(total - fit_s, 3), core::fixed(total, 3), std::to_string(batch.size())});
    }
    std::printf("%s", t.render(format).c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_inner_loop: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
