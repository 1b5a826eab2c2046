#include "supernet/bn_act.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "src/core/error.hpp"

// Data layout: x viewed as M rows of C contiguous floats (channels-last), M =
// N*H*W. Every pass walks rows in fixed chunks; the inner loops run over
// channels and vectorise.

namespace qnas::supernet {

namespace {

constexpr int64_t kRowsPerChunk = 256;

// Activation value and derivative on the pre-activation z (per element).
inline float act_value(float z, Act a) {
  switch (a) {
    case Act::kRelu: return z > 0.f ? z : 0.f;
    case Act::kHswish: return z <= -3.f ? 0.f : (z >= 3.f ? z : z * (z + 3.f) * (1.f / 6.f));
    case Act::kHsigmoid: return z <= -3.f ? 0.f : (z >= 3.f ? 1.f : (z + 3.f) * (1.f / 6.f));
    case Act::kGelu:  // not after BN in any family (with_act refuses it)
    case Act::kNone: break;
  }
  return z;
}
inline float act_grad(float z, Act a) {
  switch (a) {
    case Act::kRelu: return z > 0.f ? 1.f : 0.f;
    case Act::kHswish: return z < -3.f ? 0.f : (z > 3.f ? 1.f : (2.f * z + 3.f) * (1.f / 6.f));
    case Act::kHsigmoid: return z < -3.f || z > 3.f ? 0.f : 1.f / 6.f;
    case Act::kGelu:  // not after BN in any family (with_act refuses it)
    case Act::kNone: break;
  }
  return 1.f;
}

// sum and sum of squares per channel over rows [r0, r1).
__attribute__((target_clones("avx512f", "avx2", "default")))
void chunk_moments(const float* __restrict x, int64_t r0, int64_t r1, int64_t c, float* __restrict sum,
                   float* __restrict sq) {
  std::fill(sum, sum + c, 0.f);
  std::fill(sq, sq + c, 0.f);
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict row = x + r * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      sum[ch] += row[ch];
      sq[ch] += row[ch] * row[ch];
    }
  }
}

template <Act A>
__attribute__((target_clones("avx512f", "avx2", "default")))
void chunk_forward(const float* __restrict x, int64_t r0, int64_t r1, int64_t c, const float* __restrict a,
                   const float* __restrict b, float* __restrict y) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t ch = 0; ch < c; ++ch) y[r * c + ch] = act_value(x[r * c + ch] * a[ch] + b[ch], A);
}

// Per channel over rows [r0, r1): sum of g and of g * xhat, g = gy * act'(z).
template <Act A>
__attribute__((target_clones("avx512f", "avx2", "default")))
void chunk_backward_sums(const float* __restrict x, const float* __restrict gy, int64_t r0, int64_t r1, int64_t c,
                         const float* __restrict a, const float* __restrict b, const float* __restrict mean,
                         const float* __restrict invstd, float* __restrict sg, float* __restrict sgx) {
  std::fill(sg, sg + c, 0.f);
  std::fill(sgx, sgx + c, 0.f);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float xv = x[r * c + ch];
      const float g = gy[r * c + ch] * act_grad(xv * a[ch] + b[ch], A);
      sg[ch] += g;
      sgx[ch] += g * (xv - mean[ch]) * invstd[ch];
    }
}

// gx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)).
template <Act A>
__attribute__((target_clones("avx512f", "avx2", "default")))
void chunk_backward_input(const float* __restrict x, const float* __restrict gy, int64_t r0, int64_t r1, int64_t c,
                          const float* __restrict a, const float* __restrict b, const float* __restrict mean,
                          const float* __restrict invstd, const float* __restrict mg, const float* __restrict mgx,
                          float* __restrict gx) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float xv = x[r * c + ch];
      const float g = gy[r * c + ch] * act_grad(xv * a[ch] + b[ch], A);
      const float xhat = (xv - mean[ch]) * invstd[ch];
      gx[r * c + ch] = a[ch] * (g - mg[ch] - xhat * mgx[ch]);
    }
}

// Runs f(chunk, r0, r1) over fixed chunks of `rows`, in parallel.
template <class F>
void for_chunks(int64_t rows, F f) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) f(k, k * kRowsPerChunk, std::min(rows, (k + 1) * kRowsPerChunk));
  });
}

