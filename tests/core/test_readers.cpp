// Dataset formats on small files the tests write: CIFAR-10/100 records, PNG
// and JPEG class folders (grey and RGB), per-channel normalisation, and each
// bad input's message.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "src/core/fs.hpp"
#include "src/core/image_codec.hpp"
#include "src/core/loader.hpp"
#include "src/core/readers.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using qnas::testing::expect_error;
using qnas::testing::TempDir;

namespace {

// The value of pixel (c, y, x) of record `r`: distinct across records and channels.
uint8_t cifar_pixel(int r, int c, int y, int x) { return uint8_t((r * 31 + c * 97 + y * 7 + x * 3) % 256); }

// CIFAR records: label byte(s), then 1024 red, 1024 green, 1024 blue bytes.
void write_cifar(const std::string& path, int first, const std::vector<std::vector<uint8_t>>& labels) {
  std::ofstream out(path, std::ios::binary);
  for (size_t i = 0; i < labels.size(); ++i) {
    for (uint8_t l : labels[i]) out.put(char(l));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) out.put(char(cifar_pixel(first + int(i), c, y, x)));
  }
}

core::DataConfig data_config(const std::string& format, const std::string& dir) {
  core::DataConfig cfg;
  cfg.format = format;
  cfg.dir = dir;
  cfg.val_size = 0;
  return cfg;
}

void expect_cifar_pixels(const core::Split& s, int first) {
  for (int i = 0; i < s.size(); ++i)
    for (int c = 0; c < 3; ++c)
      for (int y : {0, 13, 31})
        for (int x : {0, 5, 31})
          ASSERT_EQ(s.pixels[i][c][y][x].item<int64_t>(), cifar_pixel(first + i, c, y, x)) << i << " " << c;
}

// A w x h image whose pixel (c, y, x) is `base` + 10 y + 3 x + 50 c.
core::Image pattern(int64_t channels, int64_t h, int64_t w, int base) {
  core::Image img{channels, h, w, std::vector<uint8_t>(size_t(channels * h * w))};
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) img.pixels[size_t((c * h + y) * w + x)] = uint8_t(base + 10 * y + 3 * x + 50 * c);
  return img;
}

// train/{cat,ant}/ and test/{ant,cat}/: cat holds RGB PNGs, ant grey PNGs and a JPEG.
void write_folder(const std::string& root) {
  for (const char* split : {"train/ant", "train/cat", "test/ant", "test/cat"}) fs::create_directories(root + "/" + split);
  core::write_png(root + "/train/cat/1.png", pattern(3, 6, 8, 1));
  core::write_png(root + "/train/cat/0.png", pattern(3, 6, 8, 2));
  core::write_png(root + "/train/ant/a.png", pattern(1, 6, 8, 3));
  core::write_jpeg(root + "/train/ant/b.JPG", core::Image{1, 6, 8, std::vector<uint8_t>(48, 120)}, 100);
  std::ofstream(root + "/train/ant/notes.txt") << "not an image: skipped";
  core::write_png(root + "/test/ant/x.png", pattern(1, 6, 8, 4));
  core::write_png(root + "/test/cat/y.png", pattern(3, 6, 8, 5));
}

}  // namespace

TEST(Cifar, Cifar10BatchesGiveExactPixelsLabelsAndNames) {
  TempDir dir;
  write_cifar(dir.file("data_batch_1.bin"), 0, {{3}, {0}, {9}});
  write_cifar(dir.file("data_batch_2.bin"), 3, {{1}, {2}});
  write_cifar(dir.file("test_batch.bin"), 100, {{7}, {8}});
  std::ofstream(dir.file("batches.meta.txt")) << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  const auto d = core::load_dataset(data_config("cifar", dir.str()), 0);
  EXPECT_EQ(d.train.pixels.sizes(), (at::IntArrayRef{5, 3, 32, 32}));
  EXPECT_EQ(d.train.pixels.scalar_type(), at::kByte);
  EXPECT_EQ(d.test.size(), 2);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.class_names[3], "cat");
  EXPECT_TRUE(d.train.labels.equal(at::tensor(std::vector<int64_t>{3, 0, 9, 1, 2})));
  EXPECT_TRUE(d.test.labels.equal(at::tensor(std::vector<int64_t>{7, 8})));
  expect_cifar_pixels(d.train, 0);
  expect_cifar_pixels(d.test, 100);
}

