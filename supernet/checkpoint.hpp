#pragma once
// Supernet checkpoints: one file (weights, optimizer state, training
// progress, the space's structure and its hash) written atomically, plus a
// readable space.json beside it.

#include <torch/optim/optimizer.h>

#include <string>

#include "supernet/supernet.hpp"

namespace qnas::supernet {

struct TrainProgress {
  int epochs_done = 0;
  int64_t steps_done = 0;
  bool quant_aware = false;  // trained with train.quant_aware (absent in older files: false)
  std::string optimizer = "sgd";  // train.optimizer whose state the file holds (absent in older files: sgd)
};

/// `<dir>/supernet.pt`.
std::string checkpoint_path(const std::string& dir);

/// Writes net (+ optimizer when given) and progress to `path` atomically, and
/// `space.json` beside it.
void save_checkpoint(const std::string& path, SupernetImpl& net, torch::optim::Optimizer* optimizer,
                     const TrainProgress& progress);

/// Loads into net (+ optimizer, whose train.optimizer is `optimizer_kind`).
/// Refuses, with a list of the differences, a checkpoint whose structure
/// differs from net's, and an optimizer state of another kind. `contents`,
/// when not empty, is the file's bytes (read by another process: ranks on
/// other hosts may not see `path`, which then only names it in messages).
TrainProgress load_checkpoint(const std::string& path, SupernetImpl& net,
                              torch::optim::Optimizer* optimizer = nullptr, const std::string& optimizer_kind = "sgd",
                              const std::string& contents = {});

}  // namespace qnas::supernet
