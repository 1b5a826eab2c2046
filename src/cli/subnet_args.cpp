#include "src/cli/subnet_args.hpp"

#include "supernet/checkpoint.hpp"

namespace qnas::cli {

void add_subnet_args(CLI::App& cmd, SubnetArgs& a) {
  add_config_args(cmd, a.config);
  cmd.add_option("--subnet", a.subnet, "largest | smallest | random | SPEC.json")->capture_default_str();
  cmd.add_option("--bits", a.bits, "uniform policy W[/A] on every layer, e.g. 8/8 or 4/8 (W alone: weights only)");
  cmd.add_option("--checkpoint", a.checkpoint, "supernet checkpoint (default <output.dir>/supernet.pt)");
}

OpenSubnet open_subnet(const SubnetArgs& a) {
  const auto config = core::load_config(a.config.path, a.config.sets);
  std::optional<quant::LayerPolicy> bits;
  if (!a.bits.empty()) bits = eval::parse_bits(a.bits);
  eval::check_subnet_word(a.subnet);
  const std::string ckpt = a.checkpoint.empty() ? supernet::checkpoint_path(config.output.dir) : a.checkpoint;
  OpenSubnet out{eval::open_session(config, ckpt), {}};
  out.spec = eval::choose_subnet(out.session.net->space(), a.subnet, bits, config.seed);
  return out;
}

}  // namespace qnas::cli
