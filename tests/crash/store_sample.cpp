// Crash-test sample: the object store (include/larder/store.hpp) on a file
// heap, opened by name as every client of a store opens it (shared
// writers). Each operation is one store call: create (object bytes written
// before the acknowledgement; sizes from empty to huge blocks), seal,
// abort, put_fields, update_fields, get or get_fields (the reference kept),
// release, remove (deferred while referenced). Objects are left unsealed
// and references held across operations, so a crash finds some of both.
// Usage: larder crashtest -- store_sample [OPS [SEED]]
//
// The check phase opens the store, which recovers the dead client, and
// requires: store::check() and the heap check clean; the store holding
// exactly the sealed objects of the first k operations, k the number
// acknowledged or one more, each with its bytes (derived from the seed, the
// id and the operation that wrote them), and nothing unsealed, deleted or
// referenced; and no byte leaked: the object pod's bytes in use are the
// blocks of those objects, and every other pod holds what a store that ran
// the same k operations without a crash holds once its client has gone.
#include "sample_common.hpp"

#include <larder/check.hpp>
#include <larder/store.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using larder::object_id;
using larder::status;

constexpr std::uint32_t kIds = 24;
constexpr int kFieldNames = 6;
constexpr std::size_t kHeaderSize = 64;  // in front of an object's data (docs/format/store.md)
constexpr const char* kObjectPod = "larder.store.objects";

// Ids of both kinds: numbers, and binary ids of 1 to 20 bytes.
object_id id_of(std::uint32_t i) {
  if (i % 3 != 0) return object_id(0x5100 + i);
  std::uint8_t bytes[object_id::max_size];
  for (std::size_t b = 0; b < sizeof(bytes); ++b) bytes[b] = static_cast<std::uint8_t>(i * 37 + b);
  return object_id::from_binary(bytes, 1 + i % object_id::max_size);
}

const std::string& field_name(int f) {
  static const std::string names[kFieldNames] = {"f0", "f1", "f2", "f3", "f4", "f5"};
  return names[f];
}

// The bytes of a value: a function of the seed, the id, the operation that
// wrote it and which part of the object (0 data, 1 metadata, 2 + field).
std::vector<std::byte> bytes_of(std::uint64_t seed, std::uint32_t id, std::uint64_t salt, int part,
                                std::size_t size) {
  std::vector<std::byte> out(size);
  sample::random r(seed ^ (std::uint64_t{id} << 48) ^ (salt << 8) ^ static_cast<std::uint64_t>(part));
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t word = r.next();
    std::memcpy(out.data() + i, &word, std::min<std::size_t>(8, size - i));
  }
  return out;
}

struct value {
  std::uint64_t salt;
  std::size_t size;
};

struct object_model {
  bool sealed = false;
  bool fields = false;
  std::uint64_t salt = 0;  // the operation that created it
  std::size_t data_size = 0;
  std::size_t metadata_size = 0;
  std::map<int, value> values;  // a multi-field object's, by field number
};

// What the store should hold: objects unsealed or sealed (deleted ones are
// gone) and the references the client holds, by id; an id stays out of use
// while a reference to a deleted object of its name is held.
struct model {
  std::map<std::uint32_t, object_model> objects;
  std::map<std::uint32_t, std::uint32_t> references;
};

enum class op_kind { create, seal, abort, put_fields, update_fields, get, release, remove };

struct store_op {
  op_kind kind;
  std::uint32_t id;
  std::uint64_t salt;  // the operation's number
  std::size_t data_size = 0;
  std::size_t metadata_size = 0;
  std::map<int, value> values;  // put_fields and update_fields
};

// Empty (a tenth of creates), up to 300 bytes, up to 64 KiB, or (a tenth)
// a huge block: above the allocator's largest size class, 512 KiB
// (allocator/size_class.hpp).
std::size_t object_size(sample::random& r) {
  std::uint64_t roll = r.below(10);
  if (roll < 1) return 0;
  if (roll < 5) return 1 + r.below(300);
  if (roll < 9) return 300 + r.below(64 * 1024);
  return 512 * 1024 + 1 + r.below(1024 * 1024);
}

