// The Python module `larder`: the object store (include/larder/store.hpp)
// for Python clients, with gets that hand back the object's bytes in the
// shared heap without a copy (a read-only memoryview, which numpy takes as
// it is: numpy.frombuffer). docs/store.md, "Python".
#include <larder/store.hpp>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// Object ids: a Python int (64-bit, Lightning's) or bytes of at most 20
// (Plasma's ObjectID).
larder::object_id id_of(const py::handle& id) {
  if (py::isinstance<py::int_>(id)) return larder::object_id(id.cast<std::uint64_t>());
  if (py::isinstance<py::bytes>(id)) {
    std::string bytes = id.cast<std::string>();
    if (bytes.empty() || bytes.size() > larder::object_id::max_size)
      throw py::value_error("an object id of bytes has 1 to 20 of them");
    return larder::object_id::from_binary(bytes.data(), bytes.size());
  }
  throw py::type_error("an object id is an int or bytes");
}

py::object id_to_python(const larder::object_id& id) {
  if (id.is_number()) {
    std::uint64_t number = 0;
    std::memcpy(&number, id.data(), sizeof(number));
    return py::int_(number);
  }
  return py::bytes(reinterpret_cast<const char*>(id.data()), id.size());
}

struct store_error_type {
  static py::object& get() {
    static py::object type;
    return type;
  }
};

void check(const larder::status& s) {
  if (s.ok()) return;
  py::object error = store_error_type::get()(s.to_string(), s.code());
  PyErr_SetObject(store_error_type::get().ptr(), error.ptr());
  throw py::error_already_set();
}

class python_store {
 public:
  python_store(const std::string& name, bool shm, std::size_t capacity, std::size_t reserve) {
    larder::store_options o;
    o.heap.kind = shm ? larder::backing::shm : larder::backing::file;
    o.heap.name = name;
    if (reserve != 0) o.heap.reserve = reserve;
    o.capacity = capacity;
    check(larder::store::open(o, &store_));
  }

  py::memoryview create(const py::handle& id, std::size_t size, std::size_t metadata_size) {
    larder::object_buffer b;
    check(store_.create(id_of(id), size, metadata_size, &b));
    return py::memoryview::from_memory(b.data.data(), static_cast<py::ssize_t>(b.data.size()), false);
  }
  void seal(const py::handle& id) { check(store_.seal(id_of(id))); }
  void abort(const py::handle& id) { check(store_.abort(id_of(id))); }
  // timeout_ms: 0 fails at once when absent; < 0 waits without limit. A
  // handle serves one thread at a time, so the interpreter lock is kept.
  py::memoryview get(const py::handle& id, std::int64_t timeout_ms) {
    larder::object_view v;
    check(store_.get(id_of(id), timeout_ms, &v));
    return py::memoryview::from_memory(static_cast<const void*>(v.data.data()), static_cast<py::ssize_t>(v.data.size()));
  }
  py::memoryview get_metadata(const py::handle& id) {
    larder::object_view v;
    check(store_.get(id_of(id), &v));
    return py::memoryview::from_memory(static_cast<const void*>(v.metadata.data()), static_cast<py::ssize_t>(v.metadata.size()));
  }
  void release(const py::handle& id) { check(store_.release(id_of(id))); }
  void remove(const py::handle& id) { check(store_.remove(id_of(id))); }
  bool contains(const py::handle& id) const { return store_.contains(id_of(id)); }
  py::list list() const {
    std::vector<larder::object_info> all;
    check(store_.list(&all));
    py::list out;
    for (const larder::object_info& o : all) {
      py::dict d;
      d["id"] = id_to_python(o.id);
      d["state"] = larder::to_string(o.state);
      d["data_size"] = o.data_size;
      d["metadata_size"] = o.metadata_size;
      d["refcount"] = o.refcount;
      out.append(d);
    }
    return out;
  }
  py::dict stats() const {
    larder::store_stats st = store_.stats();
    py::dict d;
    d["objects"] = st.objects;
    d["bytes"] = st.bytes;
    d["capacity"] = st.capacity;
    d["clients"] = st.clients;
    d["evictions"] = st.evictions;
    return d;
  }
  std::size_t recover() {
    std::size_t n = 0;
    check(store_.recover(&n));
    return n;
  }
  void check_store() const { check(store_.check()); }
  void close() { check(store_.close()); }

 private:
  larder::store store_;
};

}  // namespace

PYBIND11_MODULE(larder, m) {
  m.doc() = "larder's shared object store: create, seal, get (zero-copy), release, delete";
  py::object base = py::module_::import("builtins").attr("RuntimeError");
  store_error_type::get() = py::reinterpret_steal<py::object>(
      PyErr_NewExceptionWithDoc("larder.StoreError", "A larder store operation failed; args: (message, code).",
                                base.ptr(), nullptr));
  m.attr("StoreError") = store_error_type::get();
  py::class_<python_store>(m, "Store")
      .def(py::init<const std::string&, bool, std::size_t, std::size_t>(), py::arg("name"), py::arg("shm") = false,
           py::arg("capacity") = 0, py::arg("reserve") = 0,
           "Opens or makes the store in a file heap (or a shm object with shm=True), shared with other processes.")
      .def("create", &python_store::create, py::arg("id"), py::arg("size"), py::arg("metadata_size") = 0,
           "A writable memoryview of a new, unsealed object's data.")
      .def("seal", &python_store::seal, py::arg("id"))
      .def("abort", &python_store::abort, py::arg("id"))
      .def("get", &python_store::get, py::arg("id"), py::arg("timeout_ms") = 0,
           "A read-only memoryview of a sealed object's data, in the shared heap (no copy), valid until release.")
      .def("get_metadata", &python_store::get_metadata, py::arg("id"))
      .def("release", &python_store::release, py::arg("id"))
      .def("delete", &python_store::remove, py::arg("id"))
      .def("contains", &python_store::contains, py::arg("id"))
      .def("__contains__", &python_store::contains)
      .def("list", &python_store::list)
      .def("stats", &python_store::stats)
      .def("recover", &python_store::recover)
      .def("check", &python_store::check_store)
      .def("close", &python_store::close)
      .def("__enter__", [](python_store& s) -> python_store& { return s; })
      .def("__exit__", [](python_store& s, const py::args&) { s.close(); });
}