TEST(Cifar, Cifar100ReadsFineOrCoarseLabels) {
  TempDir dir;
  write_cifar(dir.file("train.bin"), 0, {{4, 40}, {19, 99}, {0, 7}});
  write_cifar(dir.file("test.bin"), 9, {{2, 3}});
  auto cfg = data_config("cifar", dir.str());
  const auto fine = core::load_dataset(cfg, 0);
  EXPECT_TRUE(fine.train.labels.equal(at::tensor(std::vector<int64_t>{40, 99, 7})));
  EXPECT_EQ(fine.classes, 100);
  expect_cifar_pixels(fine.train, 0);
  cfg.cifar_labels = "coarse";
  const auto coarse = core::load_dataset(cfg, 0);
  EXPECT_TRUE(coarse.train.labels.equal(at::tensor(std::vector<int64_t>{4, 19, 0})));
  EXPECT_TRUE(coarse.test.labels.equal(at::tensor(std::vector<int64_t>{2})));
  EXPECT_EQ(coarse.classes, 20);
  EXPECT_EQ(coarse.class_names[5], "5");  // no coarse_label_names.txt: numbered
}

TEST(Cifar, TruncatedOrMissingFilesAreNamed) {
  TempDir dir;
  write_cifar(dir.file("data_batch_1.bin"), 0, {{1}, {2}});
  write_cifar(dir.file("test_batch.bin"), 0, {{1}});
  fs::resize_file(dir.file("data_batch_1.bin"), 2 * 3073 - 5);
  expect_error([&] { core::load_dataset(data_config("cifar", dir.str()), 0); },
               {dir.file("data_batch_1.bin"), "6141 bytes", "3073-byte records", "truncated"});
  TempDir empty;
  expect_error([&] { core::load_dataset(data_config("cifar", empty.str()), 0); },
               {"data.dir", empty.str(), "data_batch_1.bin", "train.bin"});
  TempDir bad_label;
  write_cifar(bad_label.file("data_batch_1.bin"), 0, {{1}, {12}});
  write_cifar(bad_label.file("test_batch.bin"), 0, {{1}});
  expect_error([&] { core::load_dataset(data_config("cifar", bad_label.str()), 0); },
               {bad_label.file("data_batch_1.bin"), "record 1", "label 12", "0..9"});
  TempDir folder_as_batch;
  write_cifar(folder_as_batch.file("data_batch_1.bin"), 0, {{1}});
  fs::create_directory(folder_as_batch.file("test_batch.bin"));
  expect_error([&] { core::load_dataset(data_config("cifar", folder_as_batch.str()), 0); },
               {"CIFAR file", folder_as_batch.file("test_batch.bin"), "not a regular file"});
}

TEST(ImageFolder, ClassesPixelsAndColourFromPngAndJpeg) {
  TempDir dir;
  write_folder(dir.str());
  const auto d = core::load_dataset(data_config("folder", dir.str()), 0);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"ant", "cat"}));
  EXPECT_EQ(d.train.pixels.sizes(), (at::IntArrayRef{4, 3, 6, 8}));  // colour anywhere: every image RGB
  // Sorted class folders, sorted files: ant/a.png, ant/b.JPG, cat/0.png, cat/1.png.
  EXPECT_TRUE(d.train.labels.equal(at::tensor(std::vector<int64_t>{0, 0, 1, 1})));
  EXPECT_TRUE(d.test.labels.equal(at::tensor(std::vector<int64_t>{0, 1})));
  const auto expect_image = [](const at::Tensor& got, const core::Image& want) {
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 6; ++y)
        for (int64_t x = 0; x < 8; ++x)
          ASSERT_EQ(got[c][y][x].item<int64_t>(),
                    want.pixels[size_t(((want.channels == 3 ? c : 0) * 6 + y) * 8 + x)]) << c << y << x;
  };
  expect_image(d.train.pixels[0], pattern(1, 6, 8, 3));  // grey PNG, repeated in R, G and B
  expect_image(d.train.pixels[2], pattern(3, 6, 8, 2));
  expect_image(d.train.pixels[3], pattern(3, 6, 8, 1));
  expect_image(d.test.pixels[1], pattern(3, 6, 8, 5));
  // JPEG at quality 100 of a flat grey image: within one step of its value.
  EXPECT_LE((d.train.pixels[1].to(at::kInt) - 120).abs().max().item<int64_t>(), 1);
}

