#include "search/tactics.hpp"

#include "src/eval/metrics.hpp"
#include "supernet/supernet.hpp"

namespace qnas::search {

ProxyFn shape_proxies(const Space& space, const supernet::SupernetImpl& net) {
  return [&space, &net](const Genome& g) { return MetricValues(eval::cost_metrics(net.layer_infos(space.decode(g)))); };
}

}  // namespace qnas::search
