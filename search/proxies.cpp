#include "search/tactics.hpp"

#include <memory>
#include <unordered_map>

#include "src/eval/metrics.hpp"
#include "supernet/supernet.hpp"

namespace qnas::search {

namespace {

// Layer shapes depend on the architecture genes only, and LINAS's inner
// search evaluates tens of thousands of genomes over a few hundred
// architectures: decode and walk the supernet once per architecture, then
// set each layer's policy from its policy genes.
class ShapeProxies {
 public:
  ShapeProxies(const Space& space, const supernet::SupernetImpl& net) : space_(space), net_(net) {
    const auto& vars = space.desc().variables;
    for (size_t i = 0; i < vars.size(); ++i) {
      if (!vars[i].is_policy()) arch_genes_.push_back(i);
      else if (vars[i].field == "weight_bits") weight_gene_[vars[i].layer] = int(i);
      else if (vars[i].field == "act_bits") act_gene_[vars[i].layer] = int(i);
      else if (vars[i].field == "method") method_gene_[vars[i].layer] = int(i);
    }
  }

  MetricValues operator()(const Genome& g) const {
    const Shapes& shapes = shapes_of(g);
    auto layers = shapes.layers;
    const auto& vars = space_.desc().variables;
    for (size_t k = 0; k < layers.size(); ++k) {
      const auto& genes = shapes.genes[k];
      auto& p = layers[k].policy;
      if (genes.weight >= 0) p.weight_bits = vars[size_t(genes.weight)].choices[size_t(g[size_t(genes.weight)])];
      if (genes.act >= 0) p.act_bits = vars[size_t(genes.act)].choices[size_t(g[size_t(genes.act)])];
      if (genes.method >= 0)
        p = supernet::policy_with_method(p.weight_bits, p.act_bits, space_.desc().methods.at(size_t(g[size_t(genes.method)])));
    }
    return MetricValues(eval::cost_metrics(layers));
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
  std::vector<size_t> arch_genes_;
  std::unordered_map<std::string, int> weight_gene_, act_gene_, method_gene_;  // layer name -> gene index
  mutable std::unordered_map<std::string, Shapes> cache_;        // architecture genes -> shapes
};

}  // namespace

ProxyFn shape_proxies(const Space& space, const supernet::SupernetImpl& net) {
  auto proxies = std::make_shared<const ShapeProxies>(space, net);
  return [proxies](const Genome& g) { return (*proxies)(g); };
}

}  // namespace qnas::search
