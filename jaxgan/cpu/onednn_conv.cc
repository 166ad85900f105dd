// 2-D convolutions for XLA:CPU through oneDNN, as one XLA FFI handler.
//
// XLA:CPU's own convolution kernels take ~70% of a DCGAN step on a 2-core AVX-512 CPU;
// oneDNN's (the ones TensorFlow and PyTorch use on x86) are faster for GAN shapes. The
// handler computes one of the three convolution maps, all NHWC activations / HWIO kernel:
//   kind 0  forward          (x [N,H,W,C], w [KH,KW,C,O]) -> y  [N,OH,OW,O]
//   kind 1  backward data    (dy [N,OH,OW,O], w)          -> dx [N,H,W,C]
//   kind 2  backward weights (x, dy)                      -> dw [KH,KW,C,O]
// with strides (sh, sw) and padding (pt, pb, pl, pr). Primitives (and the reorders of
// kernels into oneDNN's blocked layout) are created once per shape and cached.
// Built by jaxgan/cpu/onednn.py; see the docstring there.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

struct Plan {
  dnnl::primitive conv;
  // The kernel-side operand (w for kinds 0/1, dw for kind 2) in oneDNN's chosen layout.
  memory::desc user_w, prim_w;
  bool reorder_w = false;
  dnnl::reorder w_reorder;  // user -> prim (kinds 0/1) or prim -> user (kind 2)
  memory::desc x_md, y_md;  // activations: nhwc, as XLA holds them
  size_t scratch_bytes = 0;
  std::string impl;

  template <typename Primitive, typename Desc>
  void Set(const Desc& pd, const memory::desc& w) {
    conv = Primitive(pd);
    prim_w = w;
    impl = pd.impl_info_str();
    scratch_bytes = pd.scratchpad_desc().get_size();
  }
};

std::mutex g_mu;
std::unordered_map<std::string, std::shared_ptr<Plan>>& Cache() {
  static auto* c = new std::unordered_map<std::string, std::shared_ptr<Plan>>();
  return *c;
}

std::shared_ptr<Plan> MakePlan(int64_t kind, memory::dims xd, memory::dims wd, memory::dims yd,
                               memory::dims strides, memory::dims pad_l, memory::dims pad_r) {
  auto& eng = Engine();
  auto plan = std::make_shared<Plan>();
  plan->x_md = memory::desc(xd, dt::f32, tag::nhwc);
  plan->y_md = memory::desc(yd, dt::f32, tag::nhwc);
  plan->user_w = memory::desc(wd, dt::f32, tag::hwio);
  memory::desc any_w(wd, dt::f32, tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // ours: one per thread
  auto fwd_pd = dnnl::convolution_forward::primitive_desc(
      eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      plan->x_md, any_w, plan->y_md, strides, pad_l, pad_r, attr);
  if (kind == 0) {
    plan->Set<dnnl::convolution_forward>(fwd_pd, fwd_pd.weights_desc());
  } else if (kind == 1) {
    dnnl::convolution_backward_data::primitive_desc pd(
        eng, dnnl::algorithm::convolution_direct, plan->x_md, any_w, plan->y_md, strides,
        pad_l, pad_r, fwd_pd, attr);
    plan->Set<dnnl::convolution_backward_data>(pd, pd.weights_desc());
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        eng, dnnl::algorithm::convolution_direct, plan->x_md, any_w, plan->y_md, strides,
        pad_l, pad_r, fwd_pd, attr);
    plan->Set<dnnl::convolution_backward_weights>(pd, pd.diff_weights_desc());
  }
  plan->reorder_w = plan->prim_w != plan->user_w;
  if (plan->reorder_w) {
    plan->w_reorder = kind == 2
        ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, plan->prim_w, eng, plan->user_w))
        : dnnl::reorder(dnnl::reorder::primitive_desc(eng, plan->user_w, eng, plan->prim_w));
  }
  return plan;
}

std::shared_ptr<Plan> GetPlan(int64_t kind, const memory::dims& xd, const memory::dims& wd,
                              const memory::dims& yd, const memory::dims& strides,
                              const memory::dims& pad_l, const memory::dims& pad_r) {
  std::ostringstream key;
  key << kind;
  for (const auto* v : {&xd, &wd, &yd, &strides, &pad_l, &pad_r})
    for (auto d : *v) key << ',' << d;
  std::lock_guard<std::mutex> lock(g_mu);
  auto& cache = Cache();
  auto it = cache.find(key.str());
  if (it != cache.end()) return it->second;
  auto plan = MakePlan(kind, xd, wd, yd, strides, pad_l, pad_r);
  cache.emplace(key.str(), plan);
  return plan;
}

// Scratchpads are per thread (XLA may run two convolutions at once), grown as needed.
thread_local std::vector<char> t_scratch;