TEST(ImageFolder, GreyFolderStaysOneChannelAndImageSizeResizes) {
  TempDir dir;
  for (const char* split : {"train/a", "train/b", "val/a"}) fs::create_directories(dir.file(split));
  core::write_png(dir.file("train/a/0.png"), pattern(1, 10, 20, 0));
  core::write_png(dir.file("train/b/0.png"), pattern(1, 16, 12, 0));
  core::write_png(dir.file("val/a/0.png"), pattern(1, 4, 4, 9));
  auto cfg = data_config("folder", dir.str());
  expect_error([&] { core::load_dataset(cfg, 0); }, {"16x12", "10x20", "data.image_size"});
  cfg.image_size = 8;
  const auto d = core::load_dataset(cfg, 0);
  EXPECT_EQ(d.train.pixels.sizes(), (at::IntArrayRef{2, 1, 8, 8}));
  EXPECT_EQ(d.test.size(), 1);  // val/ serves as the test split when there is no test/
  // The 4x4 test image doubled: a smooth ramp keeps its range.
  const auto up = d.test.pixels[0][0].to(at::kInt);
  EXPECT_GE(up.min().item<int64_t>(), 9);
  EXPECT_LE(up.max().item<int64_t>(), 9 + 30 + 9);
  // The 10x20 image: its centred 10x10 square (columns 5-14) scaled to 8x8.
  const auto a = d.train.pixels[0][0].to(at::kInt);
  EXPECT_NEAR(double(a[0][0].item<int64_t>()), 10 * 0.1 + 3 * 5.6, 3.0);
  EXPECT_LT(a[0][0].item<int64_t>(), a[7][7].item<int64_t>());
}

TEST(ImageFolder, BadTreesAreRefusedNamingThePath) {
  TempDir dir;
  write_folder(dir.str());
  {
    std::ofstream(dir.file("train/cat/2.png"), std::ios::binary) << "\x89PNG\r\n\x1a\n garbage";
    expect_error([&] { core::load_dataset(data_config("folder", dir.str()), 0); }, {dir.file("train/cat/2.png"), "PNG"});
    fs::remove(dir.file("train/cat/2.png"));
  }
  {
    std::ofstream(dir.file("test/cat/bad.jpg"), std::ios::binary) << "\xff\xd8\xff not a jpeg";
    expect_error([&] { core::load_dataset(data_config("folder", dir.str()), 0); }, {dir.file("test/cat/bad.jpg"), "JPEG"});
    fs::remove(dir.file("test/cat/bad.jpg"));
  }
  fs::create_directories(dir.file("train/empty"));
  expect_error([&] { core::load_dataset(data_config("folder", dir.str()), 0); },
               {dir.file("train/empty"), "no images", ".png"});
  fs::remove(dir.file("train/empty"));
  fs::create_directories(dir.file("test/zebra"));
  expect_error([&] { core::load_dataset(data_config("folder", dir.str()), 0); }, {"zebra", "training split does not have"});
  TempDir no_train;
  expect_error([&] { core::load_dataset(data_config("folder", no_train.str()), 0); }, {no_train.str(), "train/"});
}

TEST(Normalisation, PerChannelListsAutoAndWrongLengths) {
  TempDir dir;
  write_cifar(dir.file("data_batch_1.bin"), 0, {{1}, {2}, {3}});
  write_cifar(dir.file("test_batch.bin"), 0, {{1}});
  auto cfg = data_config("cifar", dir.str());
  cfg.mean = {false, {0.1, 0.2, 0.3}};
  cfg.std = {false, {0.5}};
  auto d = core::load_dataset(cfg, 0);
  const auto x = d.train.images(0, 1);
  EXPECT_NEAR(x[0][2][4][5].item<double>(), (cifar_pixel(0, 2, 4, 5) / 255.0 - 0.3) / 0.5, 1e-6);
  EXPECT_NEAR(x[0][0][4][5].item<double>(), (cifar_pixel(0, 0, 4, 5) / 255.0 - 0.1) / 0.5, 1e-6);

  cfg.mean = {true, {}};
  cfg.std = {true, {}};
  d = core::load_dataset(cfg, 0);
  const auto scaled = d.train.pixels.to(at::kDouble) / 255.0;
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(d.norm.mean[size_t(c)], scaled.select(1, c).mean().item<double>(), 1e-12);
    EXPECT_NEAR(d.norm.std[size_t(c)], scaled.select(1, c).std(/*unbiased=*/false).item<double>(), 1e-9);
  }
  const auto normalised = d.train.images().to(at::kDouble);
  EXPECT_NEAR(normalised.select(1, 1).mean().item<double>(), 0.0, 1e-5);
  const auto resolved = core::resolved_data_config(cfg, d);
  EXPECT_FALSE(resolved.mean.automatic);
  EXPECT_EQ(resolved.mean.values, d.norm.mean);

  cfg.mean = {false, {0.1, 0.2}};
  expect_error([&] { core::load_dataset(cfg, 0); }, {"data.mean", "2 values", "3 channels", "expected 1 or 3"});
}

