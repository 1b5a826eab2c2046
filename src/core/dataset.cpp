#include "src/core/dataset.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/image_codec.hpp"
#include "src/core/readers.hpp"
#include "src/core/rng.hpp"

namespace qnas::core {

// ---------------------------------------------------------------------------
// Normalisation

at::Tensor channel_tensor(const std::vector<double>& values) {
  return at::tensor(std::vector<float>(values.begin(), values.end()), at::kFloat).view({1, int64_t(values.size()), 1, 1});
}


// A plain loop, not ATen ops: loader threads call it, and ATen's intra-op
// parallelism there would start a thread team per loader thread.
at::Tensor PixelNorm::operator()(const at::Tensor& pixels) const {
  QNAS_CHECK(pixels.scalar_type() == at::kByte && pixels.dim() == 4 && pixels.size(1) == int64_t(mean.size()),
             "normalise: pixels ", pixels.sizes(), " of ", pixels.scalar_type(), "; expected uint8 N x ", mean.size(),
             " x H x W");
  const auto in = pixels.contiguous();
  auto out = at::empty(in.sizes(), at::kFloat);
  const int64_t n = in.size(0), c = in.size(1), plane = in.size(2) * in.size(3);
  const uint8_t* p = in.data_ptr<uint8_t>();
  float* q = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m = float(mean[size_t(ch)]), s = float(std[size_t(ch)]);
      const int64_t base = (i * c + ch) * plane;
      for (int64_t k = 0; k < plane; ++k) q[base + k] = (float(p[base + k]) / 255.0f - m) / s;
    }
  return out;
}

// ---------------------------------------------------------------------------
// Splits

namespace {

// Decodes the files of `rows` (int64) into one uint8 N x C x H x W tensor.
at::Tensor decode_rows(const ImageFiles& files, const at::Tensor& rows) {
  const auto index = rows.contiguous();
  auto out = at::empty({index.size(0), files.channels, files.height, files.width}, at::kByte);
  files.decode(index.data_ptr<int64_t>(), index.size(0), out.data_ptr<uint8_t>());
  return out;
}

// What a split indexes its images by: file rows when streamed, else pixels.
at::Tensor& indexed(Split& s) { return s.streamed() ? s.rows : s.pixels; }

}  // namespace

std::array<int64_t, 3> Split::image_shape() const {
  if (streamed()) return {files->channels, files->height, files->width};
  return {pixels.size(1), pixels.size(2), pixels.size(3)};
}

at::Tensor Split::raw(int64_t start, int64_t n) const {
  return streamed() ? decode_rows(*files, rows.narrow(0, start, n)) : pixels.narrow(0, start, n);
}

at::Tensor Split::images(int64_t start, int64_t n) const { return norm(raw(start, n)); }

at::Tensor Split::images_at(const at::Tensor& index) const {
  return norm(streamed() ? decode_rows(*files, rows.index_select(0, index)) : pixels.index_select(0, index));
}

Split Split::first(int64_t n) const { return n <= 0 || n >= size() ? *this : slice(0, n); }

Split Split::slice(int64_t start, int64_t n) const {
  Split s = *this;
  s.labels = labels.narrow(0, start, n);
  indexed(s) = indexed(s).narrow(0, start, n);
  return s;
}

Split Split::subset(const at::Tensor& index) const {
  Split s = *this;
  s.labels = labels.index_select(0, index);
  indexed(s) = indexed(s).index_select(0, index);
  return s;
}

// ---------------------------------------------------------------------------
// Augmentation

namespace {

// A counter-based stream per image: its draws depend on (stream, image) only.
class ImageRng {
 public:
  ImageRng(uint64_t stream, int64_t image) : state_(mix64(stream ^ mix64(uint64_t(image)))) {}
  uint64_t operator()() { return mix64(state_++); }
  double uniform() { return uniform01(*this); }
  int64_t index(int64_t n) { return int64_t((*this)() % uint64_t(n)); }

 private:
  uint64_t state_;
};

// Random-resized crop (Szegedy et al.; torchvision's defaults): a window of
// 8-100 % of the area with aspect ratio in [3/4, 4/3], resampled to h x w.
void random_resized_crop(const uint8_t* in, int64_t c, int64_t h, int64_t w, ImageRng& rng, uint8_t* out) {
  const double area = double(h * w);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (0.08 + 0.92 * rng.uniform());
    const double ratio = std::exp(std::log(3.0 / 4) + (std::log(4.0 / 3) - std::log(3.0 / 4)) * rng.uniform());
    const double cw = std::sqrt(target * ratio), ch = std::sqrt(target / ratio);
    if (cw > double(w) || ch > double(h)) continue;
    const double y0 = (double(h) - ch) * rng.uniform(), x0 = (double(w) - cw) * rng.uniform();
    resample(in, c, h, w, y0, x0, ch, cw, out, h, w);
    return;
  }
  std::copy(in, in + c * h * w, out);  // no window fitted: the whole image
}

}  // namespace

