// rados_tier (rados_tier.hpp): the index of pages and objects under one
// lock, the transfers outside it as batches of port::rados_pool requests.
#include "tiers/rados/rados_tier.hpp"

#include "tiers/page_refs.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace larder::tiers {
namespace {

// `s` with `context` before its message and `after` behind it.
status with_context(const status& s, const std::string& context, const std::string& after = {}) {
  return status(static_cast<errc>(s.code()), context + s.message() + after);
}

// Whether pages [first, first + count) of `pages` are adjacent in memory.
bool adjacent_in_memory(const std::vector<page_ref>& pages, std::size_t first, std::size_t count) {
  for (std::size_t i = first + 1; i < first + count; ++i) {
    if (pages[i].address != static_cast<char*>(pages[i - 1].address) + kTierPageSize) return false;
  }
  return true;
}

}  // namespace

status rados_tier::open(const rados_tier_options& options, std::unique_ptr<rados_tier>* out) {
  if (options.heap_id.empty() || options.heap_id.find('/') != std::string::npos || options.pool.empty()) {
    return status(errc::invalid_argument, "rados tier: a pool and a heap id without '/' are needed");
  }
  if (options.object_bytes == 0 || options.object_bytes % kTierPageSize != 0 ||
      options.object_bytes > port::kMaxRadosRequestBytes || options.capacity_bytes == 0 ||
      options.capacity_bytes % kTierPageSize != 0 || options.in_flight == 0) {
    return status(errc::invalid_argument, "rados tier: object size and capacity must be nonzero page multiples, "
                                          "objects at most " + std::to_string(port::kMaxRadosRequestBytes) +
                                          " bytes, requests in flight nonzero");
  }
  std::unique_ptr<port::rados_pool> pool;
  if (status s = port::rados_pool::connect(options.conf_path, options.pool, options.timeouts, &pool); !s.ok()) {
    return s;
  }
  std::unique_ptr<rados_tier> made(new rados_tier(std::move(pool), options));
  std::vector<std::string> leftovers;
  if (status s = made->pool_->list(made->prefix_, &leftovers); !s.ok()) return s;
  if (status s = made->remove_objects(std::move(leftovers)); !s.ok()) {
    return with_context(s, "rados tier: cannot remove the objects a previous tier left: ");
  }
  *out = std::move(made);
  return {};
}

rados_tier::rados_tier(std::unique_ptr<port::rados_pool> pool, const rados_tier_options& options)
    : pool_(std::move(pool)), options_(options), prefix_("larder/" + options.heap_id + "/"),
      object_pages_(static_cast<std::uint32_t>(options.object_bytes / kTierPageSize)) {}

rados_tier::~rados_tier() {
  std::vector<std::string> names;
  for (auto& [number, object] : objects_) names.push_back(std::move(object.name));
  (void)remove_objects(std::move(names));
}

std::string rados_tier::pod_prefix(std::uint64_t pod) const { return prefix_ + std::to_string(pod) + "/"; }

