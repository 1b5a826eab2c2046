#include "search/tactics.hpp"

#include <memory>
#include <unordered_map>

#include "search/sensitivity_prior.hpp"
#include "src/core/error.hpp"
#include "src/eval/latency_model.hpp"
#include "src/eval/metrics.hpp"
#include "src/eval/sensitivity.hpp"
#include "src/quant/sensitivity.hpp"
#include "supernet/supernet.hpp"

namespace qnas::search {

namespace {

// Layer shapes depend on the architecture genes only, and LINAS's inner
// search evaluates tens of thousands of genomes over a few hundred
// architectures: decode and walk the supernet once per architecture, then
// set each layer's policy from its policy genes.
class ShapeProxies {
 public:
  ShapeProxies(const Space& space, const supernet::SupernetImpl& net, SensitivityPrior prior,
               std::shared_ptr<const eval::LatencyModel> latency)
      : space_(space), net_(net), prior_(std::move(prior)), latency_(std::move(latency)) {
    const auto& vars = space.desc().variables;
    for (size_t i = 0; i < vars.size(); ++i) {
      if (!vars[i].is_policy()) {
        arch_genes_.push_back(i);
        continue;
      }
      auto& genes = vars[i].field == "weight_bits" ? weight_gene_ : vars[i].field == "act_bits" ? act_gene_ : method_gene_;
      for (const auto& layer : vars[i].layers) genes[layer] = int(i);
    }
  }

  MetricValues operator()(const Genome& g) const {
    const auto layers = layers_of(g);
    MetricValues m(eval::cost_metrics(layers));
    if (!prior_.empty()) {
      double sensitivity = 0;
      for (const auto& l : layers)
        if (l.compressible) sensitivity += prior_.at(l.name, l.policy.weight_bits);
      m["sensitivity"] = sensitivity;
    }
    if (latency_) m["latency_est_ms"] = latency_->estimate(layers).ms;
    return m;
  }

  /// The genome's layers with their policies.
  std::vector<supernet::LayerInfo> layers_of(const Genome& g) const {
    const Shapes& shapes = shapes_of(g);
    auto layers = shapes.layers;
    const auto& vars = space_.desc().variables;
    for (size_t k = 0; k < layers.size(); ++k) {
      const auto& genes = shapes.genes[k];
      auto& p = layers[k].policy;
      if (genes.weight >= 0) p.weight_bits = vars[size_t(genes.weight)].choices[size_t(g[size_t(genes.weight)])];
      if (genes.act >= 0) p.act_bits = vars[size_t(genes.act)].choices[size_t(g[size_t(genes.act)])];
      else if (space_.desc().couple_act_bits) p.act_bits = core::coupled_act_bits(p.weight_bits);
      if (genes.method >= 0)
        p = supernet::policy_with_method(p.weight_bits, p.act_bits, space_.desc().methods.at(size_t(g[size_t(genes.method)])));
    }
    return layers;
  }

  /// The weight-bits gene of a layer; -1 when not searched.
  int weight_gene(const std::string& layer) const {
    const auto it = weight_gene_.find(layer);
    return it == weight_gene_.end() ? -1 : it->second;
  }

 private:
  struct PolicyGenes {
    int weight = -1, act = -1, method = -1;  // -1: not searched
  };
  struct Shapes {
    std::vector<supernet::LayerInfo> layers;
    std::vector<PolicyGenes> genes;  // of each layer
  };

  const Shapes& shapes_of(const Genome& g) const {
    std::string key;
    for (size_t i : arch_genes_) key += std::to_string(g.at(i)) + ",";
    if (cache_.size() > 100000) cache_.clear();  // bounds memory; a space has far fewer architectures in practice
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    Shapes s;
    s.layers = net_.layer_infos(space_.decode(g));
    for (const auto& layer : s.layers)
      s.genes.push_back({gene_of(weight_gene_, layer), gene_of(act_gene_, layer), gene_of(method_gene_, layer)});
    return cache_.emplace(std::move(key), std::move(s)).first->second;
  }

  static int gene_of(const std::unordered_map<std::string, int>& genes, const supernet::LayerInfo& layer) {
    const auto it = genes.find(layer.name);
    return layer.compressible && it != genes.end() ? it->second : -1;
  }