std::pair<at::Tensor, at::Tensor> make_batch(const Split& split, const std::vector<int64_t>& index,
                                             const Augment& augment, uint64_t stream) {
  const auto [c, h, w] = split.image_shape();
  const int64_t n = int64_t(index.size()), plane = h * w;
  auto pixels = at::empty({n, c, h, w}, at::kByte);
  auto labels = at::empty({n}, at::kLong);
  const uint8_t* src = split.streamed() ? nullptr : split.pixels.data_ptr<uint8_t>();
  const int64_t* rows = split.streamed() ? split.rows.data_ptr<int64_t>() : nullptr;
  const int64_t* src_labels = split.labels.data_ptr<int64_t>();
  uint8_t* dst = pixels.data_ptr<uint8_t>();
  int64_t* dst_labels = labels.data_ptr<int64_t>();
  const int64_t pad = augment.crop_padding;
  std::vector<uint8_t> decoded(split.streamed() ? size_t(c * plane) : 0);
  std::vector<uint8_t> resized(augment.random_resized ? size_t(c * plane) : 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = index[size_t(i)];
    ImageRng rng(stream, k);
    const uint8_t* image = src ? src + k * c * plane : decoded.data();
    if (!src) split.files->decode(rows[k], decoded.data());  // on this loader thread
    if (augment.random_resized) {
      random_resized_crop(image, c, h, w, rng, resized.data());
      image = resized.data();
    }
    // Offsets of the crop inside the padded image, relative to the original.
    const int64_t dy = pad ? rng.index(2 * pad + 1) - pad : 0;
    const int64_t dx = pad ? rng.index(2 * pad + 1) - pad : 0;
    const bool flip = augment.hflip && (rng() & 1u);
    dst_labels[i] = src_labels[k];
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t* in = image + ch * plane;
      uint8_t* out = dst + (i * c + ch) * plane;
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y + dy;
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sx = (flip ? w - 1 - x : x) + dx;
          out[y * w + x] = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? in[sy * w + sx] : 0;
        }
      }
    }
  }
  return {split.norm(pixels), labels};
}

// ---------------------------------------------------------------------------
// Loading

