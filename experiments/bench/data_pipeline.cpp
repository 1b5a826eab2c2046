// bench_data_pipeline: is the data pipeline ever the bottleneck?
//
// Writes Fashion-MNIST images as 32x32 RGB data twice, as CIFAR-10 binary
// batches and as a PNG class-folder tree (the same pixels: padded by 2,
// each channel a different tone curve), then measures side by side in one
// run:
//   - decoding: load_dataset's read + decode throughput, and the bytes the
//     loaded dataset holds; the folder also streamed (data.storage: stream:
//     only the headers read at load, plus one pass for auto mean/std);
//   - augmentation: make_batch (gather + crop/flip [+ random-resized crop] +
//     normalisation) on one thread, and through the BatchLoader's workers;
//     for the streamed folder, PNG decoding per batch on those threads too;
//   - training: the sandwich step of the config's supernet on those batches.
// The ratio column is each pipeline throughput over the training's.
//
//   build/bench/bench_data_pipeline configs/quickstart.yaml --images 50000 --format md

#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "src/core/error.hpp"
#include "src/core/image_codec.hpp"
#include "src/core/loader.hpp"
#include "src/core/rng.hpp"
#include "src/core/runtime.hpp"
#include "src/core/table.hpp"
#include "src/eval/latency.hpp"
#include "supernet/supernet.hpp"
#include "supernet/trainer.hpp"

using namespace qnas;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Image i of the source as 32x32 RGB bytes (planar).
std::vector<uint8_t> rgb32(const core::Split& src, int64_t i) {
  std::vector<uint8_t> out(3 * 32 * 32, 0);
  const uint8_t* p = src.pixels.data_ptr<uint8_t>() + i * 28 * 28;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        const int v = p[y * 28 + x];
        out[size_t((c * 32 + y + 2) * 32 + x + 2)] = uint8_t(c == 0 ? v : c == 1 ? 255 - v : v * v / 255);
      }
  return out;
}

void write_cifar(const std::string& path, const core::Split& src, int64_t from, int64_t to) {
  std::ofstream out(path, std::ios::binary);
  for (int64_t i = from; i < to; ++i) {
    out.put(char(src.labels[i].item<int64_t>()));
    const auto px = rgb32(src, i);
    out.write(reinterpret_cast<const char*>(px.data()), std::streamsize(px.size()));
  }
}

void write_folder(const std::string& dir, const core::Split& src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const std::string class_dir = dir + "/" + std::to_string(src.labels[i].item<int64_t>());
    if (!fs::exists(class_dir)) fs::create_directories(class_dir);
    core::write_png(class_dir + "/" + std::to_string(i) + ".png", core::Image{3, 32, 32, rgb32(src, i)});
  }
}

