#pragma once
// The run configuration: typed structs filled from one YAML file plus
// `--set key.path=value` overrides, validated against one schema (config.cpp)
// that also writes the resolved file and the README's config reference.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qnas::core {

/// A value per image channel: one number for every channel, one number per
/// channel, or `auto` (computed from the training images).
struct ChannelValues {
  bool automatic = false;
  std::vector<double> values;

  bool operator==(const ChannelValues& o) const { return automatic == o.automatic && values == o.values; }
};

struct DataConfig {
  std::string format = "idx";    // idx | cifar | folder (core/readers.hpp)
  std::string dir = "/usr/share/datasets/fashion-mnist";
  std::string cifar_labels = "fine";  // CIFAR-100: fine | coarse
  int64_t image_size = 0;        // folder: shorter side scaled to it, centre square kept (0 = as stored)
  std::string storage = "auto";  // folder: auto | memory | stream (decoded per batch from disk)
  int64_t train_subset = 0;      // 0 = all training images
  int64_t val_size = 10000;      // carved from the training split
  std::string val_from = "last"; // last | random (seeded)
  ChannelValues mean{false, {0.2860}};  // input normalisation: (x/255 - mean[c]) / std[c]
  ChannelValues std{false, {0.3530}};
  int workers = 1;               // threads building training batches ahead of the step
};

// Each supernet family's keys: a section of SupernetConfig, read when
// supernet.kind names the family (config.cpp's family list).

struct MBV3StageConfig {
  int width = 24;
  int stride = 2;
  bool se = false;
  std::string act = "relu";  // relu | hswish
};

struct MBV3Config {
  int stem_width = 16;
  int stem_stride = 1;
  std::vector<MBV3StageConfig> stages = {{24, 2, false, "relu"},
                                         {40, 2, true, "relu"},
                                         {64, 2, true, "hswish"}};
  std::vector<int> kernel = {3, 5, 7};
  std::vector<int> expand = {3, 4, 6};
  std::vector<int> depth = {2, 3, 4};
  int head_width = 384;
  int feature_width = 256;
  double dropout = 0.0;
  bool kernel_transform = true;
};

struct ResNetStageConfig {
  int width = 64;  // output channels at width_pct 100
  int stride = 2;
};

struct ResNetConfig {
  int stem_width = 16;
  int stem_stride = 1;
  std::vector<ResNetStageConfig> stages = {{64, 2}, {128, 2}, {256, 2}};
  std::vector<int> depth = {1, 2, 3};
  std::vector<int> expand_pct = {20, 25, 35};  // bottleneck channels, % of the block's width (OFA's 0.2, 0.25, 0.35)
  std::vector<int> width_pct = {65, 80, 100};  // stage widths, % of `width` (OFA's 0.65, 0.8, 1.0)
  std::string width_scope = "stage";           // one width gene per stage | global
  double dropout = 0.0;
};

struct ViTConfig {
  int patch = 4;
  std::vector<int> embed_dim = {64, 96};
  std::vector<int> depth = {2, 3, 4};
  std::vector<int> heads = {2, 3};
  std::vector<int> mlp_ratio = {2, 3, 4};
  std::string pool = "cls";  // cls: the class token's output | mean: the mean over tokens
  double dropout = 0;        // before the classifier, while training
};

struct SupernetConfig {
  std::string kind = "mbv3";
  MBV3Config mbv3;      // the keys of kind mbv3
  ResNetConfig resnet;  // the keys of kind resnet
  ViTConfig vit;        // the keys of kind vit
};

/// The families the config knows, in the order of supernet/families.cpp.
const std::vector<std::string>& supernet_kinds();

/// quant.couple_act_bits: the activation bits of a layer whose weights have
/// `weight_bits` (quantized weights run on 8-bit kernels, fp32 weights in fp32).
inline int coupled_act_bits(int weight_bits) { return weight_bits >= 32 ? 32 : 8; }

struct QuantConfig {
  std::vector<int> weight_bits = {4, 8, 32};
  std::vector<int> act_bits = {8, 32};
  std::vector<std::string> methods = {"rtn"};  // searched per layer when more than one ("gptq act_order=1", ...)
  std::vector<std::string> keep_8bit;  // layers whose weights every searched subnet keeps at W8 by RTN
  std::string granularity = "layer";   // policy genes per layer | block | stage
  bool couple_act_bits = false;        // no activation-bit genes: a layer's inputs run at its weights' precision class
  int calib_images = 512;
  std::string act_observer = "minmax";  // minmax | percentile | mse
  double act_percentile = 99.99;
  int hessian_images = 512;            // of the calibration images: layer input statistics for gptq / decoupleq
  int hessian_samples_per_column = 64;  // conv layers: samples of each H per column (positions per image follow)
};

struct AugmentConfig {
  int crop_padding = 2;
  bool hflip = true;
  bool random_resized = false;
};