  const Space& space_;
  const supernet::SupernetImpl& net_;
  SensitivityPrior prior_;
  std::shared_ptr<const eval::LatencyModel> latency_;
  std::vector<size_t> arch_genes_;
  std::unordered_map<std::string, int> weight_gene_, act_gene_, method_gene_;  // layer name -> gene index
  mutable std::unordered_map<std::string, Shapes> cache_;        // architecture genes -> shapes
};

// One genome's weight bits allocated by the prior under a random budget.
Genome allocated(const Space& space, const ShapeProxies& shapes, const SensitivityPrior& prior, Genome g,
                 core::Rng& rng) {
  const auto& vars = space.desc().variables;
  std::vector<quant::AllocationLayer> layers;
  std::vector<int> genes;
  double lowest = 0, highest = 0;
  for (const auto& l : shapes.layers_of(g)) {
    const int gene = shapes.weight_gene(l.name);
    if (!l.compressible || gene < 0) continue;
    quant::AllocationLayer a{l.name, {}, {}, {}};
    for (int bits : vars[size_t(gene)].choices) {
      auto p = l.policy;
      p.weight_bits = bits;
      a.bits.push_back(bits);
      a.cost.push_back(double(quant::stored_weight_bytes(l.weight_numel, l.out_channels, p)));
      a.sensitivity.push_back(prior.at(l.name, bits));
    }
    lowest += a.cost.front();
    highest += a.cost.back();
    layers.push_back(std::move(a));
    genes.push_back(gene);
  }
  if (layers.empty()) return g;
  const auto a = quant::allocate_bits(layers, lowest + core::uniform01(rng) * (highest - lowest));
  for (size_t k = 0; k < genes.size(); ++k) {
    const auto& choices = vars[size_t(genes[k])].choices;
    g[size_t(genes[k])] = int(std::find(choices.begin(), choices.end(), a.bits[k]) - choices.begin());
  }
  return space.canonical(std::move(g));
}

}  // namespace

double SensitivityPrior::at(const std::string& layer, int bits) const {
  if (bits >= 32) return 0;
  const auto l = score.find(layer);
  QNAS_CHECK(l != score.end(), "sensitivity prior: no score for layer '", layer, "'; expected the largest subnet's layers");
  const auto b = l->second.find(bits);
  QNAS_CHECK(b != l->second.end(), "sensitivity prior: layer '", layer, "' was not measured at ", bits,
             " bits; expected every searched weight bit-width below 32");
  return b->second;
}

SensitivityPrior prior_of(const eval::SensitivityReport& report) {
  SensitivityPrior prior;
  for (const auto& pass : report.passes)
    for (const auto& l : pass.layers) prior.score[l.layer][pass.weight_bits] = l.score;
  return prior;
}

SeedFn sensitivity_seeds(const Space& space, const supernet::SupernetImpl& net, SensitivityPrior prior) {
  for (const auto& v : space.desc().variables)
    QNAS_CHECK(v.field != "weight_bits" || v.layers.size() == 1, "search.seed_from_sensitivity allocates bits per "
               "layer, but quant.granularity gives '", v.layer, "' one gene for ", v.layers.size(),
               " layers; expected quant.granularity: layer");
  auto shapes = std::make_shared<const ShapeProxies>(space, net, SensitivityPrior{}, nullptr);
  auto p = std::make_shared<const SensitivityPrior>(std::move(prior));
  return [&space, shapes, p](size_t n, core::Rng& rng, std::unordered_set<std::string>& exclude) {
    std::vector<Genome> out;
    for (size_t tries = 0; out.size() < n && tries < 100 * n + 100; ++tries) {
      auto g = allocated(space, *shapes, *p, space.random(rng), rng);
      if (exclude.insert(genome_key(g)).second) out.push_back(std::move(g));
    }
    return out;
  };
}

ProxyFn shape_proxies(const Space& space, const supernet::SupernetImpl& net, SensitivityPrior prior,
                      std::shared_ptr<const eval::LatencyModel> latency) {
  auto proxies = std::make_shared<const ShapeProxies>(space, net, std::move(prior), std::move(latency));
  return [proxies](const Genome& g) { return (*proxies)(g); };
}

}  // namespace qnas::search
