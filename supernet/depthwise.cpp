#include "supernet/depthwise.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cstring>

#include "src/core/error.hpp"

// Layout: everything channels-last (N, H, W, C in memory). Kernel size and
// stride are template parameters so the tap loops unroll fully; a tap is
// skipped when it falls in the padding (bounds change only at the image
// edges, so the branches predict well). One block of W channels is one GCC
// vector, kept in registers:
//   grad_w: per image and channel block, k*k accumulators in registers,
//           summed per fixed chunk of images; the chunk partials are added
//           in order, so the result does not depend on the thread count;
//   grad_x: per image and channel block, the block's k*k weights in
//           registers, scattered into the image's gradient (zeroed first,
//           while it is in cache).
// The kernels are compiled for AVX-512, AVX2 and baseline x86-64 and chosen
// at run time.

namespace qnas::supernet {

namespace {

struct Geometry {
  int64_t n, c, h, w, k, stride, pad, oh, ow;
};

Geometry geometry(const at::Tensor& x, const at::Tensor& w, int64_t stride) {
  Geometry g;
  g.n = x.size(0);
  g.c = x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.k = w.size(-1);
  g.stride = stride;
  g.pad = g.k / 2;
  g.oh = (g.h + 2 * g.pad - g.k) / stride + 1;
  g.ow = (g.w + 2 * g.pad - g.k) / stride + 1;
  return g;
}

template <int W> struct VecT;
template <> struct VecT<16> { typedef float type __attribute__((vector_size(64), aligned(4))); };
template <> struct VecT<8> { typedef float type __attribute__((vector_size(32), aligned(4))); };

template <class V> __attribute__((always_inline)) inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V> __attribute__((always_inline)) inline void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }

// Taps of output pixel (oy, ox) that land inside the image: [lo, hi) per axis.
struct TapRange {
  int lo, hi;
};
inline TapRange tap_range(int64_t o, int64_t stride, int64_t pad, int64_t size, int k) {
  const int64_t i0 = o * stride - pad;
  return {int(std::max<int64_t>(0, -i0)), int(std::min<int64_t>(k, size - i0))};
}

// For every output pixel of one image, `pixel(p)` (p: the pixel's index)
// returns the action for that pixel's taps, which is called with (q, t) for
// every kernel tap t = ky*K + kx landing inside the image, q being the index
// of the input pixel it reads.
template <int K, int S, class Pixel>
__attribute__((always_inline)) inline void for_each_tap(const Geometry& g, Pixel&& pixel) {
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const TapRange ry = tap_range(oy, S, g.pad, g.h, K);
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const TapRange rx = tap_range(ox, S, g.pad, g.w, K);
      auto tap = pixel(oy * g.ow + ox);
      const int64_t base = (oy * S - g.pad) * g.w + (ox * S - g.pad);
#pragma GCC unroll 8
      for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 8
        for (int kx = 0; kx < K; ++kx)
          if (ky >= ry.lo && ky < ry.hi && kx >= rx.lo && kx < rx.hi) tap(base + ky * g.w + kx, ky * K + kx);
    }
  }
}

// grad_w[tap, c0:c0+W] += sum over one image's output pixels of gy * x.
template <int K, int S, int W>
__attribute__((always_inline)) inline void grad_w_block(const float* x, const float* gy, float* gw,
                                                        const Geometry& g, int64_t c0) {
  using V = typename VecT<W>::type;
  V acc[K * K];
  const int64_t c = g.c;
  for (int t = 0; t < K * K; ++t) acc[t] = load<V>(gw + t * c + c0);
  for_each_tap<K, S>(g, [&](int64_t p) {
    const V gv = load<V>(gy + p * c + c0);
    return [&, gv](int64_t q, int t) { acc[t] += gv * load<V>(x + q * c + c0); };
  });
  for (int t = 0; t < K * K; ++t) store(gw + t * c + c0, acc[t]);
}

// Input gradient of one image, channels c0:c0+W: scatter gy * w.
template <int K, int S, int W>
__attribute__((always_inline)) inline void grad_x_block(const float* gy, const float* wt, float* gx,
                                                        const Geometry& g, int64_t c0) {
  using V = typename VecT<W>::type;
  V wv[K * K];
  const int64_t c = g.c;
  for (int t = 0; t < K * K; ++t) wv[t] = load<V>(wt + t * c + c0);
  for_each_tap<K, S>(g, [&](int64_t p) {
    const V gv = load<V>(gy + p * c + c0);
    return [&, gv](int64_t q, int t) {
      float* dst = gx + q * c + c0;
      store(dst, load<V>(dst) + gv * wv[t]);
    };
  });
}