TEST(Normalisation, ConfigTakesANumberAListOrAuto) {
  const auto parse = [](const std::string& text) { return core::parse_config("data:\n" + text, "t.yaml", {}); };
  EXPECT_EQ(parse("  mean: 0.5\n").data.mean.values, std::vector<double>{0.5});
  EXPECT_EQ(parse("  mean: [0.4, 0.5, 0.4]\n").data.mean.values, (std::vector<double>{0.4, 0.5, 0.4}));
  EXPECT_TRUE(parse("  mean: auto\n  std: auto\n").data.std.automatic);
  expect_error([&] { parse("  mean: middle\n"); }, {"data.mean", "a list of numbers", "or auto", "middle"});
  expect_error([&] { parse("  std: [0.2, 0]\n"); }, {"data.std", ">= 1e-06"});
  expect_error([&] { parse("  format: jpeg\n"); }, {"data.format", "idx, cifar, folder"});
  // The resolved file writes what it read back.
  const auto c = parse("  mean: [0.4, 0.5, 0.4]\n  std: auto\n");
  const auto again = core::parse_config(core::to_yaml(c), "resolved", {});
  EXPECT_EQ(again.data.mean, c.data.mean);
  EXPECT_TRUE(again.data.std.automatic);
}

// ---- data.storage: stream

namespace {

core::DataConfig streamed_config(const std::string& dir, const std::string& storage) {
  auto cfg = data_config("folder", dir);
  cfg.storage = storage;
  cfg.val_size = 1;
  cfg.val_from = "random";
  cfg.mean = {true, {}};
  cfg.std = {true, {}};
  return cfg;
}

}  // namespace

TEST(ImageFolder, StreamedSplitsGiveTheSameBatchesAsMemory) {
  TempDir dir;
  write_folder(dir.str());
  const auto held = core::load_dataset(streamed_config(dir.str(), "memory"), 3);
  const auto streamed = core::load_dataset(streamed_config(dir.str(), "stream"), 3);
  EXPECT_FALSE(held.streamed);
  ASSERT_TRUE(streamed.streamed);
  EXPECT_FALSE(streamed.train.pixels.defined());  // nothing decoded is held
  EXPECT_EQ(streamed.train.image_shape(), (std::array<int64_t, 3>{3, 6, 8}));
  EXPECT_EQ(streamed.norm.mean, held.norm.mean);  // auto statistics from one decoding pass
  EXPECT_EQ(streamed.norm.std, held.norm.std);
  for (const auto& [a, b] : {std::pair{&held.train, &streamed.train}, {&held.val, &streamed.val}, {&held.test, &streamed.test}}) {
    EXPECT_TRUE(a->labels.equal(b->labels));
    EXPECT_TRUE(a->images().equal(b->images()));
  }
  const auto index = at::tensor(std::vector<int64_t>{2, 0, 2}, at::kLong);
  EXPECT_TRUE(held.train.images_at(index).equal(streamed.train.images_at(index)));
  EXPECT_TRUE(held.train.first(2).images().equal(streamed.train.first(2).images()));
  const core::Augment augment{2, true, true};
  const auto a = core::make_batch(held.train, {2, 1, 0}, augment, 5);
  const auto b = core::make_batch(streamed.train, {2, 1, 0}, augment, 5);
  EXPECT_TRUE(a.first.equal(b.first));
  EXPECT_TRUE(a.second.equal(b.second));
  core::BatchLoader loader(streamed.train, {2, 1, 0}, 3, augment, 5, /*workers=*/2);  // decoded on loader threads
  EXPECT_TRUE(loader.next().first.equal(a.first));
}