// Adds chunk partials (chunks x 2 x c floats) in order, in double.
std::pair<std::vector<double>, std::vector<double>> reduce_partials(const std::vector<float>& p, int64_t chunks,
                                                                    int64_t c) {
  std::vector<double> s0(size_t(c), 0.0), s1(size_t(c), 0.0);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t ch = 0; ch < c; ++ch) {
      s0[size_t(ch)] += p[size_t((k * 2) * c + ch)];
      s1[size_t(ch)] += p[size_t((k * 2 + 1) * c + ch)];
    }
  return {s0, s1};
}

BnSync& bn_sync() {
  static BnSync sync;
  return sync;
}

// Adds `a` and `b` (per-channel sums) and the row count `m` over the
// processes when BN is synchronised; returns the rows they cover.
double sum_over_processes(std::vector<double>& a, std::vector<double>& b, int64_t m) {
  if (!bn_sync().sum) return double(m);
  std::vector<double> v(a);
  v.insert(v.end(), b.begin(), b.end());
  v.push_back(double(m));
  bn_sync().sum(v);
  std::copy(v.begin(), v.begin() + long(a.size()), a.begin());
  std::copy(v.begin() + long(a.size()), v.end() - 1, b.begin());
  return v.back();
}

template <template <Act> class K, class... Args>
void with_act(Act a, Args&&... args) {
  switch (a) {
    case Act::kRelu: K<Act::kRelu>::run(args...); break;
    case Act::kHswish: K<Act::kHswish>::run(args...); break;
    case Act::kNone: K<Act::kNone>::run(args...); break;
    case Act::kHsigmoid:
    case Act::kGelu:
      QNAS_THROW("batch_norm_act: ", act_name(a), " after BN is not a supernet layer; expected relu, hswish or none");
  }
}

template <Act A> struct Forward {
  template <class... T> static void run(T... a) { chunk_forward<A>(a...); }
};
template <Act A> struct BackwardSums {
  template <class... T> static void run(T... a) { chunk_backward_sums<A>(a...); }
};
template <Act A> struct BackwardInput {
  template <class... T> static void run(T... a) { chunk_backward_input<A>(a...); }
};

// x as rows of channels, plus the tensor shape to restore.
at::Tensor as_rows(const at::Tensor& x) {
  if (x.dim() == 2) return x.contiguous();
  return x.contiguous(at::MemoryFormat::ChannelsLast).permute({0, 2, 3, 1}).reshape({-1, x.size(1)});
}
at::Tensor from_rows(const at::Tensor& rows, const at::Tensor& like) {
  if (like.dim() == 2) return rows;
  return rows.reshape({like.size(0), like.size(2), like.size(3), like.size(1)}).permute({0, 3, 1, 2});
}