status rados_tier::write(std::uint64_t pod, const page_ref* pages, std::size_t count) {
  if (count == 0) return {};
  std::vector<page_ref> sorted;
  if (status s = sorted_pages(pages, count, &sorted); !s.ok()) return s;
  const std::size_t object_count = (count + object_pages_ - 1) / object_pages_;
  std::uint64_t first_number = 0;
  {
    std::lock_guard lock(mutex_);
    const std::uint64_t capacity = options_.capacity_bytes / kTierPageSize;
    if (held_pages_ + count > capacity) {
      return status(errc::out_of_space, "rados tier " + prefix_ + " is full: " + std::to_string(held_pages_) +
                                            " of " + std::to_string(capacity) + " pages held, " +
                                            std::to_string(count) + " more asked");
    }
    held_pages_ += count;  // taken now so that concurrent writes cannot pass the capacity
    first_number = next_object_;
    next_object_ += object_count;
  }

  // Pages adjacent in memory are handed over where they are; others are
  // gathered into a buffer of their object's own. Either way the pool
  // sends a copy of its own (port/rados.hpp), so a request that outlives
  // this call never reads pages the heap has taken back.
  std::vector<port::rados_op> ops(object_count);
  std::vector<std::unique_ptr<char[]>> gathered;
  for (std::size_t o = 0; o < object_count; ++o) {
    const std::size_t first = o * object_pages_;
    const std::size_t n = std::min<std::size_t>(object_pages_, count - first);
    port::rados_op& op = ops[o];
    op.what = port::rados_op::kind::write_full;
    op.object = pod_prefix(pod) + std::to_string(sorted[first].index) + "." + std::to_string(first_number + o);
    op.length = n * kTierPageSize;
    if (adjacent_in_memory(sorted, first, n)) {
      op.data = sorted[first].address;
      continue;
    }
    char* buffer = gathered.emplace_back(new char[op.length]).get();
    for (std::size_t i = 0; i < n; ++i) std::memcpy(buffer + i * kTierPageSize, sorted[first + i].address, kTierPageSize);
    op.data = buffer;
  }
  if (status s = pool_->run(ops.data(), ops.size(), options_.in_flight); !s.ok()) {
    // A request that timed out may still have stored its object: every
    // object of the write is removed, now or at a later call.
    std::vector<std::string> sent;
    for (port::rados_op& op : ops) sent.push_back(std::move(op.object));
    {
      std::lock_guard lock(mutex_);
      held_pages_ -= count;
    }
    (void)remove_objects(std::move(sent));
    return with_context(s, "", "; the copies held before are kept");
  }

  std::vector<std::string> replaced;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t o = 0; o < object_count; ++o) {
      auto pages_in = static_cast<std::uint32_t>(ops[o].length / kTierPageSize);
      objects_.emplace(first_number + o, object_info{std::move(ops[o].object), pages_in, pages_in});
    }
    pod_pages& held = pods_[pod];
    for (std::size_t i = 0; i < count; ++i) {
      page_place place{first_number + i / object_pages_, static_cast<std::uint32_t>(i % object_pages_)};
      auto [it, added] = held.try_emplace(sorted[i].index, place);
      if (added) continue;
      --held_pages_;  // the new copy takes the old one's place
      auto old = objects_.find(it->second.object);
      if (--old->second.live == 0) {
        replaced.push_back(std::move(old->second.name));
        objects_.erase(old);
      }
      it->second = place;
    }
  }
  // The write is done; an object the cluster does not remove now is
  // removed at a later call.
  (void)remove_objects(std::move(replaced));
  return {};
}

status rados_tier::read(std::uint64_t pod, const page_ref* pages, std::size_t count) {
  std::vector<page_ref> sorted;
  if (status s = sorted_pages(pages, count, &sorted); !s.ok()) return s;
  // One request per run of pages in consecutive slots of one object:
  // requests[r] reads sorted pages [starts[r], starts[r + 1]).
  std::vector<port::rados_op> requests;
  std::vector<std::size_t> starts;
  {
    std::lock_guard lock(mutex_);
    static const pod_pages kNothing;
    auto found = pods_.find(pod);
    const pod_pages& held = found == pods_.end() ? kNothing : found->second;
    page_place last{};
    for (std::size_t i = 0; i < count; ++i) {
      auto place = held.find(sorted[i].index);
      if (place == held.end()) {
        return status(errc::not_found, "rados tier holds no copy of page " + std::to_string(sorted[i].index) +
                                           " of pod " + std::to_string(pod));
      }
      const page_place& here = place->second;
      if (i > 0 && here.object == last.object && here.slot == last.slot + 1) {
        requests.back().length += kTierPageSize;
      } else {
        port::rados_op& op = requests.emplace_back();
        op.what = port::rados_op::kind::read;
        op.object = objects_.at(here.object).name;
        op.offset = std::uint64_t{here.slot} * kTierPageSize;
        op.length = kTierPageSize;
        starts.push_back(i);
      }
      last = here;
    }
  }
  starts.push_back(count);

  // A run whose pages are adjacent in memory is read in place, others
  // into a buffer and copied out.
  std::vector<std::unique_ptr<char[]>> staging(requests.size());
  for (std::size_t r = 0; r < requests.size(); ++r) {
    if (adjacent_in_memory(sorted, starts[r], starts[r + 1] - starts[r])) {
      requests[r].buffer = sorted[starts[r]].address;
    } else {
      staging[r].reset(new char[requests[r].length]);
      requests[r].buffer = staging[r].get();
    }
  }
  if (status s = pool_->run(requests.data(), requests.size(), options_.in_flight); !s.ok()) return s;
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const port::rados_op& op = requests[r];
    if (op.transferred != op.length) {
      return status(errc::corrupt, "rados tier: object " + op.object + " in pool " + pool_->pool_name() +
                                       " is shorter than the tier wrote it");
    }
    if (!staging[r]) continue;
    for (std::size_t i = starts[r]; i < starts[r + 1]; ++i) {
      std::memcpy(sorted[i].address, staging[r].get() + (i - starts[r]) * kTierPageSize, kTierPageSize);
    }
  }
  return {};
}

