// A kernel's arguments, declared once, by name and kind; everything else follows from that list.
//
//   #define RK_ARGS_lstm_fwd(X) X(i64, b) X(i64, H) X(out, acts) X(in, cp) ...
//   RK_KERNEL(lstm_fwd) {              // template <typename T> void lstm_fwd(const lstm_fwd_args<T>& a)
//     ... a.b, a.H, a.acts ...          // the arguments by name; T is float or double
//   }
//
// RK_KERNEL expands the list into: the struct lstm_fwd_args<T> (one member per argument), the
// C ABI functions rk_lstm_fwd_f32 / rk_lstm_fwd_f64 (the arguments in the listed order), and a
// line of the library's manifest, "lstm_fwd i64:b i64:H out:acts in:cp ...", returned by
// rk_manifest(). rnnkit/kernels/__init__.py reads the manifest: the ctypes argument types and
// the by-name Python call come from it, so no signature is written a second time.
//
// Kinds (what C receives / what Python hands over by name):
//   i64   int64_t          an int                   real  T (float / double)  a float
//   in    const T*         a tensor of the dtype    out   T*                  a tensor (written)
//   opt   const T*         a tensor, or None        optout T*                 a tensor, or None
//   plan  const Step*      an int64 tensor (n, 4)   idx   const int64_t*      an int64 tensor, or None
//   iout  int64_t*         an int64 tensor (written)
//   f64   double           a float                  din   const double*       a float64 tensor
//   addr  void*            an address as ctypes takes it (int, None, byref(...), an array)
#pragma once
#include <cstdint>
#include <string>

#include "common.h"

// Every kernel of the library, one line each: one text shared by all its sources (vague
// linkage), and hidden, so that two builds loaded in one process keep a manifest each.
namespace rk {
__attribute__((visibility("hidden"))) inline std::string& manifest() {
  static std::string text;
  return text;
}
__attribute__((visibility("hidden"))) inline bool declare(const char* line) {
  manifest() += line;
  return true;
}
}  // namespace rk

extern "C" __attribute__((weak)) const char* rk_manifest() { return rk::manifest().c_str(); }

namespace {

template <typename T> struct ArgKind {
  using i64 = int64_t;
  using real = T;
  using in = const T*;
  using out = T*;
  using opt = const T*;
  using optout = T*;
  using plan = const Step*;
  using idx = const int64_t*;
  using iout = int64_t*;
  using f64 = double;
  using din = const double*;
  using addr = void*;
};

}  // namespace

#define RK_MEMBER_(kind, name) typename ArgKind<T>::kind name;
#define RK_PARAM_f32_(kind, name) , ArgKind<float>::kind name
#define RK_PARAM_f64_(kind, name) , ArgKind<double>::kind name
#define RK_NAME_(kind, name) , name
#define RK_DESC_(kind, name) " " #kind ":" #name
#define RK_DROP_FIRST_(first, ...) __VA_ARGS__
#define RK_APPLY_(m, ...) m(__VA_ARGS__)
#define RK_LIST_(...) RK_APPLY_(RK_DROP_FIRST_, __VA_ARGS__)  // ", a, b" -> "a, b"

#define RK_WRAP_(name, T, SFX)                                                                 \
  extern "C" void rk_##name##_##SFX(RK_LIST_(RK_ARGS_##name(RK_PARAM_##SFX##_))) {             \
    name<T>(name##_args<T>{RK_LIST_(RK_ARGS_##name(RK_NAME_))});                               \
  }

#define RK_KERNEL(name)                                                                        \
  template <typename T_> struct name##_args {                                                  \
    using T = T_;                                                                              \
    RK_ARGS_##name(RK_MEMBER_)                                                                 \
  };                                                                                           \
  template <typename T> static void name(const name##_args<T>& a);                             \
  [[maybe_unused]] static const bool name##_declared_ =                                        \
      rk::declare(#name RK_ARGS_##name(RK_DESC_) "\n");                                        \
  RK_WRAP_(name, float, f32)                                                                   \
  RK_WRAP_(name, double, f64)                                                                  \
  template <typename T> static void name(const name##_args<T>& a)