std::map<int, value> draw_values(sample::random& r, std::uint64_t salt, int most) {
  std::map<int, value> values;
  int count = 1 + static_cast<int>(r.below(static_cast<std::uint64_t>(most)));
  for (int i = 0; i < count; ++i)
    values[static_cast<int>(r.below(kFieldNames))] = value{salt, r.below(8) == 0 ? 4096 + r.below(8192) : r.below(200)};
  return values;
}

template <class Pred>
std::vector<std::uint32_t> ids_where(Pred pred) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 0; i < kIds; ++i)
    if (pred(i)) out.push_back(i);
  return out;
}

// Operation `salt` of the workload, given the model before it: a kind by
// weight, or the first possible one after it when that kind has no target.
store_op next_op(sample::random& r, std::uint64_t salt, const model& m) {
  auto object = [&](std::uint32_t i) { return m.objects.count(i) ? &m.objects.at(i) : nullptr; };
  auto free_id = [&](std::uint32_t i) { return object(i) == nullptr && m.references.count(i) == 0; };
  auto unsealed = [&](std::uint32_t i) { return object(i) != nullptr && !object(i)->sealed; };
  auto sealed = [&](std::uint32_t i) { return object(i) != nullptr && object(i)->sealed; };
  auto updatable = [&](std::uint32_t i) { return sealed(i) && object(i)->fields && m.references.count(i) == 0; };
  auto referenced = [&](std::uint32_t i) { return m.references.count(i) != 0; };
  static constexpr int kWeights[] = {22, 14, 5, 10, 7, 15, 13, 14};  // per op_kind, out of 100
  int roll = static_cast<int>(r.below(100));
  int kind = 0;
  while (roll >= kWeights[kind]) roll -= kWeights[kind++];
  for (int tries = 0; tries < 8; ++tries, kind = (kind + 1) % 8) {
    std::vector<std::uint32_t> targets;
    switch (static_cast<op_kind>(kind)) {
      case op_kind::create:
      case op_kind::put_fields: targets = ids_where(free_id); break;
      case op_kind::seal:
      case op_kind::abort: targets = ids_where(unsealed); break;
      case op_kind::update_fields: targets = ids_where(updatable); break;
      case op_kind::get:
      case op_kind::remove: targets = ids_where(sealed); break;
      case op_kind::release: targets = ids_where(referenced); break;
    }
    if (targets.empty()) continue;
    store_op op{static_cast<op_kind>(kind), targets[r.below(targets.size())], salt, 0, 0, {}};
    if (op.kind == op_kind::create) {
      op.data_size = object_size(r);
      op.metadata_size = r.below(3) == 0 ? r.below(100) : 0;
    }
    if (op.kind == op_kind::put_fields) op.values = draw_values(r, salt, 4);
    if (op.kind == op_kind::update_fields) op.values = draw_values(r, salt, 3);
    return op;
  }
  sample::fail("operation %llu: the workload has nothing to do", static_cast<unsigned long long>(salt));
}

void apply(model& m, const store_op& op) {
  switch (op.kind) {
    case op_kind::create: m.objects[op.id] = {false, false, op.salt, op.data_size, op.metadata_size, {}}; break;
    case op_kind::seal: m.objects[op.id].sealed = true; break;
    case op_kind::abort:
    case op_kind::remove: m.objects.erase(op.id); break;
    case op_kind::put_fields: m.objects[op.id] = {true, true, op.salt, 0, 0, op.values}; break;
    case op_kind::update_fields:
      for (const auto& [f, v] : op.values) m.objects[op.id].values[f] = v;
      break;
    case op_kind::get: ++m.references[op.id]; break;
    case op_kind::release:
      if (--m.references[op.id] == 0) m.references.erase(op.id);
      break;
  }
}