TEST(ImageFolder, StorageAutoStreamsWhatWouldNotFitInMemory) {
  EXPECT_FALSE(core::stream_images("auto", 10, 30));
  EXPECT_TRUE(core::stream_images("auto", 20, 30));  // more than half of what is available
  EXPECT_FALSE(core::stream_images("auto", 20, 0));  // unknown: held, as before
  EXPECT_FALSE(core::stream_images("memory", uint64_t(1) << 50, 1));
  EXPECT_TRUE(core::stream_images("stream", 1, uint64_t(1) << 50));
  EXPECT_GT(core::available_memory_bytes(), uint64_t(1) << 20);
  expect_error([&] { core::stream_images("disk", 1, 1); }, {"data.storage", "disk", "auto, memory or stream"});
  TempDir dir;
  write_cifar(dir.file("data_batch_1.bin"), 0, {{1}, {2}});
  write_cifar(dir.file("test_batch.bin"), 0, {{1}});
  auto cfg = data_config("cifar", dir.str());
  cfg.storage = "stream";
  expect_error([&] { core::load_dataset(cfg, 0); }, {"data.storage", "folder", "expected auto or memory", "cifar"});
}

TEST(ImageFolder, StreamedImageBrokenAfterLoadingIsNamed) {
  TempDir dir;
  write_folder(dir.str());
  auto cfg = streamed_config(dir.str(), "stream");
  cfg.val_size = 0;
  const auto d = core::load_dataset(cfg, 0);
  const std::string cat = dir.file("train/cat/0.png");  // training image 2
  core::write_png(cat, pattern(3, 7, 8, 2));
  expect_error([&] { d.train.images(); }, {cat, "7x8", "6x8", "change"});
  std::ofstream(cat, std::ios::binary) << "\x89PNG\r\n\x1a\n garbage";
  expect_error([&] { core::make_batch(d.train, {1, 2}, {}, 0); }, {cat, "PNG"});
  EXPECT_NO_THROW(core::make_batch(d.train, {0, 1, 3}, {}, 0));
}

namespace {

void put_be(std::string& s, size_t at, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = char((v >> (8 * (bytes - 1 - i))) & 0xFF);
}

}  // namespace

// A few bytes can claim gigapixels: the size is refused before any pixel
// buffer is allocated, in the header reader and in the decoder (a PNG also
// by what its file size can hold).
TEST(ImageCodec, HeadersClaimingGigapixelsAreRefusedBeforeDecoding) {
  TempDir dir;
  const std::string png = dir.file("big.png"), jpg = dir.file("big.jpg");
  core::write_png(png, pattern(1, 6, 8, 1));
  std::string bytes = core::read_text_file(png, "test image");
  const auto claim_png_size = [&](uint32_t side) {  // IHDR: width at 16, height at 20, CRC over 12..28 at 29
    put_be(bytes, 16, side, 4);
    put_be(bytes, 20, side, 4);
    put_be(bytes, 29, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17)), 4);
    std::ofstream(png, std::ios::binary) << bytes;
  };
  claim_png_size(100000);
  expect_error([&] { core::read_image_header(png); }, {png, "100000 x 100000", "expected at most"});
  expect_error([&] { core::decode_image(png, 3); }, {png, "100000 x 100000", "expected at most"});
  claim_png_size(3000);  // below the cap, beyond what deflate can expand these bytes to
  expect_error([&] { core::decode_image(png, 1); }, {png, "3000 x 3000", "more than a PNG of"});

  core::write_jpeg(jpg, pattern(3, 6, 8, 1), 90);
  bytes = core::read_text_file(jpg, "test image");  // baseline SOF0: FF C0, length, precision, height, width
  const size_t sof = bytes.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  put_be(bytes, sof + 5, 60000, 2);
  put_be(bytes, sof + 7, 50000, 2);
  std::ofstream(jpg, std::ios::binary) << bytes;
  expect_error([&] { core::read_image_header(jpg); }, {jpg, "50000 x 60000", "expected at most"});
  expect_error([&] { core::decode_image(jpg, 1); }, {jpg, "50000 x 60000", "expected at most"});
  // A JPEG whose data ends early is refused (libjpeg would pad it with grey).
  core::write_jpeg(jpg, pattern(3, 64, 64, 1), 90);
  bytes = core::read_text_file(jpg, "test image");
  std::ofstream(jpg, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() * 2 / 3);
  expect_error([&] { core::decode_image(jpg, 3); }, {jpg, "Premature end of JPEG file"});
  // So is one whose scan data ends at a marker (found by fuzz_image: 184
  // bytes whose header claims 12,582 x 8,961 pixels, then EOI).
  std::ofstream(jpg, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() * 2 / 3) << "\xFF\xD9";
  expect_error([&] { core::decode_image(jpg, 3); }, {jpg, "premature end of data segment"});
}