class BatchNormActFunction : public torch::autograd::Function<BatchNormActFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& gamma,
                            const at::Tensor& beta, int64_t act) {
    const auto rows = as_rows(x);
    const int64_t m = rows.size(0), c = rows.size(1), chunks = (m + kRowsPerChunk - 1) / kRowsPerChunk;
    std::vector<float> partial(size_t(chunks * 2 * c));
    const float* xd = rows.data_ptr<float>();
    for_chunks(m, [&](int64_t k, int64_t r0, int64_t r1) {
      chunk_moments(xd, r0, r1, c, &partial[size_t(k * 2 * c)], &partial[size_t((k * 2 + 1) * c)]);
    });
    auto [sum, sq] = reduce_partials(partial, chunks, c);
    const double rows_all = sum_over_processes(sum, sq, m);
    auto mean = at::empty({c}, at::kFloat), invstd = at::empty({c}, at::kFloat);
    float *meand = mean.data_ptr<float>(), *invd = invstd.data_ptr<float>();
    for (int64_t ch = 0; ch < c; ++ch) {
      const double mu = sum[size_t(ch)] / rows_all;
      const double var = std::max(0.0, sq[size_t(ch)] / rows_all - mu * mu);
      meand[ch] = float(mu);
      invd[ch] = float(1.0 / std::sqrt(var + kBnEps));
    }
    const auto scale = (gamma.detach() * invstd).contiguous();
    const auto shift = (beta.detach() - mean * scale).contiguous();
    auto out = at::empty_like(rows);
    const float *ad = scale.data_ptr<float>(), *bd = shift.data_ptr<float>();
    float* yd = out.data_ptr<float>();
    for_chunks(m, [&](int64_t, int64_t r0, int64_t r1) {
      with_act<Forward>(Act(act), xd, r0, r1, c, ad, bd, yd);
    });
    ctx->save_for_backward({rows, gamma, mean, invstd, scale, shift});
    ctx->saved_data["act"] = act;
    ctx->saved_data["synced"] = bool(bn_sync().sum);
    ctx->saved_data["dim"] = x.dim();
    ctx->saved_data["shape"] = x.sizes().vec();
    return x.dim() == 2 ? out : from_rows(out, x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &rows = saved[0], &mean = saved[2], &invstd = saved[3], &scale = saved[4], &shift = saved[5];
    const Act act = Act(ctx->saved_data["act"].toInt());
    const auto shape = ctx->saved_data["shape"].toIntVector();
    const at::Tensor gy = shape.size() == 2 ? grads[0].contiguous() : as_rows(grads[0]);
    const int64_t m = rows.size(0), c = rows.size(1), chunks = (m + kRowsPerChunk - 1) / kRowsPerChunk;
    const float *xd = rows.data_ptr<float>(), *gyd = gy.data_ptr<float>(), *ad = scale.data_ptr<float>(),
                *bd = shift.data_ptr<float>(), *md = mean.data_ptr<float>(), *id = invstd.data_ptr<float>();
    std::vector<float> partial(size_t(chunks * 2 * c));
    for_chunks(m, [&](int64_t k, int64_t r0, int64_t r1) {
      with_act<BackwardSums>(act, xd, gyd, r0, r1, c, ad, bd, md, id, &partial[size_t(k * 2 * c)],
                             &partial[size_t((k * 2 + 1) * c)]);
    });
    const auto [sg, sgx] = reduce_partials(partial, chunks, c);
    // gamma and beta get this process's share (the trainer averages them
    // over the processes); x's gradient goes through the whole batch's statistics.
    auto sg_all = sg, sgx_all = sgx;
    double rows_all = double(m);
    if (ctx->saved_data["synced"].toBool()) {
      QNAS_CHECK(bn_sync().sum, "batch_norm_act: synchronised in the forward but not in the backward");
      rows_all = sum_over_processes(sg_all, sgx_all, m);
    }
    auto grad_gamma = at::empty({c}, at::kFloat), grad_beta = at::empty({c}, at::kFloat);
    auto mg = at::empty({c}, at::kFloat), mgx = at::empty({c}, at::kFloat);
    float *gg = grad_gamma.data_ptr<float>(), *gb = grad_beta.data_ptr<float>(), *mgp = mg.data_ptr<float>(),
          *mgxp = mgx.data_ptr<float>();
    for (int64_t ch = 0; ch < c; ++ch) {
      gb[ch] = float(sg[size_t(ch)]);
      gg[ch] = float(sgx[size_t(ch)]);
      mgp[ch] = float(sg_all[size_t(ch)] / rows_all);
      mgxp[ch] = float(sgx_all[size_t(ch)] / rows_all);
    }
    auto gx = at::empty_like(rows);
    const float *mgd = mg.data_ptr<float>(), *mgxd = mgx.data_ptr<float>();
    float* gxd = gx.data_ptr<float>();
    for_chunks(m, [&](int64_t, int64_t r0, int64_t r1) {
      with_act<BackwardInput>(act, xd, gyd, r0, r1, c, ad, bd, md, id, mgd, mgxd, gxd);
    });
    const at::Tensor grad_x =
        shape.size() == 2 ? gx : gx.reshape({shape[0], shape[2], shape[3], shape[1]}).permute({0, 3, 1, 2});
    return {grad_x, grad_gamma, grad_beta, at::Tensor()};
  }
};

}  // namespace

void set_bn_sync(BnSync sync) { bn_sync() = std::move(sync); }

at::Tensor batch_norm_act(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, Act act) {
  QNAS_CHECK(x.scalar_type() == at::kFloat && (x.dim() == 4 || x.dim() == 2) && gamma.size(0) == x.size(1),
             "batch_norm_act: expected float N x C (x H x W) input and C affine parameters");
  return BatchNormActFunction::apply(x, gamma, beta, int64_t(act));
}

}  // namespace qnas::supernet
