// torch tensors read and made without importing torch: the input's buffer
// through torch's C DLPack export (torch._C._to_dlpack), results in memory
// allocated here and adopted by torch through a DLPack capsule
// (torch._C._from_dlpack: no copy, no NumPy array). The Python layer hands
// the two functions over once (tensor_setup) when it first sees a tensor;
// until then nothing here reads a tensor.
//
// Users: the softmax / log_softmax / logsumexp fast path
// (tensor_fast_path.cpp) and the one-step sampling calls (gumbel_topk_call,
// sample_call: one_call.h).
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>

namespace ssm::interop {

constexpr int kMaxDims = 64;

// Element types read or made here.
enum class Elem { F32, F64, F16, BF16, I64 };

size_t item_size(Elem e);

// torch._C._to_dlpack and torch._C._from_dlpack, handed over once (kept for
// the process).
void set_torch(PyObject* to_dlpack, PyObject* from_dlpack);

// Are they handed over (a tensor has been seen)?
bool torch_ready();

// What a reader needs of an input tensor or array. `capsule` (torch's DLPack
// export of x) keeps x's memory alive while the kernels read it; its
// destructor gives torch's export back.
struct Input {
  Elem elem;
  const char* data;
  int ndim = 0;
  const int64_t* shape = nullptr;
  pybind11::object capsule;
  int64_t numpy_shape[kMaxDims];
  PyObject* descr = nullptr;  // NumPy input: its dtype (the result's)
};

// A plain CPU tensor's buffer and geometry: float32, float64, float16 or
// bfloat16 (and int64 with `int64`), C-contiguous, non-empty, no grad, not a
// lazy negative view; false (no Python error set) for anything else, which
// the general path then takes (raising its own errors).
bool read_tensor(PyObject* x, Input& in, bool int64 = false);

// A C-contiguous result of `ndim` axes (0: a scalar tensor) of `e`, in one
// 64-byte aligned block; data() is where the caller writes it.
class Result {
 public:
  Result(Elem e, const int64_t* shape, int ndim);
  ~Result();
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  void* data() const;
  // The block as a torch tensor (new reference; the block is then torch's),
  // or null with no error set when torch does not adopt the capsule.
  PyObject* adopt();

  struct Block;  // tensor_interop.cpp

 private:
  Block* block_;
};

}  // namespace ssm::interop
