// Fused batch norm + activation agrees with a float64 reference and does not
// depend on the thread count.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <ostream>

#include "supernet/acts.hpp"
#include "supernet/bn_act.hpp"

using namespace qnas;
using supernet::Act;

namespace {

struct BnActCase {
  std::vector<int64_t> shape;
  Act act;
};

// How gtest shows a case in its messages (its default prints the bytes).
void PrintTo(const BnActCase& c, std::ostream* os) {
  for (size_t i = 0; i < c.shape.size(); ++i) *os << (i ? "x" : "") << c.shape[i];
  *os << " " << supernet::act_name(c.act);
}

class BnActGrad : public ::testing::TestWithParam<BnActCase> {};

// Elements whose pre-activation is near a kink of the activation (where its
// derivative jumps) can legitimately flip between float implementations.
at::Tensor away_from_kinks(const at::Tensor& z, Act act) {
  if (act == Act::kRelu) return z.abs() > 1e-3;
  if (act == Act::kHswish) return ((z - 3).abs() > 1e-3) & ((z + 3).abs() > 1e-3);
  return at::ones_like(z, at::kBool);
}

}  // namespace

TEST_P(BnActGrad, MatchesFloat64Reference) {
  const auto p = GetParam();
  at::manual_seed(3);
  auto x = (at::randn(p.shape) * 2 + 0.7);
  if (x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  x.requires_grad_();
  const int64_t c = p.shape[1];
  auto gamma = (at::rand({c}) + 0.5).requires_grad_();
  auto beta = (at::randn({c}) * 0.3).requires_grad_();
  const auto y = supernet::batch_norm_act(x, gamma, beta, p.act);
  const auto gy = at::randn_like(y);
  const auto g = torch::autograd::grad({y}, {x, gamma, beta}, {gy});

  auto xd = x.detach().to(at::kDouble).requires_grad_();
  auto gd = gamma.detach().to(at::kDouble).requires_grad_();
  auto bd = beta.detach().to(at::kDouble).requires_grad_();
  const auto z = at::batch_norm(xd, gd, bd, {}, {}, true, 0.1, supernet::kBnEps, false);
  const auto ref = supernet::apply_act(z, p.act);
  const auto rg = torch::autograd::grad({ref}, {xd, gd, bd}, {gy.to(at::kDouble)});
  EXPECT_TRUE(at::allclose(y.to(at::kDouble), ref, 1e-4, 1e-5)) << (y.to(at::kDouble) - ref).abs().max().item<double>();
  const auto mask = away_from_kinks(z.detach(), p.act);
  EXPECT_TRUE(at::allclose(g[0].to(at::kDouble).masked_select(mask), rg[0].masked_select(mask), 1e-3, 1e-4));
  if (p.act == Act::kNone) {
    EXPECT_TRUE(at::allclose(g[1].to(at::kDouble), rg[1], 1e-3, 1e-3));
    EXPECT_TRUE(at::allclose(g[2].to(at::kDouble), rg[2], 1e-3, 1e-3));
  }
  if (x.dim() == 4) {
    EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BnActGrad,
                         ::testing::Values(BnActCase{{8, 16, 7, 7}, Act::kNone}, BnActCase{{8, 16, 7, 7}, Act::kRelu},
                                           BnActCase{{6, 24, 5, 9}, Act::kHswish}, BnActCase{{300, 40}, Act::kHswish},
                                           BnActCase{{3, 8, 28, 28}, Act::kRelu}, BnActCase{{1, 8, 3, 3}, Act::kNone}));

TEST(BnAct, SameResultOnOneAndTwoThreads) {
  at::manual_seed(0);
  auto x = at::randn({16, 32, 12, 12}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  auto gamma = at::ones({32}).requires_grad_(), beta = at::zeros({32}).requires_grad_();
  const auto gy = at::randn({16, 32, 12, 12});
  std::vector<std::vector<at::Tensor>> results;
  const int threads = at::get_num_threads();
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    const auto y = supernet::batch_norm_act(x, gamma, beta, Act::kHswish);
    auto g = torch::autograd::grad({y}, {x, gamma, beta}, {gy});
    g.push_back(y.detach());
    results.push_back(g);
  }
  at::set_num_threads(threads);
  for (size_t i = 0; i < results[0].size(); ++i) EXPECT_TRUE(results[0][i].equal(results[1][i])) << i;
}