// The fields of `values` as the store takes them; `storage` keeps the bytes.
std::vector<larder::field> fields_of(const std::map<int, value>& values, std::uint64_t seed, std::uint32_t id,
                                     std::vector<std::vector<std::byte>>* storage) {
  std::vector<larder::field> fields;
  storage->clear();
  storage->reserve(values.size());
  for (const auto& [f, v] : values) {
    storage->push_back(bytes_of(seed, id, v.salt, 2 + f, v.size));
    fields.push_back({field_name(f), storage->back()});
  }
  return fields;
}

std::vector<std::string_view> all_field_names() {
  std::vector<std::string_view> names;
  for (int f = 0; f < kFieldNames; ++f) names.push_back(field_name(f));
  return names;
}

status perform(larder::store& s, const store_op& op, const model& before, std::uint64_t seed) {
  object_id id = id_of(op.id);
  std::vector<std::vector<std::byte>> storage;
  switch (op.kind) {
    case op_kind::create: {
      larder::object_buffer b;
      if (status st = s.create(id, op.data_size, op.metadata_size, &b); !st.ok()) return st;
      std::vector<std::byte> data = bytes_of(seed, op.id, op.salt, 0, op.data_size);
      std::vector<std::byte> metadata = bytes_of(seed, op.id, op.salt, 1, op.metadata_size);
      std::copy(data.begin(), data.end(), b.data.begin());
      std::copy(metadata.begin(), metadata.end(), b.metadata.begin());
      return {};
    }
    case op_kind::seal: return s.seal(id);
    case op_kind::abort: return s.abort(id);
    case op_kind::put_fields: return s.put_fields(id, fields_of(op.values, seed, op.id, &storage));
    case op_kind::update_fields: return s.update_fields(id, fields_of(op.values, seed, op.id, &storage));
    case op_kind::get: {
      if (before.objects.at(op.id).fields) {
        std::vector<std::span<const std::byte>> values;
        return s.get_fields(id, all_field_names(), &values);
      }
      larder::object_view v;
      return s.get(id, &v);
    }
    case op_kind::release: return s.release(id);
    case op_kind::remove: return s.remove(id);
  }
  return {};
}

// Runs operations [0, count) of the workload on `s`, calling done(i + 1)
// after operation i returned.
template <class Done>
void run_workload(larder::store& s, const sample::arguments& a, std::uint64_t count, Done done) {
  sample::random r(a.seed);
  model m;
  for (std::uint64_t i = 0; i < count; ++i) {
    store_op op = next_op(r, i, m);
    if (status st = perform(s, op, m, a.seed); !st.ok())
      sample::fail("operation %llu: %s", static_cast<unsigned long long>(i), st.to_string().c_str());
    apply(m, op);
    done(i + 1);
  }
}

model model_after(const sample::arguments& a, std::uint64_t k) {
  sample::random r(a.seed);
  model m;
  for (std::uint64_t i = 0; i < k; ++i) apply(m, next_op(r, i, m));
  return m;
}

larder::store_options file_store(larder::open_mode mode) {
  larder::store_options options;
  options.heap.name = larder::crashtest::heap_path();
  options.heap.mode = mode;
  return options;
}

void run(const sample::arguments& a) {
  larder::store s;
  larder::throw_if_error(larder::store::open(file_store(larder::open_mode::open_or_create), &s));
  run_workload(s, a, a.operations, [](std::uint64_t done) { larder::crashtest::acknowledge(done); });
  // Closing releases the references and deletes the unsealed objects, as
  // recovery does after a crash: the check phase finds the same store.
  larder::throw_if_error(s.close());
}

// The bytes in use of each pod, by name.
using pod_bytes = std::map<std::string, std::size_t>;
pod_bytes bytes_by_pod(const larder::heap& h) {
  pod_bytes out;
  for (const larder::pod_info& p : h.pods()) out[p.name] += p.bytes_in_use;
  return out;
}

