#include "src/core/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"

namespace qnas::core {

// ---------------------------------------------------------------------------
// Rules: what a field accepts, written so that the same text serves error
// messages and the config reference.

namespace {

struct Rule {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // allowed values, as text
  bool nonempty = false;             // for lists
  std::vector<std::string> keys;     // NamedValues: allowed keys (empty = any)
  // NamedValues: checks one value; returns "" when fine, else what was expected.
  std::string (*value_check)(const std::string&) = nullptr;

  bool has_range() const { return std::isfinite(lo) || std::isfinite(hi); }
};

Rule any() { return {}; }
Rule at_least(double lo) { Rule r; r.lo = lo; return r; }
Rule range(double lo, double hi) { Rule r; r.lo = lo; r.hi = hi; return r; }
Rule one_of(std::vector<std::string> choices) {
  Rule r;
  r.choices = std::move(choices);
  return r;
}
Rule one_of_ints(const std::vector<int>& values, bool nonempty = true) {
  Rule r;
  for (int v : values) r.choices.push_back(std::to_string(v));
  r.nonempty = nonempty;
  return r;
}
Rule nonempty(Rule r) { r.nonempty = true; return r; }

std::string fmt_num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string describe_rule(const Rule& r) {
  std::string s;
  if (!r.choices.empty()) s = "one of {" + join(r.choices, ", ") + "}";
  if (r.has_range()) {
    if (std::isfinite(r.lo) && std::isfinite(r.hi))
      s = "in [" + fmt_num(r.lo) + ", " + fmt_num(r.hi) + "]";
    else if (std::isfinite(r.lo))
      s = ">= " + fmt_num(r.lo);
    else
      s = "<= " + fmt_num(r.hi);
  }
  return s;
}

// Type names, as users read them.
template <class T> std::string type_name();
template <> std::string type_name<bool>() { return "a boolean (true/false)"; }
template <> std::string type_name<int>() { return "an integer"; }
template <> std::string type_name<int64_t>() { return "an integer"; }
template <> std::string type_name<uint64_t>() { return "a non-negative integer"; }
template <> std::string type_name<double>() { return "a number"; }
template <> std::string type_name<std::string>() { return "a string"; }

std::string channel_values_text(const Rule& r) {
  const std::string rule = describe_rule(r);
  return "a number, a list of numbers (one per image channel)" + (rule.empty() ? "" : ", each " + rule) + ", or auto";
}


template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {
  using value_type = T;
};
template <> struct is_vector<NamedValues> : std::false_type {};

std::string expected_text(const std::string& type, const Rule& r) {
  const std::string rule = describe_rule(r);
  if (rule.empty()) return type;
  return r.choices.empty() ? type + " " + rule : rule;
}

std::string expected_list_text(const std::string& type, const Rule& r) {
  // "an integer" -> "integers"
  const std::string plural = type.substr(type.find(' ') + 1) + "s";
  const std::string rule = describe_rule(r);
  return "a list of " + plural + (rule.empty() ? "" : ", each " + rule) + (r.nonempty ? ", not empty" : "");
}

std::string where(const YAML::Node& node) {
  const auto mark = node.Mark();
  if (mark.is_null() || mark.line < 0) return "";
  return " (line " + std::to_string(mark.line + 1) + ")";
}

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

// "supernet.stages.0.se" -> "supernet.stages.N.se": the form the documented paths take.
std::string generic_path(const std::string& path) {
  std::string out, segment;
  std::stringstream ss(path);
  while (std::getline(ss, segment, '.')) {
    const bool index = !segment.empty() && segment.find_first_not_of("0123456789") == std::string::npos;
    out = join_path(out, index ? "N" : segment);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Schema: one function per section, generic over the visitor.

template <class V> void visit(V& v, DataConfig& c) {
  v.field("format", c.format, "idx: the four (gzip or plain) IDX files of MNIST/Fashion-MNIST; cifar: CIFAR-10 (data_batch_N.bin, test_batch.bin) or CIFAR-100 (train.bin, test.bin) binary batches; folder: train/<class>/*.png|jpg and test/<class>/ (or val/)", one_of({"idx", "cifar", "folder"}));
  v.field("dir", c.dir, "directory holding the data in data.format's layout", any());
  v.field("cifar_labels", c.cifar_labels, "CIFAR-100's label: fine (100 classes) or coarse (20 superclasses)", one_of({"fine", "coarse"}));
  v.field("image_size", c.image_size, "folder: scale each image's shorter side to this and keep the centred square (0 = every image must already share one size)", range(0, 4096));
  v.field("storage", c.storage, "folder: memory decodes every image once at load; stream leaves them on disk and decodes each batch on the loader threads (for data sets larger than memory); auto streams when the decoded images would take more than half of the available memory", one_of({"auto", "memory", "stream"}));
  v.field("train_subset", c.train_subset, "use only the first N training images before the validation split is carved (0 = all)", at_least(0));
  v.field("val_size", c.val_size, "validation images carved from the training split", at_least(0));
  v.field("val_from", c.val_from, "which training images form the validation split: the last val_size, or a seeded random choice", one_of({"last", "random"}));
  v.field("mean", c.mean, "input normalisation x = (pixel/255 - mean[c]) / std[c], inside every export too; auto = per channel over the training images, recorded in config.resolved.yaml", any());
  v.field("std", c.std, "input normalisation divisor per channel (auto as for mean)", at_least(1e-6));
  v.field("workers", c.workers, "threads that gather, augment and normalise training batches ahead of the step (0 = on the training thread); batches do not depend on it", range(0, 64));
}

template <class V> void visit(V& v, MBV3StageConfig& c) {
  v.field("width", c.width, "output channels of every block in the stage", range(1, 4096));
  v.field("stride", c.stride, "stride of the stage's first block", range(1, 2));
  v.field("se", c.se, "squeeze-and-excitation in the stage's blocks", any());
  v.field("act", c.act, "activation of the stage's blocks", one_of({"relu", "hswish"}));
}

template <class V> void visit(V& v, MBV3Config& c) {
  v.field("stem_width", c.stem_width, "channels of the 3x3 stem convolution", range(1, 4096));
  v.field("stem_stride", c.stem_stride, "stride of the stem (1 for 28x28 or 32x32 inputs; 2 halves the resolution every later layer runs at, for larger images)", range(1, 2));
  v.section_list("stages", c.stages, "inverted-residual stages, in order");
  v.field("kernel", c.kernel, "elastic depthwise kernel sizes (searched per block)", one_of_ints({3, 5, 7}));
  v.field("expand", c.expand, "elastic expand ratios (searched per block)", nonempty(range(1, 8)));
  v.field("depth", c.depth, "elastic depths (searched per stage)", nonempty(range(1, 8)));
  v.field("head_width", c.head_width, "channels of the final 1x1 expansion", range(1, 8192));
  v.field("feature_width", c.feature_width, "width of the feature-mix layer before the classifier", range(1, 8192));
  v.field("dropout", c.dropout, "dropout before the classifier during training", range(0, 0.9));
  v.field("kernel_transform", c.kernel_transform, "smaller kernels = centre crop times a learned transform matrix (OFA); false = plain centre crop", any());
}

template <class V> void visit(V& v, ResNetStageConfig& c) {
  v.field("width", c.width, "output channels of every block in the stage at width_pct 100", range(8, 4096));
  v.field("stride", c.stride, "stride of the stage's first block (its 3x3 conv and its 1x1 downsample path)", range(1, 2));
}

template <class V> void visit(V& v, ResNetConfig& c) {
  v.field("stem_width", c.stem_width, "channels of the 3x3 stem convolution (not elastic)", range(1, 4096));
  v.field("stem_stride", c.stem_stride, "stride of the stem (1 for 28x28 inputs; 2 halves the resolution every later layer runs at)", range(1, 2));
  v.section_list("stages", c.stages, "stages of bottleneck blocks, in order; the first block of each has a 1x1 downsample shortcut");
  v.field("depth", c.depth, "elastic depths: blocks per stage (searched per stage)", nonempty(range(1, 16)));
  v.field("expand_pct", c.expand_pct, "elastic bottleneck widths in percent of the block's width (searched per block; OFA's 0.2, 0.25, 0.35 are 20, 25, 35)", nonempty(range(1, 100)));
  v.field("width_pct", c.width_pct, "elastic stage widths in percent of each stage's width (OFA's width multipliers 0.65, 0.8, 1.0 are 65, 80, 100)", nonempty(range(1, 100)));
  v.field("width_scope", c.width_scope, "one width_pct gene per stage, or one for the whole network", one_of({"stage", "global"}));
  v.field("dropout", c.dropout, "dropout before the classifier during training", range(0, 0.9));
}

template <class V> void visit(V& v, ViTConfig& c) {
  v.field("patch", c.patch, "patch size: the patch embedding is a conv with kernel = stride = patch and no padding; must divide the image's sides", range(1, 64));
  v.field("embed_dim", c.embed_dim, "elastic embedding dimensions (one gene for the whole network)", nonempty(range(8, 4096)));
  v.field("depth", c.depth, "elastic depths: transformer blocks (one gene)", nonempty(range(1, 64)));
  v.field("heads", c.heads, "elastic attention heads (searched per block); every head has the largest embed_dim / the largest heads channels, so that ratio must be whole", nonempty(range(1, 64)));
  v.field("mlp_ratio", c.mlp_ratio, "elastic MLP ratios (searched per block): hidden channels = ratio x embed_dim", nonempty(range(1, 8)));
  v.field("pool", c.pool, "what the classifier reads: cls, the class token's output; mean, the mean over the patch tokens", one_of({"cls", "mean"}));
  v.field("dropout", c.dropout, "dropout before the classifier during training", range(0, 0.9));
}

// The families' config sections, one line each (the order of supernet/families.cpp).
template <class F> void for_each_family(SupernetConfig& c, F f) {
  f("mbv3", c.mbv3);
  f("resnet", c.resnet);
  f("vit", c.vit);
}

template <class V> void visit(V& v, SupernetConfig& c) {
  v.field("kind", c.kind, "supernet family; the keys below it are the family's own (each row says whose)", one_of(supernet_kinds()));
  for_each_family(c, [&](const char* kind, auto& keys) { v.family(kind, c.kind, keys); });
}

template <class V> void visit(V& v, QuantConfig& c) {
  v.field("weight_bits", c.weight_bits, "per-layer weight bit-widths the search may choose", one_of_ints({2, 3, 4, 8, 32}));
  v.field("act_bits", c.act_bits, "per-layer input-activation bit-widths the search may choose", one_of_ints({8, 32}));
  v.field("methods", c.methods, "per-layer compression methods the search may choose, each 'name key=value ...' (rtn, gptq, decoupleq, smoothquant, admm_cp, cp_rtn, with the parameters of a spec's policy except group); a layer whose bits a method does not take (gptq/decoupleq/admm_cp/cp_rtn: weights <= 8, smoothquant: W8A8) uses rtn", nonempty(any()));
  v.field("keep_8bit", c.keep_8bit, "layers whose weights every searched subnet keeps at 8 bits by round-to-nearest, e.g. [stem, classifier] as the ADMM-CP paper keeps its first conv and classifier; their activation bits are still searched (8-bit under couple_act_bits)", any());
  v.field("granularity", c.granularity, "what one policy gene (weight bits, activation bits, method) covers: layer (each compressible layer its own), block (all layers of a block: stem, s<i>.b<j>, head, classifier) or stage (all blocks of a stage, s<i>); a keep_8bit layer stays a group of its own", one_of({"layer", "block", "stage"}));
  v.field("couple_act_bits", c.couple_act_bits, "one precision gene per group instead of two: a layer's inputs run 8-bit when its weights are quantized and fp32 when they are fp32 (SimQ-NAS's space with weight_bits [8, 32]: each layer INT8 or FP32); act_bits must then list exactly the widths this gives", any());
  v.field("calib_images", c.calib_images, "training images used to calibrate activation ranges", range(1, 60000));
  v.field("act_observer", c.act_observer, "how activation ranges are calibrated: min/max, a percentile at each end, or the clip with the least squared error", one_of({"minmax", "percentile", "mse"}));
  v.field("act_percentile", c.act_percentile, "act_observer percentile: the range [p_(100-x), p_x]", range(50.001, 100));
  v.field("hessian_images", c.hessian_images, "of those, images whose layer inputs give gptq and decoupleq their Hessians and smoothquant its channel ranges", range(1, 60000));
  v.field("hessian_samples_per_column", c.hessian_samples_per_column, "conv layers: input samples per column of each Hessian (seeded random positions, at most 64 per image)", range(1, 100000));
}

template <class V> void visit(V& v, AugmentConfig& c) {
  v.field("crop_padding", c.crop_padding, "random crop after zero padding by this many pixels (0 = off)", range(0, 8));
  v.field("hflip", c.hflip, "random horizontal flip", any());
  v.field("random_resized", c.random_resized, "random-resized crop: a window of 8-100 % of the area, aspect 3/4-4/3, resampled to the image size (for photographs; applied before the padded crop)", any());
}

template <class V> void visit(V& v, TrainConfig& c) {
  v.field("epochs", c.epochs, "training epochs", range(1, 100000));
  v.field("batch_size", c.batch_size, "images per step", range(1, 65536));
  v.field("lr", c.lr, "peak learning rate", range(0, 100));
  v.field("optimizer", c.optimizer, "sgd: SGD with momentum (CNNs); adamw: AdamW, betas (0.9, 0.999), decoupled weight decay (transformers)", one_of({"sgd", "adamw"}));
  v.field("momentum", c.momentum, "SGD momentum", range(0, 1));
  v.field("nesterov", c.nesterov, "Nesterov momentum", any());
  v.field("weight_decay", c.weight_decay, "weight decay on the weights the family decays (conv/linear weights; not BN, LayerNorm, biases or embeddings)", range(0, 1));
  v.field("warmup_epochs", c.warmup_epochs, "linear warm-up before the cosine schedule, in epochs", range(0, 100000));
  v.field("label_smoothing", c.label_smoothing, "label smoothing of the largest subnet's loss", range(0, 1));
  v.field("random_subnets", c.random_subnets, "random subnets per sandwich step, besides the largest and the smallest", range(0, 64));
  v.field("kd_ratio", c.kd_ratio, "weight of in-place distillation from the largest subnet in the other subnets' loss (the rest is label loss)", range(0, 1));
  v.field("grad_clip", c.grad_clip, "clip the gradient norm to this value (0 = off)", at_least(0));
  v.field("sync_bn", c.sync_bn, "several ranks: BN normalises with the statistics of the whole batch (sums all-reduced in its forward and backward, as PyTorch's SyncBatchNorm); false: each rank's share alone (DDP's default)", any());
  v.field("quant_aware", c.quant_aware, "quantization-aware supernet: the largest subnet (teacher) stays fp32, the others train with policies drawn from the space's choices, weights and layer inputs fake-quantized (straight-through)", any());
  v.field("init_from", c.init_from, "a supernet checkpoint (supernet.pt) of the same space whose weights (BN statistics included) start a fresh run, with a fresh optimizer and schedule: e.g. a quantization-aware supernet fine-tuned from a trained fp32 one; empty = random initialisation. Ignored by --resume, which continues its own checkpoint", any());
  v.section("augment", c.augment, "training augmentation");
  v.field("eval_every", c.eval_every, "validate the largest and smallest subnets every N epochs (0 = never)", at_least(0));
  v.field("eval_images", c.eval_images, "validation images used for that check (capped at val_size)", range(1, 60000));
}

template <class V> void visit(V& v, EvalConfig& c) {
  v.field("batch_size", c.batch_size, "images per forward pass when measuring accuracy", range(1, 65536));
  v.field("bn_calib_images", c.bn_calib_images, "training images used to recalibrate BatchNorm statistics of an extracted subnet", range(1, 60000));
  v.field("bn_recal_quantized", c.bn_recal_quantized, "recalibrate BatchNorm with each layer's weights fake-quantized on its policy's RTN grid (the statistics of the network as deployed; what a quantization-aware supernet trained its students with) instead of in fp32; layers whose method fits the fp32 layer (gptq, decoupleq, admm_cp, cp_rtn) keep fp32 statistics", any());
}

template <class V> void visit(V& v, LatencyConfig& c) {
  v.field("batch_size", c.batch_size, "images per forward pass of the deployed model when timing latency_ms", range(1, 4096));
  v.field("throughput_batch", c.throughput_batch, "a larger batch timed for throughput_img_s (0 = off)", range(0, 4096));
  v.field("threads", c.threads, "threads while timing (the rest of the run keeps `threads`)", range(1, 1024));
  v.field("warmup", c.warmup, "untimed forward passes before timing (oneDNN builds its kernels on the first)", range(0, 100000));
  v.field("runs", c.runs, "timed forward passes of the model (and as many of the reference)", range(1, 100000));
  v.field("rounds", c.rounds, "the timed passes split into rounds, the model's and the reference's interleaved, so that a machine that slows down or speeds up moves both alike", range(1, 100000));
  v.field("reference", c.reference, "int8_largest: latency_ms is the median over rounds of the model's time over the all-INT8 largest subnet's, times that reference's latency (measured once per run folder and host: latency_reference.json), so candidates measured minutes or processes apart compare; latency_ratio is the ratio itself. none: latency_ms is the model's median time, measured alone", one_of({"int8_largest", "none"}));
}

// "<= 3.0", ">= 85": a bound and a number.
std::string constraint_check(const std::string& text) {
  const std::string expected = "a comparison and a number such as \"<= 3.0\" or \">= 85\"";
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  const std::string ops[] = {"<=", ">="};
  for (const auto& op : ops) {
    if (text.compare(i, op.size(), op) != 0) continue;
    const std::string rest = text.substr(i + op.size());
    char* end = nullptr;
    const double bound = std::strtod(rest.c_str(), &end);
    if (end == rest.c_str() || !std::isfinite(bound)) return expected;
    while (*end == ' ') ++end;
    return *end == '\0' ? "" : expected;
  }
  return expected;
}

Rule metric_map(std::vector<std::string> values, bool nonempty) {
  Rule r;
  r.keys = search_metric_names();
  r.choices = std::move(values);
  r.nonempty = nonempty;
  return r;
}

Rule constraint_map() {
  Rule r = metric_map({}, false);
  r.value_check = &constraint_check;
  return r;
}

template <class V> void visit(V& v, SearchConfig& c) {
  v.field("tactic", c.tactic, "search tactic: random, ga (one objective), nsga2, or linas (predictor-guided, REFERENCES.md 1)", one_of({"random", "ga", "nsga2", "linas"}));
  v.field("objectives", c.objectives, "1 to 3 metrics to optimise with their direction, in order", metric_map({"max", "min"}, true));
  v.field("constraints", c.constraints, "bounds every reported candidate must meet, e.g. {latency_ms: \"<= 3.0\"}", constraint_map());
  v.field("population", c.population, "candidates validated per iteration (random: the initial batch; nsga2/ga: the population)", range(2, 100000));
  v.field("evaluations", c.evaluations, "validated candidates in total (at least population)", range(2, 10000000));
  v.field("seed", c.seed, "seed of the search's random choices (sampling, operators, CV folds)", any());
  v.field("inner_evaluations", c.inner_evaluations, "linas: predicted evaluations of the inner evolutionary search per iteration", range(1, 100000000));
  v.field("linas_batch", c.linas_batch, "linas: candidates validated per iteration after the first, picked from the inner search's final population one at a time by the largest gain in predicted hypervolume over the validated rows (0 = the whole final population, as the paper)", range(0, 100000));
  v.field("linas_initial", c.linas_initial, "linas: candidates validated at iteration 0 (the uniform baselines first, then random ones) before the predictors guide the search (0 = search.population, as the paper)", range(0, 100000));
  v.field("predictor", c.predictor, "linas: ridge, svr, or auto (the lower k-fold CV MAPE per objective)", one_of({"ridge", "svr", "auto"}));
  v.field("folds", c.folds, "linas: folds of the predictors' cross-validation", range(2, 100));
  v.field("proxy_features", c.proxy_features, "linas: proxies appended to the one-hot features: exact costs, or sensitivity (the sum over a candidate's layers of the largest subnet's sensitivity score at its weight bits; qnas sensitivity), or latency_est_ms (the latency model's estimate, measured once per host into latency_table.json beside the checkpoint)", one_of({"params", "macs", "bops", "model_bytes", "sensitivity", "latency_est_ms"}));
  v.field("exact_proxies", c.exact_proxies, "linas: objectives computable from the spec alone (params, macs, bops, model_bytes from the layer shapes) are computed exactly in the inner search instead of predicted", any());
  v.field("seed_from_sensitivity", c.seed_from_sensitivity, "fraction of the initial population whose weight bits are allocated by the largest subnet's sensitivity scores (random architecture and budget) instead of drawn at random", range(0, 1));
  v.field("baselines", c.baselines, "the initial population holds the uniform baselines the space has (all layers W8A8 RTN, W4A8 RTN, fp32) of the largest and the smallest architecture; qnas search compares them with the front (baselines.csv)", any());
  v.field("baseline_fraction", c.baseline_fraction, "with baselines: this fraction of the initial population are uniform baselines of random architectures (the policies in turn)", range(0, 1));
  v.field("crossover_prob", c.crossover_prob, "probability that two parents are recombined (SBX)", range(0, 1));
  v.field("crossover_eta", c.crossover_eta, "SBX distribution index", range(0, 1000));
  v.field("mutation_prob", c.mutation_prob, "probability that one gene is mutated (polynomial mutation)", range(0, 1));
  v.field("mutation_eta", c.mutation_eta, "polynomial mutation distribution index", range(0, 1000));
  v.field("reference_point", c.reference_point, "hypervolume reference point, one value per objective in its own units (empty: worst of the initial population + 10% of its range)", any());
  v.field("val_images", c.val_images, "validation images per candidate's top1 (0 = the whole validation split)", at_least(0));
  v.field("train_if_missing", c.train_if_missing, "qnas search trains the supernet first when output.dir holds no checkpoint", any());
}

template <class V> void visit(V& v, OutputConfig& c) {
  v.field("dir", c.dir, "run directory: checkpoint, logs, resolved config, results", any());
}

template <class V> void visit(V& v, DistConfig& c) {
  v.field("master_addr", c.master_addr, "address of rank 0's store; empty = the launcher's MASTER_ADDR, else 127.0.0.1 (mpirun on one host)", any());
  v.field("master_port", c.master_port, "port of rank 0's store when the launcher sets no MASTER_PORT", range(1, 65535));
  v.field("connect_timeout_s", c.connect_timeout_s, "seconds every rank has to reach the store and join", at_least(0.1));
  v.field("timeout_s", c.timeout_s, "seconds a rank waits in one collective for the others before it fails", at_least(0.1));
  v.field("oversubscribe", c.oversubscribe, "allow ranks on a host x threads per rank above its cores", any());
  v.field("worker_timeout_s", c.worker_timeout_s, "task queue (search, recipe, sensitivity --check): a worker silent this long (no heartbeat) is dead and its task goes to another", at_least(0.5));
  v.field("task_timeout_s", c.task_timeout_s, "task queue: a task running longer is posted again for another worker (a hung worker); 0 = 20x the median task time, at least 60 s", at_least(0));
  v.field("pin_workers", c.pin_workers, "task queue: pin each worker on a host to its own cores so that latency timings do not disturb each other", any());
}

template <class V> void visit(V& v, Config& c) {
  v.field("seed", c.seed, "seed of every random choice (weights, data order, augmentation, subnet sampling)", any());
  v.field("threads", c.threads, "CPU threads for LibTorch (0 = all cores); results are deterministic for a given seed and thread count", range(0, 1024));
  v.field("device", c.device, "cpu (cuda is reserved: refused until the trainer and evaluator run on GPUs)", one_of({"cpu", "cuda"}));
  v.section("data", c.data, "dataset");
  v.section("supernet", c.supernet, "weight-sharing supernet");
  v.section("quant", c.quant, "per-layer quantization policy choices");
  v.section("train", c.train, "supernet training (sandwich rule, in-place distillation)");
  v.section("eval", c.eval, "subnet evaluation");
  v.section("latency", c.latency, "latency of the deployed (int8 / fp32) model");
  v.section("search", c.search, "architecture and policy search");
  v.section("output", c.output, "outputs");
  v.section("dist", c.dist, "several processes started by torchrun or mpirun (ignored by one process)");
}

// quant.couple_act_bits derives each layer's activation bits from its weight
// bits, so act_bits lists what that gives (a listed width it never gives
// would be silently unused).
void check_coupled_act_bits(const QuantConfig& q, std::vector<std::string>& lines) {
  std::set<int> given;
  for (int w : q.weight_bits) given.insert(coupled_act_bits(w));
  const std::set<int> listed(q.act_bits.begin(), q.act_bits.end());
  if (given == listed) return;
  std::string want;
  for (int a : given) want += (want.empty() ? "" : ", ") + std::to_string(a);
  lines.push_back("quant.act_bits: with quant.couple_act_bits the weight bits give activations at [" + want +
                  "]; expected act_bits to list exactly those");
}

// Rules that span several keys.
void check_across(const Config& c, std::vector<std::string>& lines) {
  const auto& s = c.search;
  if (s.objectives.size() > 3)
    lines.push_back("search.objectives: " + std::to_string(s.objectives.size()) + " objectives; expected 1 to 3");
  if (s.tactic == "ga" && s.objectives.size() != 1)
    lines.push_back("search.tactic: ga optimises one objective, search.objectives lists " +
                    std::to_string(s.objectives.size()) + "; expected one (or tactic nsga2/linas)");
  if (s.evaluations < s.population)
    lines.push_back("search.evaluations: " + std::to_string(s.evaluations) + " is less than search.population " +
                    std::to_string(s.population) + "; expected at least one population");
  if (s.linas_batch > s.population)
    lines.push_back("search.linas_batch: " + std::to_string(s.linas_batch) + " is more than search.population " +
                    std::to_string(s.population) + " (the inner search's final population it is picked from); "
                    "expected 0 to " + std::to_string(s.population));
  if (s.linas_initial > s.evaluations)
    lines.push_back("search.linas_initial: " + std::to_string(s.linas_initial) + " is more than search.evaluations " +
                    std::to_string(s.evaluations) + "; expected 0 to " + std::to_string(s.evaluations));
  if (s.linas_initial > 0 && s.linas_initial < s.folds)
    lines.push_back("search.linas_initial: " + std::to_string(s.linas_initial) + " is fewer than search.folds " +
                    std::to_string(s.folds) + " (the predictors' cross-validation needs a row per fold); expected 0 or " +
                    "at least " + std::to_string(s.folds));
  if (!s.reference_point.empty() && s.reference_point.size() != s.objectives.size())
    lines.push_back("search.reference_point: " + std::to_string(s.reference_point.size()) +
                    " values for " + std::to_string(s.objectives.size()) + " objectives; expected one per objective");
  if (c.quant.couple_act_bits) check_coupled_act_bits(c.quant, lines);
  for (size_t i = 0; i < s.objectives.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (s.objectives[i].first == s.objectives[j].first)
        lines.push_back("search.objectives: '" + s.objectives[i].first + "' twice; expected distinct metrics");
}

// Map-valued keys replace their default instead of merging into it.
struct MapPaths {
  std::string prefix;
  std::vector<std::string> paths;
  template <class T>
  void field(const char* key, const T&, const char*, const Rule&) {
    if constexpr (std::is_same_v<T, NamedValues>) paths.push_back(join_path(prefix, key));
  }
  template <class S>
  void section(const char* key, S& value, const char*) {
    MapPaths child{join_path(prefix, key), {}};
    visit(child, value);
    paths.insert(paths.end(), child.paths.begin(), child.paths.end());
  }
  template <class S>
  void section_list(const char*, std::vector<S>&, const char*) {}
  template <class S>
  void family(const char*, const std::string&, S& keys) {
    visit(*this, keys);
  }
};

// ---------------------------------------------------------------------------
// Reading: YAML node -> struct, collecting every problem.

struct Problems {
  std::string origin;
  std::vector<std::string> lines;
  std::vector<std::string> all_paths;   // for cross-section suggestions
  std::vector<std::string> overridden;  // key paths set by --set
  std::string kind;                     // the supernet family the config names
  // Key paths ("supernet.stages.N.se") of other families only -> those families.
  std::map<std::string, std::string> other_family_keys;
};


class Reader {
 public:
  Reader(const YAML::Node& node, std::string prefix, Problems& problems)
      : node_(node), prefix_(std::move(prefix)), problems_(problems) {}

  template <class T>
  void field(const char* key, T& value, const char*, const Rule& rule) {
    known_.push_back(key);
    if (!node_.IsMap() || !node_[key]) return;
    const YAML::Node n = node_[key];
    const std::string path = join_path(prefix_, key);
    if constexpr (std::is_same_v<T, NamedValues>) {
      read_named(n, path, value, rule);
    } else if constexpr (std::is_same_v<T, ChannelValues>) {
      read_channel_values(n, path, value, rule);
    } else if constexpr (is_vector<T>::value) {
      read_list(n, path, value, rule);
    } else {
      read_scalar(n, path, value, rule);
    }
  }

  template <class S>
  void section(const char* key, S& value, const char*) {
    known_.push_back(key);
    if (!node_.IsMap() || !node_[key] || node_[key].IsNull()) return;
    const YAML::Node n = node_[key];
    const std::string path = join_path(prefix_, key);
    if (!n.IsMap()) {
      problem(path, n, "expected a section (a map of keys), got '" + text(n) + "'");
      return;
    }
    Reader child(n, path, problems_);
    visit(child, value);
    child.check_unknown();
  }

  template <class S>
  void section_list(const char* key, std::vector<S>& value, const char*) {
    known_.push_back(key);
    if (!node_.IsMap() || !node_[key]) return;
    const YAML::Node n = node_[key];
    const std::string path = join_path(prefix_, key);
    if (!n.IsSequence() || n.size() == 0) {
      problem(path, n, "expected a non-empty list of sections");
      return;
    }
    std::vector<S> out(n.size());
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string item_path = path + "." + std::to_string(i);
      if (!n[i].IsMap()) {
        problem(item_path, n[i], "expected a section (a map of keys)");
        continue;
      }
      Reader child(n[i], item_path, problems_);
      visit(child, out[i]);
      child.check_unknown();
    }
    value = std::move(out);
  }

  template <class S>
  void family(const char* kind, const std::string& selected, S& keys) {
    if (selected == kind) visit(*this, keys);
  }

  void check_unknown() {
    if (!node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      // The value node keeps its file position (the key node may be a copy).
      const std::string path = join_path(prefix_, key);
      const auto other = problems_.other_family_keys.find(generic_path(path));
      if (other != problems_.other_family_keys.end())
        problem(path, kv.second, "a key of the " + other->second + " family, but supernet.kind is " + problems_.kind +
                                     "; expected " + problems_.kind + "'s keys here: " + join(known_, ", "));
      else
        problem(path, kv.second, "unknown key" + suggestion(key));
    }
  }

 private:
  static std::string text(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    YAML::Emitter e;
    e << YAML::Flow << n;
    return e.c_str();
  }

  void problem(const std::string& path, const YAML::Node& n, const std::string& msg) {
    problems_.lines.push_back(path + origin_of(path, n) + ": " + msg);
  }

  // " (line N)" for keys from the file, " (from --set)" for overrides.
  std::string origin_of(const std::string& path, const YAML::Node& n) const {
    for (const auto& o : problems_.overridden)
      if (path == o || path.rfind(o + ".", 0) == 0 || o.rfind(path + ".", 0) == 0) return " (from --set)";
    return where(n);
  }

  std::string suggestion(const std::string& key) const {
    std::string best;
    size_t best_d = std::numeric_limits<size_t>::max();
    for (const auto& k : known_) {
      const size_t d = edit_distance(key, k);
      if (d < best_d) best_d = d, best = join_path(prefix_, k);
    }
    const size_t limit = std::max<size_t>(2, key.size() / 3);
    if (best_d <= limit) return "; did you mean '" + best + "'?";
    // The key may belong to another section: match the leaf name anywhere.
    for (const auto& p : problems_.all_paths) {
      const auto dot = p.rfind('.');
      if (dot != std::string::npos && p.substr(dot + 1) == key)
        return "; did you mean '" + p + "'?";
    }
    return "; valid keys here: " + join(known_, ", ");
  }

  template <class T>
  bool convert(const YAML::Node& n, T& out) {
    if (!n.IsScalar()) return false;
    try {
      if constexpr (std::is_same_v<T, bool>) {
        out = n.as<bool>();
      } else if constexpr (std::is_integral_v<T>) {
        // Reject "3.5" and "1e9" explicitly: yaml-cpp reads integers with a stream.
        const std::string s = n.Scalar();
        if (s.find_first_of(".eE") != std::string::npos) return false;
        if constexpr (std::is_unsigned_v<T>) {
          if (!s.empty() && s[0] == '-') return false;
        }
        out = n.as<T>();
      } else {
        out = n.as<T>();
      }
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  }

  template <class T>
  bool check_rule(const YAML::Node& n, const std::string& path, const T& v, const Rule& rule,
                  const std::string& expected) {
    bool ok = true;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      ok = static_cast<double>(v) >= rule.lo && static_cast<double>(v) <= rule.hi;
    }
    if (!rule.choices.empty()) {
      std::ostringstream os;
      os << v;
      ok = ok && std::find(rule.choices.begin(), rule.choices.end(), os.str()) != rule.choices.end();
    }
    if (!ok) problem(path, n, "expected " + expected + ", got '" + text(n) + "'");
    return ok;
  }

  template <class T>
  void read_scalar(const YAML::Node& n, const std::string& path, T& value, const Rule& rule) {
    const std::string expected = expected_text(type_name<T>(), rule);
    T v{};
    if (!convert(n, v)) {
      problem(path, n, "expected " + expected + ", got '" + text(n) + "'");
      return;
    }
    if (check_rule(n, path, v, rule, expected)) value = v;
  }

  template <class T>
  void read_list(const YAML::Node& n, const std::string& path, std::vector<T>& value, const Rule& rule) {
    const std::string expected = expected_list_text(type_name<T>(), rule);
    if (!n.IsSequence() || (rule.nonempty && n.size() == 0)) {
      problem(path, n, "expected " + expected + ", got '" + text(n) + "'");
      return;
    }
    std::vector<T> out;
    for (size_t i = 0; i < n.size(); ++i) {
      T v{};
      if (!convert(n[i], v) || !check_rule(n[i], path, v, rule, expected)) {
        if (out.size() == i) problem(path + "." + std::to_string(i), n[i],
                                     "expected " + expected_text(type_name<T>(), rule) +
                                         ", got '" + text(n[i]) + "'");
        return;
      }
      if (std::find(out.begin(), out.end(), v) != out.end()) {
        problem(path, n, "expected distinct values, got '" + text(n[i]) + "' twice");
        return;
      }
      out.push_back(v);
    }
    value = std::move(out);
  }

  void read_channel_values(const YAML::Node& n, const std::string& path, ChannelValues& value, const Rule& rule) {
    const std::string expected = channel_values_text(rule);
    if (n.IsScalar() && n.Scalar() == "auto") {
      value = {true, {}};
      return;
    }
    std::vector<YAML::Node> items;
    if (n.IsScalar()) items.push_back(n);
    if (n.IsSequence())
      for (size_t i = 0; i < n.size(); ++i) items.push_back(n[i]);
    ChannelValues out;
    for (const auto& item : items) {
      double v = 0;
      if (!convert(item, v)) {
        problem(path, n, "expected " + expected + ", got '" + text(n) + "'");
        return;
      }
      if (!check_rule(item, path, v, rule, expected)) return;
      out.values.push_back(v);
    }
    if (out.values.empty()) {
      problem(path, n, "expected " + expected + ", got '" + text(n) + "'");
      return;
    }
    value = std::move(out);
  }

  // A map replaces the default whole (see overlay()); keys and values are
  // checked one by one so each problem names its key.
  void read_named(const YAML::Node& n, const std::string& path, NamedValues& value, const Rule& rule) {
    if (n.IsNull()) {
      value.clear();
      return;
    }
    if (!n.IsMap()) {
      problem(path, n, "expected a map (e.g. {top1: max}), got '" + text(n) + "'");
      return;
    }
    NamedValues out;
    bool ok = true;
    for (const auto& kv : n) {
      const std::string key = kv.first.as<std::string>();
      const std::string item = path + "." + key;
      if (!rule.keys.empty() && std::find(rule.keys.begin(), rule.keys.end(), key) == rule.keys.end()) {
        problem(item, kv.second, "unknown name '" + key + "'; expected one of {" + join(rule.keys, ", ") + "}");
        ok = false;
        continue;
      }
      if (!kv.second.IsScalar()) {
        problem(item, kv.second, "expected a single value, got '" + text(kv.second) + "'");
        ok = false;
        continue;
      }
      const std::string v = kv.second.Scalar();
      std::string expected;
      if (!rule.choices.empty() && std::find(rule.choices.begin(), rule.choices.end(), v) == rule.choices.end())
        expected = "one of {" + join(rule.choices, ", ") + "}";
      else if (rule.value_check)
        expected = rule.value_check(v);
      if (!expected.empty()) {
        problem(item, kv.second, "expected " + expected + ", got '" + v + "'");
        ok = false;
        continue;
      }
      out.emplace_back(key, v);
    }
    if (ok && rule.nonempty && out.empty()) {
      problem(path, n, "expected at least one entry");
      ok = false;
    }
    if (ok) value = std::move(out);
  }

  YAML::Node node_;
  std::string prefix_;
  Problems& problems_;
  std::vector<std::string> known_;
};

// ---------------------------------------------------------------------------
// Writing: struct -> YAML node (the resolved config).

class Writer {
 public:
  explicit Writer(YAML::Node& node) : node_(node) {}

  template <class T>
  static YAML::Node scalar(const T& v) {
    if constexpr (std::is_floating_point_v<T>) return YAML::Node(shortest(v));
    else return YAML::Node(v);
  }

  template <class T>
  void field(const char* key, const T& value, const char*, const Rule&) {
    if constexpr (std::is_same_v<T, NamedValues>) {
      YAML::Node map(YAML::NodeType::Map);
      map.SetStyle(YAML::EmitterStyle::Flow);
      for (const auto& [k, v] : value) map[k] = v;
      node_[key] = map;
    } else if constexpr (std::is_same_v<T, ChannelValues>) {
      if (value.automatic) {
        node_[key] = "auto";
      } else if (value.values.size() == 1) {
        node_[key] = scalar(value.values[0]);
      } else {
        YAML::Node seq(YAML::NodeType::Sequence);
        seq.SetStyle(YAML::EmitterStyle::Flow);
        for (double v : value.values) seq.push_back(scalar(v));
        node_[key] = seq;
      }
    } else if constexpr (is_vector<T>::value) {
      YAML::Node seq(YAML::NodeType::Sequence);
      seq.SetStyle(YAML::EmitterStyle::Flow);
      for (const auto& v : value) seq.push_back(scalar(v));
      node_[key] = seq;
    } else {
      node_[key] = scalar(value);
    }
  }

  template <class S>
  void section(const char* key, S& value, const char*) {
    YAML::Node child(YAML::NodeType::Map);
    Writer w(child);
    visit(w, value);
    node_[key] = child;
  }

  template <class S>
  void section_list(const char* key, std::vector<S>& value, const char*) {
    YAML::Node seq(YAML::NodeType::Sequence);
    for (auto& item : value) {
      YAML::Node child(YAML::NodeType::Map);
      child.SetStyle(YAML::EmitterStyle::Flow);
      Writer w(child);
      visit(w, item);
      seq.push_back(child);
    }
    node_[key] = seq;
  }

  template <class S>
  void family(const char* kind, const std::string& selected, S& keys) {
    if (selected == kind) visit(*this, keys);
  }

 private:
  YAML::Node& node_;
};

// ---------------------------------------------------------------------------
// Documenting: every key path with its expected form, default and meaning.

class Documenter {
 public:
  struct Row {
    std::string path, expected, default_value, description;
    std::string family;  // the supernet family whose key this is (empty: every config's)
  };

  explicit Documenter(std::string prefix = "", std::string family = "")
      : prefix_(std::move(prefix)), family_(std::move(family)) {}

  template <class T>
  void field(const char* key, const T& value, const char* desc, const Rule& rule) {
    std::string expected;
    if constexpr (std::is_same_v<T, NamedValues>)
      expected = "a map {name: value}, name one of {" + join(rule.keys, ", ") + "}" +
                 (rule.choices.empty() ? "" : ", value one of {" + join(rule.choices, ", ") + "}") +
                 (rule.value_check ? ", value \"<= number\" or \">= number\"" : "");
    else if constexpr (std::is_same_v<T, ChannelValues>)
      expected = channel_values_text(rule);
    else if constexpr (is_vector<T>::value)
      expected = expected_list_text(type_name<typename T::value_type>(), rule);
    else
      expected = expected_text(type_name<T>(), rule);
    YAML::Node tmp;
    Writer(tmp).field("v", value, desc, rule);
    YAML::Emitter e;
    e << YAML::Flow << tmp["v"];
    rows.push_back({join_path(prefix_, key), expected, e.c_str(), desc, family_});
  }

  template <class S>
  void section(const char* key, S& value, const char* desc) {
    Documenter child(join_path(prefix_, key), family_);
    visit(child, value);
    rows.insert(rows.end(), child.rows.begin(), child.rows.end());
  }

  template <class S>
  void section_list(const char* key, std::vector<S>& value, const char* desc) {
    const std::string path = join_path(prefix_, key);
    YAML::Node tmp;
    Writer(tmp).section_list("v", value, desc);
    YAML::Emitter e;
    e << YAML::Flow << tmp["v"];
    rows.push_back({path, "list of sections", e.c_str(), desc, family_});
    S item{};
    Documenter child(path + ".N", family_);
    visit(child, item);
    rows.insert(rows.end(), child.rows.begin(), child.rows.end());
  }

  /// Every family's keys, each row marked with its family.
  template <class S>
  void family(const char* kind, const std::string&, S& keys) {
    Documenter child(prefix_, kind);
    visit(child, keys);
    rows.insert(rows.end(), child.rows.begin(), child.rows.end());
  }

  std::vector<Row> rows;

 private:
  std::string prefix_, family_;
};

std::vector<Documenter::Row> documented_rows() {
  Config defaults;
  Documenter doc;
  visit(doc, defaults);
  return doc.rows;
}

// Key paths that only other families than `kind` have, each with those families.
std::map<std::string, std::string> other_family_keys(const std::string& kind) {
  std::set<std::string> own;
  std::map<std::string, std::string> others;
  for (const auto& r : documented_rows())
    if (r.family == kind) own.insert(r.path);
  for (const auto& r : documented_rows()) {
    if (r.family.empty() || r.family == kind || own.count(r.path)) continue;
    auto& families = others[r.path];
    if (families.find(r.family) == std::string::npos) families += (families.empty() ? "" : ", ") + r.family;
  }
  return others;
}

std::vector<std::string> all_key_paths() {
  std::vector<std::string> paths;
  for (const auto& row : documented_rows()) paths.push_back(row.path);
  return paths;
}

// ---------------------------------------------------------------------------
// --set overrides: edit the YAML tree before it is read, so an override is
// validated exactly like a key in the file.

// `--set a.b.c=v` walks into a.b: each node on the way must be a mapping
// (or absent); a scalar there would make yaml-cpp throw its own exception.
void expect_mapping(const YAML::Node& node, const std::string& assignment, const std::vector<std::string>& keys,
                    size_t depth) {
  if (!node || node.IsNull() || node.IsMap()) return;
  std::string where = "the config's top level";
  if (depth > 0) {
    where = "'" + keys[0];
    for (size_t i = 1; i < depth; ++i) where += "." + keys[i];
    where += "'";
  }
  QNAS_THROW("--set '", assignment, "': ", where, " is a ", node.IsScalar() ? "scalar" : "list",
             " in the config, so it has no key '", keys[depth], "'; expected a mapping there");
}

void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  QNAS_CHECK(eq != std::string::npos && eq > 0,
             "--set '", assignment, "': expected key.path=value (e.g. train.epochs=3)");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    QNAS_THROW("--set '", assignment, "': value is not valid YAML: ", e.msg);
  }
  std::vector<std::string> keys;
  std::stringstream ss(path);
  for (std::string k; std::getline(ss, k, '.');) {
    QNAS_CHECK(!k.empty(), "--set '", assignment, "': empty segment in key path '", path, "'");
    keys.push_back(k);
  }
  // yaml-cpp nodes are handles: walking with operator[] on a copy edits the tree.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node cur = chain.back();
    const std::string& k = keys[i];
    if (cur.IsSequence()) {
      size_t idx = 0;
      try {
        idx = std::stoul(k);
      } catch (...) {
        QNAS_THROW("--set '", assignment, "': '", k, "' indexes a list; expected a number");
      }
      QNAS_CHECK(idx < cur.size(), "--set '", assignment, "': index ", idx,
                 " is past the end of a list of ", cur.size());
      chain.push_back(cur[idx]);
    } else {
      expect_mapping(cur, assignment, keys, i);
      if (!cur[k] || cur[k].IsNull()) cur[k] = YAML::Node(YAML::NodeType::Map);
      chain.push_back(cur[k]);
    }
  }
  YAML::Node parent = chain.back();
  if (parent.IsSequence()) {
    size_t idx = 0;
    try {
      idx = std::stoul(keys.back());
    } catch (...) {
      QNAS_THROW("--set '", assignment, "': '", keys.back(), "' indexes a list; expected a number");
    }
    QNAS_CHECK(idx < parent.size(), "--set '", assignment, "': index ", idx,
               " is past the end of a list of ", parent.size());
    parent[idx] = value;
  } else {
    expect_mapping(parent, assignment, keys, keys.size() - 1);
    parent[keys.back()] = value;
  }
}

// Overlays `file` on `base` (both maps): maps merge key by key, anything else
// replaces. Nodes keep their file positions for messages.
void overlay(YAML::Node base, const YAML::Node& file, const std::vector<std::string>& whole,
             const std::string& prefix = "") {
  for (const auto& kv : file) {
    const std::string key = kv.first.as<std::string>();
    const std::string path = join_path(prefix, key);
    const bool replace = std::find(whole.begin(), whole.end(), path) != whole.end();
    if (!replace && kv.second.IsMap() && base[key] && base[key].IsMap()) overlay(base[key], kv.second, whole, path);
    else base[key] = kv.second;
  }
}

// The supernet family a config names: the last --set supernet.kind, else
// the file's supernet.kind, else the default.
std::string named_kind(const YAML::Node& root, const std::vector<std::string>& overrides) {
  const std::string key = "supernet.kind=";
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    if (it->rfind(key, 0) != 0) continue;
    try {
      const YAML::Node value = YAML::Load(it->substr(key.size()));
      if (value.IsScalar()) return value.Scalar();
    } catch (const YAML::Exception&) {
    }
    return it->substr(key.size());  // apply_override reports what is wrong with it
  }
  const YAML::Node section = root["supernet"];
  if (section && section.IsMap() && section["kind"] && section["kind"].IsScalar()) return section["kind"].Scalar();
  return SupernetConfig{}.kind;
}

}  // namespace

