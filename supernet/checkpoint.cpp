#include "supernet/checkpoint.hpp"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <filesystem>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"

namespace qnas::supernet {

std::string checkpoint_path(const std::string& dir) { return dir + "/supernet.pt"; }

void save_checkpoint(const std::string& path, SupernetImpl& net, torch::optim::Optimizer* optimizer,
                     const TrainProgress& progress) {
  const auto dir = std::filesystem::path(path).parent_path().string();
  core::ensure_dir(dir);
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive weights;
  net.save(weights);
  archive.write("weights", weights);
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    archive.write("optimizer", opt);
  }
  archive.write("structure", c10::IValue(net.space().structure.dump()));
  archive.write("structure_hash", c10::IValue(net.space().structure_hash()));
  archive.write("epochs_done", c10::IValue(int64_t(progress.epochs_done)));
  archive.write("steps_done", c10::IValue(progress.steps_done));
  archive.write("quant_aware", c10::IValue(progress.quant_aware));
  archive.write("optimizer_kind", c10::IValue(progress.optimizer));
  // Serialised in memory, then written by write_file_atomic(): LibTorch's
  // file writer throws from its destructor when the disk fills (terminate).
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  core::write_file_atomic(path, bytes);
  core::write_file_atomic((std::filesystem::path(dir) / "space.json").string(),
                          to_json(net.space()).dump(2) + "\n");
}

namespace {
c10::IValue read_value(torch::serialize::InputArchive& a, const std::string& key, const std::string& path) {
  c10::IValue v;
  QNAS_CHECK(a.try_read(key, v), "checkpoint '", path, "': no '", key,
             "' entry; expected a file written by `qnas train`");
  return v;
}
}  // namespace

TrainProgress load_checkpoint(const std::string& path, SupernetImpl& net, torch::optim::Optimizer* optimizer,
                              const std::string& optimizer_kind, const std::string& contents) {
  QNAS_CHECK(!contents.empty() || core::file_exists(path), "checkpoint '", path,
             "' does not exist; expected one written by `qnas train` (check output.dir)");
  torch::serialize::InputArchive archive;
  try {
    if (contents.empty())
      archive.load_from(path);
    else
      archive.load_from(contents.data(), contents.size());
  } catch (const c10::Error& e) {
    QNAS_THROW("checkpoint '", path, "': cannot read (", e.what_without_backtrace(), ")");
  }
  const std::string hash = read_value(archive, "structure_hash", path).toStringRef();
  if (hash != net.space().structure_hash()) {
    const auto saved = nlohmann::json::parse(read_value(archive, "structure", path).toStringRef());
    std::string msg = "checkpoint '" + path + "' was trained on a different supernet than the config describes:";
    for (const auto& line : structure_diff(saved, net.space().structure)) msg += "\n  " + line;
    msg += "\nexpected the same supernet section (or a fresh output.dir for a new supernet)";
    throw Error(msg);
  }
  torch::serialize::InputArchive weights;
  QNAS_CHECK(archive.try_read("weights", weights), "checkpoint '", path, "': no weights");
  net.load(weights);
  c10::IValue kind;
  const std::string saved_kind = archive.try_read("optimizer_kind", kind) ? kind.toStringRef() : "sgd";
  if (optimizer) {
    QNAS_CHECK(saved_kind == optimizer_kind, "checkpoint '", path, "' holds the state of train.optimizer: ", saved_kind,
               "; expected ", optimizer_kind, " (the same setting to resume it, or a fresh output.dir)");
    torch::serialize::InputArchive opt;
    QNAS_CHECK(archive.try_read("optimizer", opt), "checkpoint '", path,
               "': no optimizer state; expected a training checkpoint to resume from");
    optimizer->load(opt);
  }
  TrainProgress p;
  p.epochs_done = int(read_value(archive, "epochs_done", path).toInt());
  p.steps_done = read_value(archive, "steps_done", path).toInt();
  c10::IValue quant_aware;
  p.quant_aware = archive.try_read("quant_aware", quant_aware) && quant_aware.toBool();
  p.optimizer = saved_kind;
  return p;
}

}  // namespace qnas::supernet