struct Row {
  std::string stage, data, threads;
  double img_s;
  std::string held;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"data pipeline throughput against training throughput"};
  std::string config_path, format = "md", keep;
  std::vector<std::string> sets;
  int64_t images = 50000;
  int train_steps = 15;
  app.add_option("config", config_path, "qnas YAML config (its supernet is timed)")->required();
  app.add_option("--set", sets, "config overrides")->take_all();
  app.add_option("--images", images, "training images written in each format (test: a fifth)")->capture_default_str();
  app.add_option("--train-steps", train_steps, "timed training steps")->capture_default_str();
  app.add_option("--keep", keep, "write the data here and keep it (default: a temporary folder, removed)");
  app.add_option("--format", format, "text | csv | md | json")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    auto cfg = core::load_config(config_path, sets);
    const int threads = core::init_runtime(cfg);
    const std::string dir = keep.empty() ? (fs::temp_directory_path() / ("qnas_bench_data_" + std::to_string(::getpid()))).string() : keep;
    const int64_t tests = std::max<int64_t>(1, images / 5);
    {
      core::DataConfig fm;  // the source pixels
      fm.val_size = 0;
      const auto source = core::load_dataset(fm, 0);
      QNAS_CHECK(images <= source.train.size() && tests <= source.test.size(), "--images ", images, ": Fashion-MNIST has ",
                 source.train.size(), "; expected at most that");
      fs::create_directories(dir + "/cifar");
      const int64_t per_batch = (images + 4) / 5;
      for (int b = 0; b < 5; ++b)
        write_cifar(dir + "/cifar/data_batch_" + std::to_string(b + 1) + ".bin", source.train, b * per_batch,
                    std::min(images, (b + 1) * per_batch));
      write_cifar(dir + "/cifar/test_batch.bin", source.test, 0, tests);
      const auto t = Clock::now();
      write_folder(dir + "/folder/train", source.train, images);
      write_folder(dir + "/folder/test", source.test, tests);
      std::fprintf(stderr, "bench_data_pipeline: wrote %lld + %lld images per format under %s (PNGs in %.1f s)\n",
                   (long long)images, (long long)tests, dir.c_str(), since(t));
    }

    std::vector<Row> rows;
    core::Dataset cifar, streamed;
    const auto held_bytes = [](const core::Split& s) { return s.pixels.defined() ? s.pixels.nbytes() : 0; };
    for (const auto& [format_name, storage] : std::vector<std::pair<std::string, std::string>>{
             {"cifar", "memory"}, {"folder", "memory"}, {"folder", "stream"}}) {
      core::DataConfig dc;
      dc.format = format_name;
      dc.storage = storage;
      dc.dir = dir + "/" + format_name;
      dc.val_size = 0;
      dc.mean = dc.std = {true, {}};
      const int64_t rss_before = eval::current_rss_bytes();
      const auto t = Clock::now();
      auto d = core::load_dataset(dc, 0, threads);
      const double s = since(t);
      const int64_t held = held_bytes(d.train) + held_bytes(d.test);
      const std::string data = format_name + (storage == "stream" ? " streamed" : "");
      rows.push_back({storage == "stream" ? "load (headers, auto mean/std)" : "decode", data, std::to_string(threads),
                      double(images + tests) / s,
                      core::si(double(held)) + "B tensors, RSS +" + core::si(double(eval::current_rss_bytes() - rss_before)) + "B"});
      if (format_name == "cifar") cifar = std::move(d);
      if (storage == "stream") streamed = std::move(d);
    }

    // Augmentation of one epoch's worth of batches, as training draws them;
    // a streamed folder decodes each image on the loader's threads as well.
    const int64_t batch = cfg.train.batch_size, steps = cifar.train.size() / batch;
    std::vector<int64_t> order(size_t(cifar.train.size()));
    std::iota(order.begin(), order.end(), 0);
    const auto time_loader = [&](const core::Dataset& d, const std::string& data, const std::string& name,
                                 const core::Augment& aug, int workers) {
      core::BatchLoader loader(d.train, order, batch, aug, 7, workers);
      const auto t = Clock::now();
      for (int64_t s = 0; s < steps; ++s) loader.next();
      const std::string who = workers == 0 ? "caller" : std::to_string(workers) + (workers == 1 ? " worker" : " workers");
      rows.push_back({"augment " + name, data, who, double(steps * batch) / since(t), ""});
    };
    const std::vector<std::pair<std::string, core::Augment>> augments{
        {"none", {0, false, false}}, {"crop+flip", {2, true, false}}, {"crop+flip+rrc", {2, true, true}}};
    for (const auto& [name, aug] : augments)
      for (int workers : {0, 1}) time_loader(cifar, "cifar", name, aug, workers);
    for (int workers : {0, 1, 2}) time_loader(streamed, "folder streamed", "crop+flip", {2, true, false}, workers);

    // Training: the config's supernet on 32x32 RGB batches.
    cfg.data.format = "cifar";
    torch::manual_seed(core::derive_seed(cfg.seed, "init"));
    auto net = supernet::make_supernet(cfg, {3, 32, 32, 10});
    supernet::Trainer trainer(cfg, net, cifar);
    core::Rng sampler(core::derive_seed(cfg.seed, "bench"));
    core::BatchLoader loader(cifar.train, order, batch, {2, true, false}, 7, 1);
    net->train();
    auto t = Clock::now();
    for (int s = 0; s < 3 + train_steps; ++s) {
      if (s == 3) t = Clock::now();
      auto [x, y] = loader.next();
      trainer.step(x.contiguous(at::MemoryFormat::ChannelsLast), y, sampler, 0.01);
    }
    const double train_img_s = double(train_steps * batch) / since(t);
    rows.push_back({"train step (" + cfg.supernet.kind + " sandwich)", "cifar", std::to_string(threads), train_img_s, ""});

    core::Table table({"stage", "data", "threads", "img_per_s", "x_training", "held"});
    for (const auto& r : rows)
      table.add({r.stage, r.data, r.threads, core::fixed(r.img_s, 0), core::fixed(r.img_s / train_img_s, 1), r.held});
    std::printf("%s", table.render(format).c_str());
    if (keep.empty()) fs::remove_all(dir);
  } catch (const qnas::Error& e) {
    std::fprintf(stderr, "bench_data_pipeline: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
