#include "src/core/readers.hpp"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/idx.hpp"
#include "src/core/image_codec.hpp"

namespace qnas::core {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> numbered_names(int64_t classes) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < classes; ++i) names.push_back(std::to_string(i));
  return names;
}

int64_t class_count(const ImageSet& a, const ImageSet& b) {
  int64_t top = -1;
  for (const auto* s : {&a, &b})
    for (int64_t l : s->labels) top = std::max(top, l);
  return top + 1;
}

// ---- idx

ImageSet read_idx_pair(const std::string& dir, const std::string& prefix) {
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path, 3);
  const IdxArray labels = read_idx(labels_path, 1);
  QNAS_CHECK(images.count() == labels.count(), "IDX files '", images_path, "' and '", labels_path, "': ",
             images.count(), " images but ", labels.count(), " labels; expected equal counts");
  ImageSet s{1, images.dims[1], images.dims[2], std::move(images.data), {}, images_path, nullptr};
  s.labels.assign(labels.data.begin(), labels.data.end());
  return s;
}

// ---- cifar

struct CifarLayout {
  std::vector<std::string> train_files;
  std::string test_file;
  int64_t label_bytes = 1;  // 1: CIFAR-10, 2: CIFAR-100 (coarse, fine)
  int64_t classes = 10;
  std::string names_file;   // class names, one per line, when present
};

constexpr int64_t kCifarPixels = 3 * 32 * 32;

CifarLayout cifar_layout(const std::string& dir, const std::string& labels) {
  CifarLayout l;
  if (file_exists(dir + "/train.bin") || file_exists(dir + "/test.bin")) {
    l.train_files = {dir + "/train.bin"};
    l.test_file = dir + "/test.bin";
    l.label_bytes = 2;
    l.classes = labels == "coarse" ? 20 : 100;
    l.names_file = dir + "/" + labels + "_label_names.txt";
  } else {
    for (int i = 1; file_exists(dir + "/data_batch_" + std::to_string(i) + ".bin"); ++i)
      l.train_files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    l.test_file = dir + "/test_batch.bin";
    l.names_file = dir + "/batches.meta.txt";
  }
  QNAS_CHECK(!l.train_files.empty() && file_exists(l.train_files[0]) && file_exists(l.test_file), "data.dir '", dir,
             "': no CIFAR binary batches; expected data_batch_1.bin ... and test_batch.bin (CIFAR-10) or "
             "train.bin and test.bin (CIFAR-100)");
  return l;
}

void append_cifar_file(const std::string& path, const CifarLayout& l, const std::string& labels, ImageSet& out) {
  const int64_t record = l.label_bytes + kCifarPixels;
  const int64_t size = regular_file_size(path, "CIFAR file");
  QNAS_CHECK(size > 0 && size % record == 0, "CIFAR file '", path, "': ", size, " bytes, not a whole number of ",
             record, "-byte records (", l.label_bytes, " label byte", l.label_bytes > 1 ? "s" : "",
             " + 3072 pixels); is it truncated, or of the other CIFAR?");
  std::ifstream in(path, std::ios::binary);
  QNAS_CHECK(in.good(), "CIFAR file '", path, "': cannot open");
  const int64_t n = size / record, label_at = l.label_bytes == 2 && labels == "fine" ? 1 : 0;
  std::vector<uint8_t> buf(static_cast<size_t>(record));
  const size_t base = out.pixels.size();
  out.pixels.resize(base + size_t(n * kCifarPixels));
  for (int64_t i = 0; i < n; ++i) {
    QNAS_CHECK(in.read(reinterpret_cast<char*>(buf.data()), record).good(), "CIFAR file '", path,
               "': read error at record ", i);
    const int64_t label = buf[size_t(label_at)];
    QNAS_CHECK(label < l.classes, "CIFAR file '", path, "': record ", i, " has label ", label, "; expected 0..",
               l.classes - 1);
    out.labels.push_back(label);
    std::copy(buf.begin() + l.label_bytes, buf.end(), out.pixels.begin() + int64_t(base) + i * kCifarPixels);
  }
}