// What a store that ran the first k operations without a crash holds in
// each pod once its client is gone and a new one has opened it. The
// index's stripes grow with what was created, so the store's own
// metadata depends on the operations, not only on the objects left.
pod_bytes uncrashed_bytes(const sample::arguments& a, std::uint64_t k) {
  larder::heap_options options;
  options.kind = larder::backing::anonymous;
  larder::heap h(options);
  larder::store s;
  larder::throw_if_error(larder::store::open(h, {}, &s));
  run_workload(s, a, k, [](std::uint64_t) {});
  larder::throw_if_error(s.close());
  larder::throw_if_error(larder::store::open(h, {}, &s));
  pod_bytes out = bytes_by_pod(h);
  larder::throw_if_error(s.close());
  return out;
}

// A message of `format` with a number and a string in it.
std::string text(const char* format, unsigned long long a, const std::string& b = {}) {
  char line[256];
  std::snprintf(line, sizeof(line), format, a, b.c_str());
  return line;
}

// Why the store's objects are not the sealed objects of `m`; empty when they are.
std::string differences(const std::vector<larder::object_info>& listed, const model& m) {
  for (const larder::object_info& info : listed) {
    std::uint32_t i = 0;
    while (i < kIds && !(id_of(i) == info.id)) ++i;
    auto it = m.objects.find(i);
    if (info.state != larder::object_state::sealed)
      return text("object %llu is %s after recovery", i, larder::to_string(info.state));
    if (it == m.objects.end() || !it->second.sealed)
      return text("object %llu (id %s) is in the store but not sealed in the model", i, info.id.text());
    if (info.refcount != 0) return text("object %llu still has references after recovery", i);
    const object_model& o = it->second;
    if (!o.fields && (info.data_size != o.data_size || info.metadata_size != o.metadata_size))
      return text("object %llu has sizes %s; the model's differ", i,
                  std::to_string(info.data_size) + " + " + std::to_string(info.metadata_size));
  }
  std::size_t sealed = 0;
  for (const auto& [i, o] : m.objects) sealed += o.sealed ? 1 : 0;
  if (listed.size() != sealed) return text("the store holds %llu objects, the model %s sealed ones", listed.size(),
                                           std::to_string(sealed));
  return {};
}

// Reads every object back against the model (taking and releasing a
// reference); adds the size of each object's block to *blocks. Returns why
// an object differs; empty when none does.
std::string check_objects(larder::store& s, const model& m, std::uint64_t seed, std::size_t* blocks) {
  for (const auto& [i, o] : m.objects) {
    if (!o.sealed) continue;
    object_id id = id_of(i);
    larder::object_view v;
    if (status st = s.get(id, &v); !st.ok()) return text("get of object %llu: %s", i, st.to_string());
    *blocks += larder::usable_size(reinterpret_cast<const char*>(v.data.data()) - kHeaderSize);
    std::string why;
    if (!o.fields) {
      std::vector<std::byte> data = bytes_of(seed, i, o.salt, 0, o.data_size);
      std::vector<std::byte> metadata = bytes_of(seed, i, o.salt, 1, o.metadata_size);
      if (!std::equal(data.begin(), data.end(), v.data.begin(), v.data.end()) ||
          !std::equal(metadata.begin(), metadata.end(), v.metadata.begin(), v.metadata.end()))
        why = text("object %llu does not hold the bytes of operation %s", i, std::to_string(o.salt));
    } else {
      std::vector<std::span<const std::byte>> values;
      if (status st = s.get_fields(id, all_field_names(), &values); !st.ok()) {
        why = text("get_fields of object %llu: %s", i, st.to_string());
      } else {
        for (int f = 0; f < kFieldNames && why.empty(); ++f) {
          auto it = o.values.find(f);
          std::vector<std::byte> want =
              it == o.values.end() ? std::vector<std::byte>{} : bytes_of(seed, i, it->second.salt, 2 + f, it->second.size);
          if (!std::equal(want.begin(), want.end(), values[f].begin(), values[f].end()))
            why = text("object %llu: field %s is not the model's", i, field_name(f));
        }
        larder::throw_if_error(s.release(id));
      }
    }
    larder::throw_if_error(s.release(id));
    if (!why.empty()) return why;
  }
  return {};
}