status rados_tier::drop(std::uint64_t pod) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    // A pod held nowhere still sends the removals left from earlier calls.
    if (auto held = pods_.find(pod); held != pods_.end()) {
      held_pages_ -= held->second.size();
      for (const auto& [index, place] : held->second) {
        auto object = objects_.find(place.object);
        if (object == objects_.end()) continue;  // met through an earlier page
        names.push_back(std::move(object->second.name));
        objects_.erase(object);
      }
      pods_.erase(held);
    }
  }
  if (status s = remove_objects(std::move(names)); !s.ok()) {
    return with_context(s, "rados tier: pod " + std::to_string(pod) + " is dropped but not all its objects are removed (",
                        "); they are removed at the next write or drop");
  }
  return {};
}

status rados_tier::drop_pages(std::uint64_t pod, const std::uint64_t* indexes, std::size_t count) {
  std::lock_guard lock(mutex_);
  auto held = pods_.find(pod);
  if (held == pods_.end()) return {};
  for (std::size_t i = 0; i < count; ++i) {
    auto page = held->second.find(indexes[i]);
    if (page == held->second.end()) continue;
    --held_pages_;
    auto object = objects_.find(page->second.object);
    if (--object->second.live == 0) {
      // Removed by the next write or drop: no round trip here (the
      // migrator drops pages while page faults wait).
      unremoved_.push_back(std::move(object->second.name));
      objects_.erase(object);
    }
    held->second.erase(page);
  }
  if (held->second.empty()) pods_.erase(held);
  return {};
}

std::vector<std::uint64_t> rados_tier::held_pages(std::uint64_t pod) const {
  std::lock_guard lock(mutex_);
  return held_indexes(pods_, pod);
}

bool rados_tier::holds(std::uint64_t pod, std::uint64_t index) const {
  std::lock_guard lock(mutex_);
  auto held = pods_.find(pod);
  return held != pods_.end() && held->second.count(index) != 0;
}

status rados_tier::sync() { return {}; }

tier_usage rados_tier::usage() const {
  std::lock_guard lock(mutex_);
  return tier_usage{options_.capacity_bytes / kTierPageSize, held_pages_};
}

status rados_tier::remove_objects(std::vector<std::string> names) {
  {
    std::lock_guard lock(mutex_);
    names.insert(names.end(), std::make_move_iterator(unremoved_.begin()), std::make_move_iterator(unremoved_.end()));
    unremoved_.clear();
  }
  if (names.empty()) return {};
  std::vector<port::rados_op> ops(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    ops[i].what = port::rados_op::kind::remove;
    ops[i].object = std::move(names[i]);
  }
  (void)pool_->run(ops.data(), ops.size(), options_.in_flight);
  status first_failure;
  std::lock_guard lock(mutex_);
  for (port::rados_op& op : ops) {
    if (op.result.ok() || op.result.is(errc::not_found)) continue;  // not_found: an earlier try removed it
    if (first_failure.ok()) first_failure = op.result;
    unremoved_.push_back(std::move(op.object));
  }
  return first_failure;
}

}  // namespace larder::tiers