// Calls F<K, S, W> for the geometry's kernel and stride and block width.
#define QNAS_DW_DISPATCH(F, W, ...)                                                          \
  switch (g.k * 10 + int(g.stride)) {                                                       \
    case 31: F<3, 1, W>(__VA_ARGS__); break;                                                \
    case 32: F<3, 2, W>(__VA_ARGS__); break;                                                \
    case 51: F<5, 1, W>(__VA_ARGS__); break;                                                \
    case 52: F<5, 2, W>(__VA_ARGS__); break;                                                \
    case 71: F<7, 1, W>(__VA_ARGS__); break;                                                \
    case 72: F<7, 2, W>(__VA_ARGS__); break;                                                \
    default: QNAS_THROW("depthwise backward: kernel ", g.k, " stride ", g.stride,           \
                        " unsupported; expected kernel 3/5/7 and stride 1/2");               \
  }

// Both passes over one image, every channel block, per ISA.
#define QNAS_DW_KERNELS(SUFFIX, TARGET)                                                        \
  TARGET void image_##SUFFIX(const float* x, const float* gy, const float* wt, float* gw,      \
                             float* gx, const Geometry& g) {                                   \
    for (int64_t c0 = 0; c0 < g.c; c0 += 16) {                                                 \
      if (c0 + 16 <= g.c) {                                                                    \
        QNAS_DW_DISPATCH(grad_w_block, 16, x, gy, gw, g, c0)                                   \
        QNAS_DW_DISPATCH(grad_x_block, 16, gy, wt, gx, g, c0)                                  \
      } else {                                                                                 \
        QNAS_DW_DISPATCH(grad_w_block, 8, x, gy, gw, g, c0)                                    \
        QNAS_DW_DISPATCH(grad_x_block, 8, gy, wt, gx, g, c0)                                   \
      }                                                                                        \
    }                                                                                          \
  }

QNAS_DW_KERNELS(avx512, __attribute__((target("avx512f"))))
QNAS_DW_KERNELS(avx2, __attribute__((target("avx2,fma"))))
QNAS_DW_KERNELS(generic, )

constexpr int64_t kImagesPerChunk = 8;

using ImageKernel = void (*)(const float*, const float*, const float*, float*, float*, const Geometry&);

ImageKernel image_kernel() {
  static const ImageKernel k = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return image_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return image_avx2;
    return image_generic;
  }();
  return k;
}

class DepthwiseConvFunction : public torch::autograd::Function<DepthwiseConvFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            int64_t stride) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    const int64_t pad = w.size(-1) / 2;
    return at::conv2d(x, w, {}, {stride, stride}, {pad, pad}, {1, 1}, x.size(1));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [gx, gw] = depthwise_conv2d_backward(saved[0], saved[1], grads[0], ctx->saved_data["stride"].toInt());
    return {gx, gw, at::Tensor()};
  }
};

}  // namespace

std::pair<at::Tensor, at::Tensor> depthwise_conv2d_backward(const at::Tensor& x_in, const at::Tensor& w,
                                                            const at::Tensor& grad_y, int64_t stride) {
  QNAS_CHECK(x_in.scalar_type() == at::kFloat && x_in.dim() == 4 && w.size(1) == 1 && w.size(0) == x_in.size(1),
             "depthwise_conv2d: expected float N x C x H x W input and C x 1 x k x k weight");
  const Geometry g = geometry(x_in, w, stride);
  QNAS_CHECK(g.c % 8 == 0, "depthwise backward: ", g.c, " channels; expected a multiple of 8");
  const auto x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  const auto gy = grad_y.contiguous(at::MemoryFormat::ChannelsLast);
  const auto wt = w.detach().reshape({g.c, g.k * g.k}).t().contiguous();  // (k*k) x C
  auto gx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  // Weight-gradient partials per fixed chunk of images, added in chunk order:
  // the same sums whatever the thread count.
  const int64_t chunks = (g.n + kImagesPerChunk - 1) / kImagesPerChunk;
  auto partial = at::zeros({chunks, g.k * g.k, g.c}, at::kFloat);
  const ImageKernel kernel = image_kernel();
  const int64_t c = g.c, in_img = g.h * g.w * c, out_img = g.oh * g.ow * c;
  const float* xd = x.data_ptr<float>();
  const float* gyd = gy.data_ptr<float>();
  const float* wtd = wt.data_ptr<float>();
  float* gxd = gx.data_ptr<float>();
  float* pd = partial.data_ptr<float>();
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t n_end = std::min(g.n, (chunk + 1) * kImagesPerChunk);
      for (int64_t n = chunk * kImagesPerChunk; n < n_end; ++n) {
        std::memset(gxd + n * in_img, 0, size_t(in_img) * sizeof(float));
        kernel(xd + n * in_img, gyd + n * out_img, wtd, pd + chunk * g.k * g.k * c, gxd + n * in_img, g);
      }
    }
  });
  const auto gw = partial.sum(0).t().reshape({g.c, 1, g.k, g.k}).contiguous();
  return {gx, gw};
}

at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& w, int64_t stride) {
  return DepthwiseConvFunction::apply(x, w, stride);
}

}  // namespace qnas::supernet