// Why the pods' bytes in use are not exactly the objects' blocks (the
// object pod) and what an uncrashed store holds (every other pod); empty
// when they are.
std::string pod_differences(const pod_bytes& found, const pod_bytes& uncrashed, std::size_t object_blocks) {
  std::set<std::string> names;
  for (const auto& [name, bytes] : found) names.insert(name);
  for (const auto& [name, bytes] : uncrashed) names.insert(name);
  for (const std::string& name : names) {
    std::size_t have = found.count(name) ? found.at(name) : 0;
    std::size_t want = name == kObjectPod ? object_blocks : uncrashed.count(name) ? uncrashed.at(name) : 0;
    if (have != want)
      return "pod " + name + " has " + std::to_string(have) + " bytes in use; " + std::to_string(want) +
             " expected (" + (name == kObjectPod ? "the blocks of the store's objects" : "what an uncrashed store holds") +
             ")";
  }
  return {};
}

// Why the store is not the one the first k operations leave; empty when it is.
std::string compare(larder::store& s, const sample::arguments& a, std::uint64_t k,
                    const std::vector<larder::object_info>& listed, const pod_bytes& found) {
  model m = model_after(a, k);
  std::string why = differences(listed, m);
  std::size_t object_blocks = 0;
  if (why.empty()) why = check_objects(s, m, a.seed, &object_blocks);
  if (why.empty()) why = pod_differences(found, uncrashed_bytes(a, k), object_blocks);
  return why;
}

void check(const sample::arguments& a) {
  std::uint64_t acknowledged = larder::crashtest::acknowledged();
  larder::store s;
  status opened = larder::store::open(file_store(larder::open_mode::open), &s);
  if (!opened.ok()) {
    // A heap file appears whole, by a rename, or not at all.
    if (acknowledged == 0 && opened.is(larder::errc::not_found)) {
      std::printf("no heap: the run phase stopped before making it\n");
      return;
    }
    sample::fail("opening the store after the crash (%llu operations acknowledged): %s",
                 static_cast<unsigned long long>(acknowledged), opened.to_string().c_str());
  }
  // Before this client's gets add reference rows of its own.
  pod_bytes found = bytes_by_pod(s.owner());
  if (status checked = s.check(); !checked.ok()) sample::fail("store check: %s", checked.to_string().c_str());
  std::vector<larder::object_info> listed;
  larder::throw_if_error(s.list(&listed));
  // The operation in flight at the crash may have happened.
  std::uint64_t k = acknowledged;
  std::string why = compare(s, a, k, listed, found);
  if (!why.empty() && k < a.operations) {
    std::string next = compare(s, a, k + 1, listed, found);
    if (next.empty()) {
      why.clear();
      k += 1;
    } else {
      why += "; as after one more: " + next;
    }
  }
  if (!why.empty())
    sample::fail("after %llu acknowledged operations: %s", static_cast<unsigned long long>(acknowledged), why.c_str());
  if (status st = s.check(); !st.ok())
    sample::fail("store check after reading back: %s", st.to_string().c_str());
  larder::throw_if_error(s.close());
  larder::check_report report;
  larder::throw_if_error(larder::check_heap(larder::backing::file, larder::crashtest::heap_path(), false, &report));
  if (!report.clean()) sample::fail("heap check: %s", report.problems.front().c_str());
  std::printf("store: %llu operations (%llu acknowledged), %zu objects: ok\n", static_cast<unsigned long long>(k),
              static_cast<unsigned long long>(acknowledged), listed.size());
}

}  // namespace

int main(int argc, char** argv) {
  sample::arguments a = sample::parse(argc, argv);
  try {
    switch (larder::crashtest::current_phase()) {
      case larder::crashtest::phase::run: run(a); return 0;
      case larder::crashtest::phase::check: check(a); return 0;
      case larder::crashtest::phase::none: break;
    }
  } catch (const larder::error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr,
               "%s: a crash-test sample; run it with\n  larder crashtest -- %s [OPERATIONS [SEED]]\n",
               argv[0], argv[0]);
  return 2;
}
