#include "src/core/dataset.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/idx.hpp"
#include "src/core/rng.hpp"

namespace qnas::core {

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  const std::string plain = dir + "/" + stem;
  if (file_exists(plain + ".gz")) return plain + ".gz";
  if (file_exists(plain)) return plain;
  QNAS_THROW("data.dir '", dir, "': missing '", stem, ".gz' (or '", stem,
             "'); expected the IDX files of MNIST or Fashion-MNIST there"
             " (Debian: apt install dataset-fashion-mnist)");
}

namespace {

struct RawSplit {
  IdxArray images, labels;
  std::string images_path, labels_path;
};

RawSplit read_pair(const std::string& dir, const std::string& prefix) {
  RawSplit r;
  r.images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  r.labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  r.images = read_idx(r.images_path, 3);
  r.labels = read_idx(r.labels_path, 1);
  QNAS_CHECK(r.images.count() == r.labels.count(), "IDX files '", r.images_path, "' and '",
             r.labels_path, "': ", r.images.count(), " images but ", r.labels.count(),
             " labels; expected equal counts");
  return r;
}

Split to_split(const RawSplit& r, int64_t n, double mean, double std) {
  const int64_t h = r.images.dims[1], w = r.images.dims[2];
  auto u8 = at::from_blob(const_cast<uint8_t*>(r.images.data.data()), {n, 1, h, w}, at::kByte);
  Split s;
  s.images = ((u8.to(at::kFloat) / 255.0 - mean) / std).contiguous();
  s.labels = at::from_blob(const_cast<uint8_t*>(r.labels.data.data()), {n}, at::kByte).to(at::kLong);
  return s;
}

Split take(const Split& s, const at::Tensor& index) {
  return {s.images.index_select(0, index).contiguous(), s.labels.index_select(0, index).contiguous()};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> make_batch(const Split& split, const std::vector<int64_t>& index,
                                             const Augment& augment, float pad_value, std::mt19937_64& rng) {
  const int64_t n = int64_t(index.size()), c = split.images.size(1), h = split.images.size(2),
                w = split.images.size(3);
  auto images = at::empty({n, c, h, w}, at::kFloat);
  auto labels = at::empty({n}, at::kLong);
  const float* src = split.images.data_ptr<float>();
  const int64_t* src_labels = split.labels.data_ptr<int64_t>();
  float* dst = images.data_ptr<float>();
  int64_t* dst_labels = labels.data_ptr<int64_t>();
  const int64_t pad = augment.crop_padding, plane = h * w;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = index[size_t(i)];
    // Offsets of the crop inside the padded image, relative to the original.
    const int64_t dy = pad ? uniform_index(rng, 2 * pad + 1) - pad : 0;
    const int64_t dx = pad ? uniform_index(rng, 2 * pad + 1) - pad : 0;
    const bool flip = augment.hflip && (rng() & 1u);
    dst_labels[i] = src_labels[k];
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* in = src + (k * c + ch) * plane;
      float* out = dst + (i * c + ch) * plane;
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y + dy;
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sx = (flip ? w - 1 - x : x) + dx;
          out[y * w + x] = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? in[sy * w + sx] : pad_value;
        }
      }
    }
  }
  return {images, labels};
}

Dataset load_dataset(const DataConfig& cfg, uint64_t seed) {
  const RawSplit train = read_pair(cfg.dir, "train");
  const RawSplit test = read_pair(cfg.dir, "t10k");
  QNAS_CHECK(train.images.dims[1] == test.images.dims[1] && train.images.dims[2] == test.images.dims[2],
             "IDX files '", train.images_path, "' and '", test.images_path,
             "': image sizes differ; expected the same height and width");

  Dataset d;
  d.height = train.images.dims[1];
  d.width = train.images.dims[2];
  d.mean = cfg.mean;
  d.std = cfg.std;
  const uint8_t max_label = std::max(*std::max_element(train.labels.data.begin(), train.labels.data.end()),
                                     *std::max_element(test.labels.data.begin(), test.labels.data.end()));
  d.classes = int64_t(max_label) + 1;

  int64_t n_train = train.labels.count();
  if (cfg.train_subset > 0) n_train = std::min(n_train, cfg.train_subset);
  QNAS_CHECK(cfg.val_size < n_train, "data.val_size: ", cfg.val_size, " validation images leave no "
             "training images out of ", n_train, "; expected fewer than ", n_train);

  const Split all = to_split(train, n_train, cfg.mean, cfg.std);
  d.test = to_split(test, test.labels.count(), cfg.mean, cfg.std);

  std::vector<int64_t> order(static_cast<size_t>(n_train));
  std::iota(order.begin(), order.end(), 0);
  if (cfg.val_from == "random") {
    std::mt19937_64 rng(seed ^ 0x76616c5f73706c74ull);  // "val_splt": a stream of its own
    std::shuffle(order.begin(), order.end(), rng);
    std::sort(order.begin(), order.end() - cfg.val_size);
    std::sort(order.end() - cfg.val_size, order.end());
  }
  const int64_t n_fit = n_train - cfg.val_size;
  auto index = [&](int64_t from, int64_t to) {
    return at::tensor(std::vector<int64_t>(order.begin() + from, order.begin() + to), at::kLong);
  };
  d.train = take(all, index(0, n_fit));
  if (cfg.val_size > 0) d.val = take(all, index(n_fit, n_train));
  return d;
}

}  // namespace qnas::core