namespace {

RawDataset read_raw(const DataConfig& cfg, int threads) {
  QNAS_CHECK(cfg.image_size == 0 || cfg.format == "folder", "data.image_size: ", cfg.image_size,
             " resizes images of data.format folder; expected 0 for data.format ", cfg.format);
  QNAS_CHECK(cfg.storage != "stream" || cfg.format == "folder", "data.storage: stream decodes the images of "
             "data.format folder from disk; expected auto or memory for data.format ", cfg.format);
  if (cfg.format == "cifar") return read_cifar(cfg.dir, cfg.cifar_labels);
  if (cfg.format == "folder") return read_image_folder(cfg.dir, cfg.image_size, cfg.storage, threads);
  QNAS_CHECK(cfg.format == "idx", "data.format: '", cfg.format, "'; expected idx, cifar or folder");
  return read_idx_dataset(cfg.dir);
}

// The set's pixels as a uint8 tensor that owns them (no copy), or its files.
Split to_split(ImageSet& set) {
  Split s;
  s.labels = at::tensor(set.labels, at::kLong);
  if (set.files) {
    s.files = set.files;
    s.rows = at::arange(set.size(), at::kLong);
    return s;
  }
  auto* owner = new std::vector<uint8_t>(std::move(set.pixels));
  s.pixels = at::from_blob(owner->data(), {set.size(), set.channels, set.height, set.width},
                           [owner](void*) { delete owner; }, at::TensorOptions(at::kByte));
  return s;
}

// Images order[from, to) of s: a view when they are one ascending run.
Split take(const Split& s, const std::vector<int64_t>& order, int64_t from, int64_t to) {
  const bool contiguous_run = std::is_sorted(order.begin() + from, order.begin() + to) &&
                              (to == from || order[size_t(to - 1)] - order[size_t(from)] == to - from - 1);
  if (contiguous_run) {
    const int64_t start = to > from ? order[size_t(from)] : 0;
    return s.slice(start, to - from);
  }
  return s.subset(at::tensor(std::vector<int64_t>(order.begin() + from, order.begin() + to), at::kLong));
}

// Per-channel mean and standard deviation of pixel / 255 over a split, read
// a chunk at a time (a streamed split is decoded once, not held).
std::pair<std::vector<double>, std::vector<double>> channel_stats(const Split& split) {
  const auto [c, h, w] = split.image_shape();
  const int64_t plane = h * w, chunk = 4096;
  std::vector<uint64_t> sum(static_cast<size_t>(c), 0), sum_sq(static_cast<size_t>(c), 0);
  for (int64_t start = 0; start < split.size(); start += chunk) {
    const auto pixels = split.raw(start, std::min(chunk, split.size() - start)).contiguous();
    const uint8_t* p = pixels.data_ptr<uint8_t>();
    for (int64_t i = 0; i < pixels.size(0); ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (const uint8_t *q = p + (i * c + ch) * plane, *end = q + plane; q < end; ++q)
          sum[size_t(ch)] += *q, sum_sq[size_t(ch)] += uint64_t(*q) * *q;
  }
  std::vector<double> mean(static_cast<size_t>(c)), deviation(static_cast<size_t>(c));
  for (size_t ch = 0; ch < size_t(c); ++ch) {
    const double count = double(split.size() * plane), m = double(sum[ch]) / count;
    mean[ch] = m / 255.0;
    deviation[ch] = std::sqrt(std::max(0.0, double(sum_sq[ch]) / count - m * m)) / 255.0;
  }
  return {mean, deviation};
}

std::vector<double> per_channel(const ChannelValues& v, const std::vector<double>& computed, int64_t channels,
                                const char* key) {
  if (v.automatic) return computed;
  QNAS_CHECK(v.values.size() == 1 || int64_t(v.values.size()) == channels, "data.", key, ": ", v.values.size(),
             " values for images of ", channels, " channels; expected 1 or ", channels, " (or auto)");
  return v.values.size() == 1 ? std::vector<double>(size_t(channels), v.values[0]) : v.values;
}

}  // namespace

Dataset load_dataset(const DataConfig& cfg, uint64_t seed, int threads) {
  RawDataset raw = read_raw(cfg, threads);
  Dataset d;
  d.channels = raw.train.channels;
  d.height = raw.train.height;
  d.width = raw.train.width;
  d.class_names = raw.class_names;
  d.classes = int64_t(raw.class_names.size());
  d.streamed = raw.streamed;

  int64_t n_train = raw.train.size();
  if (cfg.train_subset > 0) n_train = std::min(n_train, cfg.train_subset);
  QNAS_CHECK(cfg.val_size < n_train, "data.val_size: ", cfg.val_size, " validation images leave no "
             "training images out of ", n_train, "; expected fewer than ", n_train);
  QNAS_CHECK(cfg.format != "folder" || cfg.val_from == "random" || cfg.val_size == 0, "data.val_from: last would "
             "take the last ", cfg.val_size, " images in folder order, which is class by class (the last classes "
             "only); expected random for data.format folder (or data.val_size 0)");
  const Split all = to_split(raw.train);
  d.test = to_split(raw.test);

  std::vector<int64_t> order(static_cast<size_t>(n_train));
  std::iota(order.begin(), order.end(), 0);
  if (cfg.val_from == "random") {
    std::mt19937_64 rng(seed ^ 0x76616c5f73706c74ull);  // "val_splt": a stream of its own
    std::shuffle(order.begin(), order.end(), rng);
    std::sort(order.begin(), order.end() - cfg.val_size);
    std::sort(order.end() - cfg.val_size, order.end());
  }
  const int64_t n_fit = n_train - cfg.val_size;
  d.train = take(all, order, 0, n_fit);
  if (cfg.val_size > 0) d.val = take(all, order, n_fit, n_train);

  const bool any_auto = cfg.mean.automatic || cfg.std.automatic;
  const auto computed = any_auto ? channel_stats(d.train) : std::pair<std::vector<double>, std::vector<double>>{};
  d.norm = {per_channel(cfg.mean, computed.first, d.channels, "mean"),
            per_channel(cfg.std, computed.second, d.channels, "std")};
  for (double s : d.norm.std)
    QNAS_CHECK(s > 1e-6, "data.std: ", s, " for a channel of the training images; expected > 1e-6 (is every pixel "
               "the same?)");
  for (Split* s : {&d.train, &d.val, &d.test}) s->norm = d.norm;
  return d;
}

DataConfig resolved_data_config(const DataConfig& cfg, const Dataset& d) {
  DataConfig out = cfg;
  out.mean = {false, d.norm.mean};
  out.std = {false, d.norm.std};
  return out;
}

void write_class_names(const std::vector<std::string>& names, const std::string& dir) {
  write_file_atomic(dir + "/classes.json", nlohmann::json{{"classes", names}}.dump(1) + "\n");
}

}  // namespace qnas::core