ImageSet read_cifar_files(const std::vector<std::string>& files, const CifarLayout& l, const std::string& labels) {
  ImageSet s{3, 32, 32, {}, {}, (files.size() == 1 ? files[0] : files[0] + " ..."), nullptr};
  // One allocation of the final size: growing it file by file would hold
  // up to twice the pixels while copying.
  int64_t records = 0;
  for (const auto& f : files) records += regular_file_size(f, "CIFAR file") / (l.label_bytes + kCifarPixels);
  s.pixels.reserve(size_t(records * kCifarPixels));
  for (const auto& f : files) append_cifar_file(f, l, labels, s);
  return s;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos)
      lines.push_back(line.substr(0, line.find_last_not_of(" \t\r") + 1));
  return lines;
}

// ---- folder

struct FolderSplit {
  std::string dir;
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

std::vector<std::string> sorted_subdirs(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The image files of one split; every class folder must hold at least one.
FolderSplit list_split(const std::string& dir, const std::vector<std::string>& classes, bool all_classes) {
  FolderSplit s{dir, {}, {}};
  const auto present = sorted_subdirs(dir);
  for (const auto& name : present)
    QNAS_CHECK(std::binary_search(classes.begin(), classes.end(), name), "image folder '", dir, "/", name,
               "': a class the training split does not have; expected one of the classes in train/");
  for (size_t c = 0; c < classes.size(); ++c) {
    const std::string class_dir = dir + "/" + classes[c];
    if (!all_classes && !fs::is_directory(class_dir)) continue;
    std::vector<std::string> files;
    if (fs::is_directory(class_dir))
      for (const auto& e : fs::directory_iterator(class_dir))
        if (e.is_regular_file() && is_image_file(e.path().string())) files.push_back(e.path().string());
    QNAS_CHECK(!files.empty(), "image folder '", class_dir, "': no images; expected .png, .jpg or .jpeg files");
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      s.paths.push_back(std::move(f));
      s.labels.push_back(int64_t(c));
    }
  }
  QNAS_CHECK(!s.paths.empty(), "image folder '", dir, "': no class subfolders; expected <class>/<image> files");
  return s;
}

struct FolderShape {
  int64_t channels = 1, height = 0, width = 0;
};

// Channels and size from the headers alone, before anything is decoded.
FolderShape folder_shape(const std::vector<const FolderSplit*>& splits, int64_t image_size) {
  FolderShape shape;
  std::string first;
  for (const auto* s : splits)
    for (const auto& path : s->paths) {
      const ImageHeader h = read_image_header(path);
      if (h.colour) shape.channels = 3;
      if (image_size > 0) continue;
      if (first.empty()) {
        first = path, shape.height = h.height, shape.width = h.width;
        continue;
      }
      QNAS_CHECK(h.height == shape.height && h.width == shape.width, "image '", path, "': ", h.height, "x", h.width,
                 " pixels, but '", first, "' has ", shape.height, "x", shape.width,
                 "; expected one size (set data.image_size to resize every image)");
    }
  if (image_size > 0) shape.height = shape.width = image_size;
  return shape;
}

ImageSet split_set(const FolderSplit& s, const FolderShape& shape, int64_t image_size, int threads) {
  auto files = std::make_shared<ImageFiles>();
  *files = {s.paths, shape.channels, shape.height, shape.width, image_size, std::max(1, threads)};
  return {shape.channels, shape.height, shape.width, {}, s.labels, s.dir, std::move(files)};
}

void decode_into_memory(ImageSet& set) {
  std::vector<int64_t> all(set.labels.size());
  std::iota(all.begin(), all.end(), 0);
  set.pixels.resize(all.size() * size_t(set.image_bytes()));
  set.files->decode(all.data(), int64_t(all.size()), set.pixels.data());
  set.files.reset();
}

// The value of `key` in /proc/meminfo ("Key:   123 kB") in bytes; 0 when absent.
uint64_t meminfo_bytes(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  for (std::string name; in >> name;) {
    uint64_t kb = 0;
    in >> kb;
    if (name == key + ":") return kb * 1024;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace

void ImageFiles::decode(int64_t i, uint8_t* out) const {
  const std::string& path = paths[size_t(i)];
  Image img = decode_image(path, channels);
  if (image_size > 0) img = resize_centre_crop(img, image_size);
  QNAS_CHECK(img.height == height && img.width == width, "image '", path, "': ", img.height, "x", img.width,
             " pixels, but the data set's images are ", height, "x", width, " (did the file change since the data "
             "loaded?)");
  std::copy(img.pixels.begin(), img.pixels.end(), out);
}

void ImageFiles::decode(const int64_t* index, int64_t n, uint8_t* out) const {
  const int64_t bytes = image_bytes();
  tbb::task_arena arena(std::max(1, threads));
  arena.execute([&] {
    tbb::parallel_for(int64_t(0), n, [&](int64_t k) { decode(index[k], out + k * bytes); });
  });
}

bool stream_images(const std::string& storage, uint64_t bytes, uint64_t available) {
  QNAS_CHECK(storage == "auto" || storage == "memory" || storage == "stream", "data.storage: '", storage,
             "'; expected auto, memory or stream");
  if (storage != "auto") return storage == "stream";
  return available > 0 && bytes > available / 2;
}

uint64_t available_memory_bytes() { return meminfo_bytes("MemAvailable"); }

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  const std::string plain = dir + "/" + stem;
  if (file_exists(plain + ".gz")) return plain + ".gz";
  if (file_exists(plain)) return plain;
  QNAS_THROW("data.dir '", dir, "': missing '", stem, ".gz' (or '", stem,
             "'); expected the IDX files of MNIST or Fashion-MNIST there"
             " (Debian: apt install dataset-fashion-mnist)");
}

RawDataset read_idx_dataset(const std::string& dir) {
  RawDataset d{read_idx_pair(dir, "train"), read_idx_pair(dir, "t10k"), {}};
  QNAS_CHECK(d.train.height == d.test.height && d.train.width == d.test.width, "IDX files '", d.train.source,
             "' and '", d.test.source, "': image sizes differ; expected the same height and width");
  d.class_names = numbered_names(class_count(d.train, d.test));
  return d;
}

RawDataset read_cifar(const std::string& dir, const std::string& labels) {
  QNAS_CHECK(labels == "fine" || labels == "coarse", "data.cifar_labels: '", labels, "'; expected fine or coarse");
  const CifarLayout l = cifar_layout(dir, labels);
  RawDataset d{read_cifar_files(l.train_files, l, labels), read_cifar_files({l.test_file}, l, labels), {}};
  d.class_names = read_lines(l.names_file);
  if (int64_t(d.class_names.size()) != l.classes) d.class_names = numbered_names(l.classes);
  return d;
}

RawDataset read_image_folder(const std::string& dir, int64_t image_size, const std::string& storage, int threads) {
  const std::string train_dir = dir + "/train";
  QNAS_CHECK(fs::is_directory(train_dir), "data.dir '", dir,
             "': no train/ folder; expected train/<class>/<image> and test/<class>/<image> (or val/)");
  std::string test_dir = dir + "/test";
  if (!fs::is_directory(test_dir)) test_dir = dir + "/val";
  QNAS_CHECK(fs::is_directory(test_dir), "data.dir '", dir, "': no test/ (or val/) folder; expected test/<class>/<image>");
  RawDataset d;
  d.class_names = sorted_subdirs(train_dir);
  const FolderSplit train = list_split(train_dir, d.class_names, true);
  const FolderSplit test = list_split(test_dir, d.class_names, false);
  const FolderShape shape = folder_shape({&train, &test}, image_size);
  d.train = split_set(train, shape, image_size, threads);
  d.test = split_set(test, shape, image_size, threads);
  const uint64_t bytes = uint64_t(d.train.size() + d.test.size()) * uint64_t(d.train.image_bytes());
  d.streamed = stream_images(storage, bytes, available_memory_bytes());
  if (!d.streamed)
    for (ImageSet* set : {&d.train, &d.test}) decode_into_memory(*set);
  return d;
}

}  // namespace qnas::core
