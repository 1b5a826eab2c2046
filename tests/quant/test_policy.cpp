// Layer policies: JSON round trip and validation, and the methods' trait
// table that decides which bits each method takes and how it deploys.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "src/core/error.hpp"
#include "src/quant/policy.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

TEST(Policy, JsonRoundTripAndValidation) {
  quant::LayerPolicy p;
  p.weight_bits = 4;
  p.act_bits = 8;
  nlohmann::json j = p;
  EXPECT_EQ(quant::policy_from_json(j, "x"), p);
  EXPECT_EQ(quant::policy_label(p), "w4a8");
  EXPECT_THROW(quant::policy_from_json({{"weight_bits", 5}, {"act_bits", 8}}, "x"), Error);
  try {
    quant::policy_from_json({{"weight_bits", 8}, {"act_bits", 4}}, "layer s0.b0.dw");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer s0.b0.dw: act_bits 4; expected one of {8, 32}"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(quant::policy_from_json({{"wbits", 8}}, "x"), Error);
  EXPECT_THROW(quant::policy_from_json({{"weight_bits", "8"}}, "x"), Error);
}

TEST(Policy, MethodTraitsDecideBitsAndForm) {
  EXPECT_EQ(quant::method_names(), (std::vector<std::string>{"rtn", "gptq", "decoupleq", "smoothquant", "admm_cp", "cp_rtn"}));
  for (const auto& m : quant::method_table()) {
    for (int w : quant::kLegalWeightBits)
      for (int a : quant::kLegalActBits) {
        quant::LayerPolicy p{w, a, m.name, {}};
        const bool applies = quant::method_applies(m.name, w, a);
        EXPECT_EQ(applies, w <= m.max_weight_bits && (!m.w8a8_only || (w == 8 && a == 8))) << m.name << " w" << w << "a" << a;
        // A policy is valid exactly where its method applies.
        bool valid = true;
        try {
          quant::check_policy(p, "x");
        } catch (const Error&) {
          valid = false;
        }
        EXPECT_EQ(valid, applies) << m.name << " w" << w << "a" << a;
        if (applies && w < 32) {
          EXPECT_EQ(p.general_grid(), m.free_offsets) << m.name;
          EXPECT_EQ(p.factorizes(), m.factorizes) << m.name;
        }
      }
  }
  const auto& gptq = quant::method_traits("gptq");
  EXPECT_TRUE(gptq.needs_hessian);
  // Grouped (depthwise) convs are never factorized: they deploy the RTN grid.
  const quant::LayerPolicy cp{4, 8, "admm_cp", {}}, fitted{4, 8, "gptq", {}}, rtn{4, 8, "rtn", {}};
  EXPECT_TRUE(cp.factorizes_layer(false));
  EXPECT_FALSE(cp.factorizes_layer(true));
  EXPECT_FALSE(cp.deploys_rtn_grid(false));
  EXPECT_TRUE(cp.deploys_rtn_grid(true));
  EXPECT_FALSE(fitted.deploys_rtn_grid(true));
  EXPECT_TRUE(rtn.deploys_rtn_grid(false));
  EXPECT_FALSE((quant::LayerPolicy{32, 8, "rtn", {}}).deploys_rtn_grid(false));
  EXPECT_EQ(gptq.max_weight_bits, 8);
  EXPECT_TRUE(quant::method_traits("smoothquant").w8a8_only);
  EXPECT_TRUE(quant::method_traits("decoupleq").tunes_blocks);
  qnas::testing::expect_error([] { quant::method_traits("awq"); }, {"method 'awq'; expected one of rtn, gptq"});
}
