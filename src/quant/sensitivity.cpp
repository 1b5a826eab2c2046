#include "src/quant/sensitivity.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>

#include "src/core/error.hpp"

namespace qnas::quant {

double SignalNoise::sqnr_db() const {
  constexpr double kCapDb = 200;
  if (noise <= 0) return kCapDb;
  if (signal <= 0) return -kCapDb;
  return std::min(kCapDb, 10 * std::log10(signal / noise));
}

std::vector<size_t> ranking(const std::vector<LayerSensitivity>& layers) {
  std::vector<size_t> order(layers.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (layers[a].score != layers[b].score) return layers[a].score > layers[b].score;
    return layers[a].layer < layers[b].layer;
  });
  return order;
}

namespace {

std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = 0.5 * double(i + j);
    i = j + 1;
  }
  return rank;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = double(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) * (a[i] - ma);
    bb += (b[i] - mb) * (b[i] - mb);
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  QNAS_CHECK(a.size() == b.size(), "spearman: series of ", a.size(), " and ", b.size(), " values; expected equal lengths");
  if (a.size() < 2) return 0;
  return pearson(average_ranks(a), average_ranks(b));
}

namespace {

void check_allocation_layer(const AllocationLayer& l) {
  QNAS_CHECK(!l.bits.empty() && l.cost.size() == l.bits.size() && l.sensitivity.size() == l.bits.size(),
             "allocation: layer '", l.layer, "' needs one cost and one sensitivity per bit-width; got ", l.bits.size(),
             " bit-widths, ", l.cost.size(), " costs, ", l.sensitivity.size(), " sensitivities");
  for (size_t k = 1; k < l.bits.size(); ++k)
    QNAS_CHECK(l.bits[k - 1] < l.bits[k] && l.cost[k - 1] <= l.cost[k], "allocation: layer '", l.layer,
               "' needs bit-widths ascending with non-decreasing cost");
}

// A candidate step: lower `layer` from option `from` to `from - 1`.
struct Step {
  double price;  // sensitivity gained per unit of cost saved
  size_t layer;
  size_t from;
  bool operator>(const Step& o) const { return price != o.price ? price > o.price : layer > o.layer; }
};

Step step_of(const std::vector<AllocationLayer>& layers, size_t i, size_t from) {
  const auto& l = layers[i];
  const double saved = l.cost[from] - l.cost[from - 1];
  const double gained = std::max(0.0, l.sensitivity[from - 1] - l.sensitivity[from]);
  return {saved > 0 ? gained / saved : HUGE_VAL, i, from};
}

}  // namespace

Allocation allocate_bits(const std::vector<AllocationLayer>& layers, double budget) {
  double min_cost = 0;
  for (const auto& l : layers) {
    check_allocation_layer(l);
    min_cost += l.cost.front();
  }
  QNAS_CHECK(budget >= min_cost, "allocation: budget ", budget, " is below the smallest reachable cost ", min_cost,
             " (every layer at its lowest bit-width)");
  std::vector<size_t> choice(layers.size());
  double cost = 0;
  std::priority_queue<Step, std::vector<Step>, std::greater<Step>> steps;
  for (size_t i = 0; i < layers.size(); ++i) {
    choice[i] = layers[i].bits.size() - 1;
    cost += layers[i].cost[choice[i]];
    if (choice[i] > 0) steps.push(step_of(layers, i, choice[i]));
  }
  while (cost > budget && !steps.empty()) {
    const auto s = steps.top();
    steps.pop();
    const auto& l = layers[s.layer];
    cost -= l.cost[s.from] - l.cost[s.from - 1];
    choice[s.layer] = s.from - 1;
    if (s.from - 1 > 0) steps.push(step_of(layers, s.layer, s.from - 1));
  }
  Allocation a;
  for (size_t i = 0; i < layers.size(); ++i) {
    a.bits.push_back(layers[i].bits[choice[i]]);
    a.cost += layers[i].cost[choice[i]];
    a.sensitivity += layers[i].sensitivity[choice[i]];
  }
  return a;
}

}  // namespace qnas::quant
