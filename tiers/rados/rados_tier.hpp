// The remote tier: pods' pages as objects in a pool of a Ceph cluster,
// through port/rados.hpp. Entry point: rados_tier::open.
//
// A write packs the pages it is given, sorted by index, into new objects of
// up to object_bytes, named larder/<heap id>/<pod>/<first index>.<number>,
// and sends them in flight together; only when all are stored do they
// replace the copies held before, and an object whose pages have all been
// replaced is removed. A read asks each object for the byte range of the
// pages wanted. Like the disk tier's file, the objects are scratch: open
// removes any left under the heap id's prefix, and the destructor removes
// the tier's own.
#pragma once

#include "port/rados.hpp"
#include "tiers/tier.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace larder::tiers {

struct rados_tier_options {
  // The cluster's configuration file (empty: $CEPH_CONF or Ceph's default
  // places) and the pool the objects go to.
  std::string conf_path;
  std::string pool;
  // Names this tier's objects (no '/'): two tiers with the same id in one
  // pool would remove each other's objects.
  std::string heap_id;
  // The most the tier stores; writes past it fail with out_of_space.
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  // The largest object, a page multiple (at most
  // port::kMaxRadosRequestBytes): Ceph's own default is 4 MiB.
  std::size_t object_bytes = std::size_t{1} << 20;
  // Requests in flight at once per call.
  unsigned in_flight = 16;
  port::rados_options timeouts;
};

class rados_tier final : public tier {
 public:
  // Connects and removes any object left under larder/<heap id>/.
  // invalid_argument for an empty heap id or pool, a heap id with '/', an
  // object size or capacity that is no page multiple or zero, an object
  // size over port::kMaxRadosRequestBytes, or nothing in flight; the errors of port::rados_pool::connect.
  static status open(const rados_tier_options& options, std::unique_ptr<rados_tier>* out);
  ~rados_tier() override;

  status write(std::uint64_t pod, const page_ref* pages, std::size_t count) override;
  status read(std::uint64_t pod, const page_ref* pages, std::size_t count) override;
  // Forgets the pod and removes its objects. When the cluster does not
  // take the removals, the pod is forgotten all the same, the error says
  // so, and the objects are removed again at the next write or drop.
  status drop(std::uint64_t pod) override;
  // Forgets the pages; an object none of whose pages is held any more is
  // removed by the next write or drop (no round trip here).
  status drop_pages(std::uint64_t pod, const std::uint64_t* indexes, std::size_t count) override;
  bool holds(std::uint64_t pod, std::uint64_t index) const override;
  std::vector<std::uint64_t> held_pages(std::uint64_t pod) const override;
  // Nothing to do: the cluster acknowledges a write once it is durable.
  status sync() override;
  // used_pages: the pages held (what capacity bounds). An object's pages
  // replaced or dropped stay stored until all of its pages are, so the
  // pool may hold up to an object's worth more per partly used object.
  tier_usage usage() const override;

  // Every object name of this tier starts with it: larder/<heap id>/.
  const std::string& object_prefix() const { return prefix_; }
  // The prefix of one pod's objects.
  std::string pod_prefix(std::uint64_t pod) const;

 private:
  // Where a page lives: an object and the page's slot in it.
  struct page_place {
    std::uint64_t object;
    std::uint32_t slot;
  };
  struct object_info {
    std::string name;
    std::uint32_t pages;  // its size
    std::uint32_t live;   // pages not replaced since
  };
  using pod_pages = std::unordered_map<std::uint64_t, page_place>;  // page index -> place

  rados_tier(std::unique_ptr<port::rados_pool> pool, const rados_tier_options& options);
  // Removes `names`; those the cluster refuses are kept to be removed
  // later. The first failure, or ok.
  status remove_objects(std::vector<std::string> names);

  const std::unique_ptr<port::rados_pool> pool_;
  const rados_tier_options options_;
  const std::string prefix_;
  const std::uint32_t object_pages_;

  mutable std::mutex mutex_;  // guards what follows
  std::unordered_map<std::uint64_t, pod_pages> pods_;
  std::unordered_map<std::uint64_t, object_info> objects_;  // by number
  std::uint64_t next_object_ = 0;
  std::uint64_t held_pages_ = 0;      // in pods_, and reserved by writes under way
  std::vector<std::string> unremoved_;  // objects no longer used that the cluster did not remove
};

}  // namespace larder::tiers
