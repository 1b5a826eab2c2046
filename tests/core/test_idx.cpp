// IDX reader: the real Fashion-MNIST files, and corrupted copies of them
// for every error path (each message must name the file and what was expected).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <zlib.h>

#include "src/core/dataset.hpp"
#include "src/core/error.hpp"
#include "src/core/idx.hpp"
#include "src/core/loader.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using qnas::testing::expect_error;
using qnas::testing::TempDir;

namespace {

std::string fmnist(const std::string& name) { return std::string(QNAS_FMNIST_DIR) + "/" + name; }

std::vector<uint8_t> gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

// The first `train_subset` Fashion-MNIST training images, `val_size` of them carved for validation.
core::DataConfig fmnist_config(int64_t train_subset, int64_t val_size) {
  core::DataConfig cfg;
  cfg.dir = QNAS_FMNIST_DIR;
  cfg.train_subset = train_subset;
  cfg.val_size = val_size;
  return cfg;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace

TEST(Idx, ReadsRealTrainingImages) {
  const auto a = core::read_idx(fmnist("train-images-idx3-ubyte.gz"), 3);
  ASSERT_EQ(a.dims, (std::vector<int64_t>{60000, 28, 28}));
  EXPECT_EQ(a.data.size(), 60000u * 784u);
  EXPECT_EQ(a.data[14 * 28 + 14], 217);        // image 0, row 14, column 14
  EXPECT_EQ(a.data[784 + 10 * 28 + 10], 252);  // image 1, row 10, column 10
}

TEST(Idx, ReadsRealLabels) {
  const auto l = core::read_idx(fmnist("train-labels-idx1-ubyte.gz"), 1);
  ASSERT_EQ(l.dims, (std::vector<int64_t>{60000}));
  EXPECT_EQ(l.data[0], 9);
  std::vector<int> counts(10);
  for (uint8_t v : l.data) {
    ASSERT_LT(v, 10);
    counts[v]++;
  }
  for (int c : counts) EXPECT_EQ(c, 6000);
}

TEST(Idx, ReadsPlainUncompressedFiles) {
  TempDir dir;
  write_bytes(dir.file("labels"), gunzip(fmnist("t10k-labels-idx1-ubyte.gz")));
  const auto l = core::read_idx(dir.file("labels"), 1);
  EXPECT_EQ(l.count(), 10000);
  EXPECT_EQ(l.data[0], 9);
}

TEST(Idx, MissingFileNamesIt) {
  expect_error([] { core::read_idx("/nonexistent/train-images-idx3-ubyte.gz", 3); },
               {"/nonexistent/train-images-idx3-ubyte.gz", "cannot open"});
}

TEST(Idx, WrongMagicNamesFileAndExpectedMagic) {
  TempDir dir;
  auto bytes = gunzip(fmnist("t10k-labels-idx1-ubyte.gz"));
  // A labels file read as images: magic 0x00000801, expected 0x00000803.
  write_bytes(dir.file("x"), bytes);
  expect_error([&] { core::read_idx(dir.file("x"), 3); }, {dir.file("x"), "0x00000801", "expected 0x00000803"});
  bytes[2] = 0x0D;  // float data type
  write_bytes(dir.file("y"), bytes);
  expect_error([&] { core::read_idx(dir.file("y"), 1); }, {dir.file("y"), "0x00000D01", "expected 0x00000801"});
}

TEST(Idx, TruncatedHeaderAndDataAreReported) {
  TempDir dir;
  const auto bytes = gunzip(fmnist("t10k-labels-idx1-ubyte.gz"));
  write_bytes(dir.file("short_header"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 6));
  expect_error([&] { core::read_idx(dir.file("short_header"), 1); }, {dir.file("short_header"), "truncated header"});
  write_bytes(dir.file("short_data"), std::vector<uint8_t>(bytes.begin(), bytes.end() - 10));
  expect_error([&] { core::read_idx(dir.file("short_data"), 1); },
               {dir.file("short_data"), "truncated data", "10000 bytes", "9990"});
}

// A header claiming billions of images is checked against the file before
// anything that size is allocated: plain files by their size, gzip streams
// as they are read, and claims beyond 1 TiB (or an int64 overflow) at once.
TEST(Idx, HeadersClaimingMoreThanTheFileAreRefusedBeforeAllocating) {
  TempDir dir;
  // 4,000,000,000 x 4,000,000,000 x 4,000,000,000: overflows int64.
  std::vector<uint8_t> huge = {0, 0, 8, 3, 0xEE, 0x6B, 0x28, 0, 0xEE, 0x6B, 0x28, 0, 0xEE, 0x6B, 0x28, 0, 1, 2, 3};
  write_bytes(dir.file("huge"), huge);
  expect_error([&] { core::read_idx(dir.file("huge"), 3); }, {dir.file("huge"), "claims more than", "not an IDX file"});
  // 2,000,000,000 images of 28 x 28 (1.5 TB): refused by the claim alone.
  std::vector<uint8_t> billions = {0, 0, 8, 3, 0x77, 0x35, 0x94, 0, 0, 0, 0, 28, 0, 0, 0, 28, 7};
  write_bytes(dir.file("billions"), billions);
  expect_error([&] { core::read_idx(dir.file("billions"), 3); }, {dir.file("billions"), "claims more than"});
  // 50,000,000 images (39 GB) in a 17-byte plain file: refused by its size.
  std::vector<uint8_t> plain = {0, 0, 8, 3, 0x02, 0xFA, 0xF0, 0x80, 0, 0, 0, 28, 0, 0, 0, 28, 7};
  write_bytes(dir.file("plain"), plain);
  expect_error([&] { core::read_idx(dir.file("plain"), 3); },
               {dir.file("plain"), "truncated data", "39200000000 bytes", "file holds 1"});
  // The same in a gzip stream: read as it arrives, refused when it ends.
  gzFile gz = gzopen(dir.file("plain.gz").c_str(), "wb");
  gzwrite(gz, plain.data(), unsigned(plain.size()));
  gzclose(gz);
  expect_error([&] { core::read_idx(dir.file("plain.gz"), 3); },
               {dir.file("plain.gz"), "truncated data", "39200000000 bytes", "file holds 1"});
}

TEST(Idx, TrailingBytesAreReported) {
  TempDir dir;
  auto bytes = gunzip(fmnist("t10k-labels-idx1-ubyte.gz"));
  bytes.push_back(0);
  write_bytes(dir.file("long"), bytes);
  expect_error([&] { core::read_idx(dir.file("long"), 1); }, {dir.file("long"), "trailing bytes"});
}

TEST(Dataset, CountMismatchNamesBothFiles) {
  TempDir dir;
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"})
    fs::copy_file(fmnist(f), dir.file(f));
  // Test labels: header says 9999, body has 9999 labels.
  auto labels = gunzip(fmnist("t10k-labels-idx1-ubyte.gz"));
  labels.pop_back();
  labels[7] = uint8_t(9999 & 0xFF);
  labels[6] = uint8_t(9999 >> 8);
  write_bytes(dir.file("t10k-labels-idx1-ubyte"), labels);
  core::DataConfig cfg;
  cfg.dir = dir.str();
  expect_error([&] { core::load_dataset(cfg, 0); },
               {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte", "10000 images but 9999 labels"});
}

TEST(Dataset, MissingFileSaysWhatIsExpected) {
  TempDir dir;
  core::DataConfig cfg;
  cfg.dir = dir.str();
  expect_error([&] { core::load_dataset(cfg, 0); }, {dir.str(), "train-images-idx3-ubyte.gz", "dataset-fashion-mnist"});
}

TEST(Dataset, SplitsSubsetAndNormalisation) {
  const auto cfg = fmnist_config(3000, 500);
  const auto d = core::load_dataset(cfg, 0);
  EXPECT_EQ(d.train.size(), 2500);
  EXPECT_EQ(d.val.size(), 500);
  EXPECT_EQ(d.test.size(), 10000);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.train.pixels.sizes(), (at::IntArrayRef{2500, 1, 28, 28}));
  EXPECT_EQ(d.train.pixels.scalar_type(), at::kByte);  // normalised per batch, not stored as floats
  EXPECT_EQ(d.train.pixels[0][0][14][14].item<int64_t>(), 217);
  // Pixel 217 of image 0 normalised with the configured mean and std.
  EXPECT_NEAR(d.train.images(0, 1)[0][0][14][14].item<double>(), (217 / 255.0 - cfg.mean.values[0]) / cfg.std.values[0],
              1e-5);
  EXPECT_EQ(d.train.labels[0].item<int64_t>(), 9);
}

TEST(Dataset, RandomValidationSplitIsSeededAndDisjoint) {
  auto cfg = fmnist_config(2000, 400);
  cfg.val_from = "random";
  const auto a = core::load_dataset(cfg, 7), b = core::load_dataset(cfg, 7), c = core::load_dataset(cfg, 8);
  EXPECT_TRUE(a.val.pixels.equal(b.val.pixels));
  EXPECT_FALSE(a.val.pixels.equal(c.val.pixels));
  // Disjoint and complete: train + val hold exactly the first 2000 images.
  core::DataConfig whole = cfg;
  whole.val_size = 0;
  const auto all = core::load_dataset(whole, 7).train.images().reshape({2000, -1});
  const auto projection = at::arange(784, at::kFloat).sin();  // one number per image
  const auto signature = [&](const at::Tensor& images) {
    return std::get<0>(images.reshape({images.size(0), -1}).matmul(projection).sort());
  };
  EXPECT_TRUE(at::allclose(signature(at::cat({a.train.images(), a.val.images()})), signature(all)));
}

TEST(Dataset, ValidationLargerThanTrainingIsRefused) {
  const auto cfg = fmnist_config(100, 100);
  expect_error([&] { core::load_dataset(cfg, 0); }, {"data.val_size", "expected fewer than 100"});
}

TEST(Dataset, AugmentedBatchIsDeterministicAndShiftsContent) {
  const auto d = core::load_dataset(fmnist_config(200, 0), 0);
  std::vector<int64_t> idx{0, 1, 2, 3};
  const auto [a, la] = core::make_batch(d.train, idx, {2, true}, 5);
  const auto [b, lb] = core::make_batch(d.train, idx, {2, true}, 5);
  EXPECT_TRUE(a.equal(b));
  EXPECT_TRUE(la.equal(d.train.labels.narrow(0, 0, 4)));
  const auto [plain, lp] = core::make_batch(d.train, idx, {0, false}, 5);
  EXPECT_TRUE(plain.equal(d.train.images(0, 4)));
  EXPECT_FALSE(a.equal(plain));
  // An image's augmentation depends on (stream, its index) alone: not on the
  // batch it is in, so worker threads and resumes reproduce it.
  const std::vector<int64_t> reordered{3, 1, 0, 2};
  const auto [r, lr] = core::make_batch(d.train, reordered, {2, true}, 5);
  for (int64_t i = 0; i < 4; ++i) EXPECT_TRUE(r[i].equal(a[reordered[size_t(i)]])) << i;
  const auto [other, lo] = core::make_batch(d.train, idx, {2, true}, 6);
  EXPECT_FALSE(other.equal(a));
}

// The loader's worker threads change when a batch is built, never what it
// holds: the same (stream, order) gives the same batches with 0, 1 or 3
// workers, in step order, and an epoch resumed at a later step continues
// with exactly the batches of the uninterrupted one.
TEST(Dataset, BatchLoaderBatchesDoNotDependOnWorkers) {
  const auto d = core::load_dataset(fmnist_config(640, 0), 0);
  std::vector<int64_t> order(640);
  std::iota(order.begin(), order.end(), 0);
  std::reverse(order.begin(), order.end());
  const core::Augment augment{2, true, true};
  std::vector<at::Tensor> reference;
  core::BatchLoader serial(d.train, order, 64, augment, 11, 0);
  for (int s = 0; s < 10; ++s) reference.push_back(serial.next().first);
  for (int workers : {1, 3}) {
    core::BatchLoader loader(d.train, order, 64, augment, 11, workers, 2);
    for (int s = 0; s < 10; ++s) {
      const auto [x, y] = loader.next();
      EXPECT_TRUE(x.equal(reference[size_t(s)])) << workers << " workers, step " << s;
      EXPECT_EQ(y[0].item<int64_t>(), d.train.labels[order[size_t(s * 64)]].item<int64_t>());
    }
  }
  core::BatchLoader resumed(d.train, order, 64, augment, 11, 2, 4, /*first_step=*/6);
  for (int s = 6; s < 10; ++s) EXPECT_TRUE(resumed.next().first.equal(reference[size_t(s)])) << s;
  expect_error([&] { resumed.next(); }, {"step 10", "10 steps"});
}
