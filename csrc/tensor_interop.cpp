// torch tensors in and out through DLPack capsules: see tensor_interop.h.
#include "tensor_interop.h"

#include <new>

namespace ssm::interop {
namespace {

namespace py = pybind11;

// The DLPack ABI (dlpack.h, version 0.x "dltensor" capsules), the subset used here.
struct DLDevice {
  int32_t device_type;  // kDLCPU = 1
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // kDLInt = 0, kDLFloat = 2, kDLBfloat = 4
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

constexpr size_t kDataAlign = 64;

// torch's objects, handed over by set_torch (kept for the process).
struct Torch {
  PyObject* to_dlpack = nullptr;    // torch._C._to_dlpack
  PyObject* from_dlpack = nullptr;  // torch._C._from_dlpack
  bool ready = false;
};
Torch torch_objects;

// Interned attribute names.
struct Names {
  PyObject *requires_grad, *is_neg;
};
const Names& names() {
  static const Names n = [] {
    auto s = [](const char* text) { return PyUnicode_InternFromString(text); };
    return Names{s("requires_grad"), s("is_neg")};
  }();
  return n;
}

// v (a new reference, or null with an error set) is exactly `want` (a
// borrowed singleton: True, False); v is released and an error cleared.
bool result_is(PyObject* v, PyObject* want) {
  if (!v) {
    PyErr_Clear();
    return false;
  }
  const bool same = v == want;
  Py_DECREF(v);
  return same;
}

bool attribute_is(PyObject* x, PyObject* name, PyObject* want) { return result_is(PyObject_GetAttr(x, name), want); }

bool method_is(PyObject* x, PyObject* name, PyObject* want) {
  return result_is(PyObject_CallMethodNoArgs(x, name), want);
}

// A capsule torch never consumed (an error before adoption) frees its block.
void capsule_destructor(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
    if (m && m->deleter) m->deleter(m);
  } else {
    PyErr_Clear();
  }
}

}  // namespace

// One block holds the DLManagedTensor, its shape and strides, and the data
// (64-byte aligned); the deleter frees it when torch drops the tensor.
struct Result::Block {
  DLManagedTensor managed;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
};

namespace {

constexpr size_t kHeader = (sizeof(Result::Block) + kDataAlign - 1) / kDataAlign * kDataAlign;

void free_block(DLManagedTensor* m) { ::operator delete(static_cast<void*>(m), std::align_val_t(kDataAlign)); }

DLDataType dl_type(Elem e) {
  switch (e) {
    case Elem::I64: return {0, 64, 1};
    case Elem::BF16: return {4, 16, 1};
    default: return {2, static_cast<uint8_t>(8 * item_size(e)), 1};
  }
}

}  // namespace

size_t item_size(Elem e) { return e == Elem::F64 || e == Elem::I64 ? 8 : e == Elem::F32 ? 4 : 2; }

bool torch_ready() { return torch_objects.ready; }

void set_torch(PyObject* to_dlpack, PyObject* from_dlpack) {
  Py_INCREF(to_dlpack);
  Py_INCREF(from_dlpack);
  torch_objects.to_dlpack = to_dlpack;
  torch_objects.from_dlpack = from_dlpack;
  torch_objects.ready = true;
}

bool read_tensor(PyObject* x, Input& in, bool int64) {
  if (!torch_objects.ready) return false;
  const Names& n = names();
  // What DLPack does not carry: requires_grad (Tensor.__dlpack__ refuses it
  // in Python; the C export does not) and a lazy negative view (exported
  // with its un-negated buffer). Real dtypes have no conjugate bit.
  if (!attribute_is(x, n.requires_grad, Py_False) || !method_is(x, n.is_neg, Py_False)) return false;
  // One C call for the pointer, shape, strides, dtype and device; it raises
  // for layouts without a strided buffer (sparse, mkldnn, nested) and for
  // the meta device.
  PyObject* capsule = PyObject_CallOneArg(torch_objects.to_dlpack, x);
  if (!capsule) {
    PyErr_Clear();
    return false;
  }
  in.capsule = py::reinterpret_steal<py::object>(capsule);
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (!m) {
    PyErr_Clear();
    return false;
  }
  const DLTensor& t = m->dl_tensor;
  if (t.device.device_type != 1 || t.dtype.lanes != 1 || t.ndim < 1 || t.ndim > kMaxDims) return false;
  if (t.dtype.code == 2 && t.dtype.bits == 32)
    in.elem = Elem::F32;
  else if (t.dtype.code == 2 && t.dtype.bits == 64)
    in.elem = Elem::F64;
  else if (t.dtype.code == 2 && t.dtype.bits == 16)
    in.elem = Elem::F16;
  else if (t.dtype.code == 4 && t.dtype.bits == 16)
    in.elem = Elem::BF16;
  else if (int64 && t.dtype.code == 0 && t.dtype.bits == 64)
    in.elem = Elem::I64;
  else
    return false;
  in.ndim = t.ndim;
  in.shape = t.shape;
  // C-contiguous (strides of size-1 axes do not matter; null: compact) and non-empty.
  int64_t step = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    if (t.shape[d] <= 0) return false;
    if (t.strides && t.shape[d] != 1 && t.strides[d] != step) return false;
    step *= t.shape[d];
  }
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data) + static_cast<uintptr_t>(t.byte_offset);
  if (p == 0 || p % item_size(in.elem) != 0) return false;
  in.data = reinterpret_cast<const char*>(p);
  return true;
}

Result::Result(Elem e, const int64_t* shape, int ndim) {
  size_t count = 1;
  for (int d = 0; d < ndim; ++d) count *= static_cast<size_t>(shape[d]);
  void* raw = ::operator new(kHeader + count * item_size(e), std::align_val_t(kDataAlign));
  block_ = new (raw) Block;
  DLTensor& t = block_->managed.dl_tensor;
  t.data = static_cast<char*>(raw) + kHeader;
  t.device = {1, 0};
  t.ndim = ndim;
  t.dtype = dl_type(e);
  int64_t step = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    block_->shape[d] = shape[d];
    block_->strides[d] = step;
    step *= shape[d];
  }
  t.shape = block_->shape;
  t.strides = block_->strides;
  t.byte_offset = 0;
  block_->managed.manager_ctx = nullptr;
  block_->managed.deleter = free_block;
}

Result::~Result() {
  if (block_) free_block(&block_->managed);
}

void* Result::data() const { return block_->managed.dl_tensor.data; }

PyObject* Result::adopt() {
  DLManagedTensor* m = &block_->managed;
  block_ = nullptr;  // the capsule's now: torch's once adopted, else freed with the capsule
  PyObject* capsule = PyCapsule_New(m, "dltensor", capsule_destructor);
  if (!capsule) {
    free_block(m);
    PyErr_Clear();
    return nullptr;
  }
  PyObject* tensor = PyObject_CallOneArg(torch_objects.from_dlpack, capsule);
  Py_DECREF(capsule);
  if (!tensor) PyErr_Clear();
  return tensor;
}

}  // namespace ssm::interop