struct TrainConfig {
  int epochs = 1;
  int batch_size = 128;
  double lr = 0.1;
  std::string optimizer = "sgd";  // sgd | adamw
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-5;
  double warmup_epochs = 0.2;
  double label_smoothing = 0.1;
  int random_subnets = 2;
  double kd_ratio = 1.0;
  double grad_clip = 0.0;
  bool sync_bn = false;  // several ranks: BN statistics over the whole batch (SyncBatchNorm)
  bool quant_aware = false;  // the sandwich's non-teacher subnets train with sampled policies, fake-quantized
  std::string init_from;     // a checkpoint of the same supernet whose weights start a fresh run ("" = random)
  AugmentConfig augment;
  int eval_every = 1;
  int eval_images = 10000;
};

struct EvalConfig {
  int batch_size = 64;  // measured fastest on 2 cores (experiments/bench/eval_time.cpp)
  int bn_calib_images = 2000;
  bool bn_recal_quantized = false;  // BN statistics of the subnet with its weights quantized (RTN grid)
};

struct LatencyConfig {
  int batch_size = 1;        // the latency_ms batch
  int throughput_batch = 64; // a second, larger batch for throughput_img_s (0 = off)
  int threads = 1;
  int warmup = 10;           // untimed runs first (oneDNN builds its primitives)
  int runs = 30;             // timed runs
  int rounds = 10;           // the runs split into rounds, interleaved with the reference's
  std::string reference = "int8_largest";  // latency_ms as a ratio to this model's (none = timed alone)
};

/// An ordered map from YAML (`{top1: max, latency_ms: min}`): order matters.
using NamedValues = std::vector<std::pair<std::string, std::string>>;

/// Metric names a search may optimise or constrain (DESIGN.md's CSV columns).
const std::vector<std::string>& search_metric_names();

struct SearchConfig {
  std::string tactic = "linas";  // random | ga | nsga2 | linas
  NamedValues objectives = {{"top1", "max"}, {"latency_ms", "min"}, {"model_bytes", "min"}};
  NamedValues constraints;       // metric -> "<= 3.0" | ">= 85"
  int population = 50;
  int evaluations = 250;
  uint64_t seed = 0;
  int inner_evaluations = 20000;
  int linas_batch = 0;             // linas: validated per iteration after the first (0 = population)
  int linas_initial = 0;           // linas: validated at iteration 0 (0 = population)
  std::string predictor = "auto";  // ridge | svr | auto
  int folds = 5;
  std::vector<std::string> proxy_features;  // exact proxies appended to the one-hot features
  bool exact_proxies = true;                // linas: params/macs/bops/model_bytes computed, not predicted
  double seed_from_sensitivity = 0;         // fraction of the initial population allocated by sensitivity
  bool baselines = true;                    // initial population: uniform int8/w4a8/fp32 of largest and smallest
  double baseline_fraction = 0.1;           // ... and of random architectures, this fraction of the population
  double crossover_prob = 0.9;
  double crossover_eta = 15;
  double mutation_prob = 0.02;
  double mutation_eta = 20;
  std::vector<double> reference_point;  // empty: worst of the initial population + 10% of its range
  int64_t val_images = 0;               // validation images per candidate (0 = all of data.val_size)
  bool train_if_missing = false;        // `qnas search` trains the supernet first when no checkpoint exists
};

struct OutputConfig {
  std::string dir = "runs/default";
};

// Several processes, started by a launcher (torchrun, mpirun): core/world.hpp.
struct DistConfig {
  std::string master_addr;    // "" = the launcher's MASTER_ADDR, else 127.0.0.1
  int master_port = 29500;    // when the launcher sets no MASTER_PORT
  double connect_timeout_s = 120;  // joining: every rank must reach the store by then
  double timeout_s = 1800;    // one collective (a rank waits this long for the others)
  bool oversubscribe = false; // allow ranks x threads above the host's cores
  // Task queue (distributed search, recipe, sensitivity; core/task_queue.hpp).
  double worker_timeout_s = 30;  // no heartbeat for this long: the worker is dead, its task goes to another
  double task_timeout_s = 0;     // a task running longer is posted again (hung worker); 0 = 20x the median task, >= 60 s
  bool pin_workers = true;       // each worker on its own cores, so latency timings do not disturb each other
};

struct Config {
  uint64_t seed = 0;
  int threads = 0;  // 0 = all cores
  std::string device = "cpu";
  DataConfig data;
  SupernetConfig supernet;
  QuantConfig quant;
  TrainConfig train;
  EvalConfig eval;
  LatencyConfig latency;
  SearchConfig search;
  OutputConfig output;
  DistConfig dist;
};

/// Loads `path`, applies `overrides` ("key.path=value", value parsed as YAML)
/// and validates. Throws qnas::Error listing every problem with its key path.
Config load_config(const std::string& path,
                   const std::vector<std::string>& overrides = {});

/// Parses YAML text (as load_config does with a file's content); `origin`
/// names the source in messages.
Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides = {});

/// The resolved configuration, every key with its value, as YAML.
std::string to_yaml(const Config& config);

/// Writes to_yaml(config) atomically to `<dir>/config.resolved.yaml`.
void write_resolved_config(const Config& config, const std::string& dir);

/// Markdown table of every key: path, type and rule, default, description.
std::string config_reference_markdown();

/// Levenshtein distance, used for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace qnas::core