void Execute(dnnl::stream& strm, const Plan& plan, int64_t kind, const memory& w_mem, float* a,
             float* b, float* o, float* dw) {
  auto& eng = Engine();
  if (t_scratch.size() < plan.scratch_bytes) t_scratch.resize(plan.scratch_bytes);
  memory scratch(memory::desc({static_cast<memory::dim>(plan.scratch_bytes)}, dt::u8, tag::a),
                 eng, t_scratch.data());
  if (kind == 0) {
    memory x(plan.x_md, eng, a), y(plan.y_md, eng, o);
    plan.conv.execute(strm, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, y},
                             {DNNL_ARG_SCRATCHPAD, scratch}});
  } else if (kind == 1) {
    memory dy(plan.y_md, eng, a), dx(plan.x_md, eng, o);
    plan.conv.execute(strm, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w_mem},
                             {DNNL_ARG_DIFF_SRC, dx}, {DNNL_ARG_SCRATCHPAD, scratch}});
  } else {
    memory x(plan.x_md, eng, a), dy(plan.y_md, eng, b), dw_mem(plan.prim_w, eng, dw);
    plan.conv.execute(strm, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy},
                             {DNNL_ARG_DIFF_WEIGHTS, dw_mem}, {DNNL_ARG_SCRATCHPAD, scratch}});
  }
  strm.wait();
}

ffi::Error ConvImpl(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                    ffi::ResultBuffer<ffi::F32> out, int64_t kind, int64_t sh, int64_t sw,
                    int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  if (kind < 0 || kind > 2) return ffi::Error::InvalidArgument("jaxgan_conv: kind must be 0, 1 or 2");
  // Logical dims in oneDNN order: activations {N, C, H, W}, kernel {O, I, KH, KW}.
  auto x_buf = kind == 1 ? out->dimensions() : a.dimensions();
  auto y_buf = kind == 0 ? out->dimensions() : (kind == 1 ? a.dimensions() : b.dimensions());
  auto w_buf = kind == 2 ? out->dimensions() : b.dimensions();
  if (x_buf.size() != 4 || y_buf.size() != 4 || w_buf.size() != 4)
    return ffi::Error::InvalidArgument("jaxgan_conv: operands must be rank 4 (NHWC / HWIO)");
  memory::dims xd = {x_buf[0], x_buf[3], x_buf[1], x_buf[2]};
  memory::dims yd = {y_buf[0], y_buf[3], y_buf[1], y_buf[2]};
  memory::dims wd = {w_buf[3], w_buf[2], w_buf[0], w_buf[1]};
  try {
    auto plan = GetPlan(kind, xd, wd, yd, {sh, sw}, {pt, pl}, {pb, pr});
    auto& eng = Engine();
    dnnl::stream strm(eng);
    float* w_user = kind == 2 ? out->typed_data() : b.typed_data();
    memory w_user_mem(plan->user_w, eng, w_user);
    memory w_mem = plan->reorder_w ? memory(plan->prim_w, eng) : w_user_mem;
    if (plan->reorder_w && kind != 2) {
      plan->w_reorder.execute(strm, w_user_mem, w_mem);
      strm.wait();
    }
    Execute(strm, *plan, kind, w_mem, a.typed_data(), b.typed_data(), out->typed_data(),
            static_cast<float*>(w_mem.get_data_handle()));
    if (kind == 2 && plan->reorder_w) {
      plan->w_reorder.execute(strm, w_mem, w_user_mem);
      strm.wait();
    }
  } catch (const std::exception& e) {  // dnnl::error (e.g. inconsistent shapes), bad_alloc
    return ffi::Error::Internal(std::string("jaxgan_conv (oneDNN): ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxganConv, ConvImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("sh")
                                  .Attr<int64_t>("sw")
                                  .Attr<int64_t>("pt")
                                  .Attr<int64_t>("pb")
                                  .Attr<int64_t>("pl")
                                  .Attr<int64_t>("pr"));

// For tests and diagnostics: the oneDNN implementation chosen for a shape ("jit:avx512..."),
// written into buf (NUL-terminated, truncated to n). Returns 0 on success.
extern "C" int jaxgan_conv_impl_name(int64_t kind, const int64_t* x_nhwc, const int64_t* w_hwio,
                                     const int64_t* y_nhwc, int64_t sh, int64_t sw, int64_t pt,
                                     int64_t pb, int64_t pl, int64_t pr, char* buf, int64_t n) {
  try {
    memory::dims xd = {x_nhwc[0], x_nhwc[3], x_nhwc[1], x_nhwc[2]};
    memory::dims yd = {y_nhwc[0], y_nhwc[3], y_nhwc[1], y_nhwc[2]};
    memory::dims wd = {w_hwio[3], w_hwio[2], w_hwio[0], w_hwio[1]};
    auto plan = GetPlan(kind, xd, wd, yd, {sh, sw}, {pt, pl}, {pb, pr});
    std::snprintf(buf, n, "%s", plan->impl.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(buf, n, "%s", e.what());
    return 1;
  }
}