// ---------------------------------------------------------------------------

const std::vector<std::string>& supernet_kinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> out;
    SupernetConfig c;
    for_each_family(c, [&](const char* kind, auto&) { out.push_back(kind); });
    return out;
  }();
  return kinds;
}

const std::vector<std::string>& search_metric_names() {
  static const std::vector<std::string> names = {"top1", "latency_ms", "latency_ms_std", "throughput_img_s",
                                                 "model_bytes", "peak_rss_bytes", "params", "macs", "bops",
                                                 "latency_est_ms", "latency_ratio"};
  return names;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

Config parse_config_tree(const std::string& yaml_text, const std::string& origin,
                         const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    QNAS_THROW("config ", origin, ": not valid YAML at line ", e.mark.line + 1, ", column ",
               e.mark.column + 1, ": ", e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  QNAS_CHECK(root.IsMap(), "config ", origin, ": expected a map of sections at the top level");
  // Overrides apply on top of the defaults, so `--set supernet.stages.0.width=8`
  // works whether or not the file spells out the stages. The defaults are
  // those of the family the file (or --set) names.
  Config defaults;
  const std::string kind = named_kind(root, overrides);
  if (std::count(supernet_kinds().begin(), supernet_kinds().end(), kind)) defaults.supernet.kind = kind;
  YAML::Node tree = YAML::Load(to_yaml(defaults));
  MapPaths maps;
  visit(maps, defaults);
  overlay(tree, root, maps.paths);
  root = tree;
  Problems problems{origin, {}, all_key_paths(), {}, kind, other_family_keys(defaults.supernet.kind)};
  for (const auto& o : overrides) {
    apply_override(root, o);
    problems.overridden.push_back(o.substr(0, o.find('=')));
  }

  Config config;
  Reader reader(root, "", problems);
  visit(reader, config);
  reader.check_unknown();
  if (problems.lines.empty()) check_across(config, problems.lines);
  if (!problems.lines.empty()) {
    std::string msg = "invalid config " + origin + (overrides.empty() ? "" : " (with --set overrides)") + ":";
    for (const auto& line : problems.lines) msg += "\n  " + line;
    throw Error(msg);
  }
  return config;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides) {
  try {
    return parse_config_tree(yaml_text, origin, overrides);
  } catch (const YAML::Exception& e) {  // valid YAML qnas cannot read: a map or list as a key, say
    const std::string where = e.mark.is_null() ? "" : " at line " + std::to_string(e.mark.line + 1);
    QNAS_THROW("config ", origin, where, ": ", e.msg, "; expected sections of plain names and values");
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(read_text_file(path, "config"), path, overrides);
}

std::string to_yaml(const Config& config) {
  Config copy = config;
  YAML::Node root(YAML::NodeType::Map);
  Writer w(root);
  visit(w, copy);
  YAML::Emitter e;
  e << root;
  return std::string("# resolved qnas config: every key with the value this run used\n") + e.c_str() + "\n";
}

void write_resolved_config(const Config& config, const std::string& dir) {
  write_file_atomic(dir + "/config.resolved.yaml", to_yaml(config));
}

std::string config_reference_markdown() {
  std::string out = "| key | expected | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& r : documented_rows())
    out += "| `" + r.path + "`" + (r.family.empty() ? "" : " (" + r.family + ")") + " | " + r.expected + " | `" +
           r.default_value + "` | " + r.description + " |\n";
  return out;
}

}  // namespace qnas::core
