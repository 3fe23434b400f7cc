// larder::salvage_heap: copies every root whose object graph is intact out
// of a heap, damaged or not, into a new heap (docs/tools/larder.md,
// "salvage").
//
// The source is mapped privately at its own base (a crashed transaction is
// rolled back in that private copy; the file is never written) and walked
// in full (allocator/heap_map.hpp). Each live root with a sound record is
// reached conservatively; a root whose graph touches a page whose blocks
// cannot be told apart, or a block past the end of the file, is lost. The
// new heap has a base of its own, so the blocks kept move and every word
// that points into them is relocated:
//   - a segment of heap pages that holds a kept block is copied as a whole
//     segment of the new heap, each kept block at its old offset: pointers
//     into it move by one distance, so a pointer one past a block's end
//     (std::vector's end of storage) stays one past that block's end, and
//     an aligned object keeps its alignment; its other blocks are free;
//   - a huge block gets a new huge block of its usable size, with the
//     alignment its start had.
// A word is relocated when its value lies inside a copied segment or kept
// huge block (or just past its end): an integer that happens to hold such
// a value is changed too. That is the trade-off of a new base: keeping the
// old base instead would make the copy unopenable beside its original.
#include <larder/check.hpp>

#include "allocator/heap_map.hpp"
#include "allocator/heap_repair.hpp"
#include "allocator/region.hpp"
#include "port/os.hpp"
#include "recovery/records.hpp"
#include "recovery/superblock.hpp"
#include "recovery/undo_log.hpp"
#include "runtime/heap_file.hpp"
#include "runtime/heap_impl.hpp"
#include "runtime/shared_writers.hpp"

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>

namespace larder {

namespace {

using alloc::hex;

using alloc::block_ref;
using alloc::heap_map;
using alloc::map_unit;

std::string record_name(const char* field, std::size_t size) { return std::string(field, ::strnlen(field, size)); }

// The heap being salvaged, mapped privately at its base.
struct source_heap {
  backing_file file;
  heap_mapping mapping;
  layout::superblock sb{};
  alloc::heap_view view;
};

status open_source(backing kind, const std::string& path, source_heap* src) {
  if (status s = open_backing(kind, path, false, &src->file); !s.ok()) return s;
  int copy = 0;
  if (status s = recovery::read_superblock(src->file.fd, src->file.size, &src->sb, &copy); !s.ok())
    return status(static_cast<errc>(s.code()), path + ": " + s.message());
  if (status s = map_heap_file(src->file, src->sb.base, src->sb.reserve, true, true, true, &src->mapping); !s.ok())
    return status(static_cast<errc>(s.code()), path + ": " + s.message());
  alloc::heap_view& v = src->view;
  v.local = src->mapping.local;
  v.base = src->sb.base;
  v.readable = src->mapping.readable;
  v.reserve = src->sb.reserve;
  v.size = std::max<std::uint64_t>(src->sb.size, src->mapping.readable & ~std::uint64_t{layout::kSegmentSize - 1});
  if (v.at(layout::kMetaOffset, sizeof(layout::heap_meta)) == nullptr || v.meta()->magic != layout::kMetaMagic)
    return status(errc::corrupt, path + ": the metadata block is damaged; nothing can be found in the heap");
  return {};
}

// Settles in the private copy what crashes left, as open would (crashed
// transactions rolled back, interrupted closes completed); says what it
// could not.
void settle_lanes(source_heap* src, salvage_report* out) {
  std::unique_ptr<recovery::persist_domain> memory = recovery::make_memory_domain();
  for (std::size_t n = 0; n < layout::kMaxLanes; ++n) {
    layout::lane_record& lane = src->view.meta()->lanes[n];
    if (lane.extent_count == 0) continue;
    const std::string place = "lane " + std::to_string(n);
    recovery::lane_scan scan;
    status s = recovery::scan_lane(lane, src->view.base, src->view.size, &scan);
    if (!s.ok()) {
      out->notes.push_back(place + " cannot be read (" + s.message() +
                           "): if it held an uncommitted transaction, what that changed is salvaged as it is");
    } else if (scan.undecidable) {
      out->notes.push_back(place + ": whether transaction " + std::to_string(scan.seq) +
                           " committed cannot be told (a damaged commit slot); its changes are salvaged as they are");
    } else if (scan.record_damaged && scan.journal) {
      out->notes.push_back(place + ": the journal of a close that a crash cut short ends without its end mark and "
                                   "cannot be completed; the allocator's metadata is salvaged as the close left it");
    } else if (scan.record_damaged) {
      out->notes.push_back(place + ": uncommitted transaction " + std::to_string(scan.seq) +
                           " has a damaged log record and cannot be rolled back; what it changed is salvaged as it is");
    } else if (scan.pending()) {
      const std::string what = scan.journal ? "a close that a crash cut short" : "an uncommitted transaction";
      shared_lane_rollback shared(src->view.base, src->view.meta(), lane.owner_client);
      bool shared_lane = lane.owner_client != layout::kNoClient;
      if (status r = recovery::roll_back_lane(&lane, scan, *memory, shared_lane ? &shared : nullptr); r.ok())
        out->notes.push_back(place + ": " + (scan.journal ? "completed " : "rolled back ") + what + " (" +
                             std::to_string(scan.records.size()) +
                             " records) in a private copy; the heap file is unchanged");
      else
        out->notes.push_back(place + ": settling " + what + " failed: " + r.message());
    }
  }
}

// The name each pod id of the source goes by in the new heap.
std::string pod_name(const layout::heap_meta& meta, std::uint32_t id, bool checksummed) {
  const layout::pod_record& rec = meta.pods[id];
  if (rec.in_use == recovery::kPodLive && recovery::pod_damage(rec, id, checksummed) == nullptr)
    return record_name(rec.name, sizeof(rec.name));
  return "damaged-" + std::to_string(id);
}

class salvager {
 public:
  salvager(source_heap& src, salvage_report* out) : src_(src), out_(out) {}
  void choose_roots();
  status copy_into(heap& target);

 private:
  struct kept_root {
    std::string name;
    std::uint64_t object;
    std::uint64_t size;
  };
  status new_pod(heap& target, std::uint32_t old_id, pod* out);
  status copy_pages(heap& target);
  status copy_huge(heap& target);
  std::uint64_t relocate(std::uint64_t word) const noexcept;
  bool relocate_inside(std::uint64_t word, std::uint64_t* to) const noexcept;
  status relocate_block(heap& target, std::uint8_t* local, std::size_t bytes);
  bool pod_handle(std::uint64_t word, std::uint32_t* id) const noexcept;

  source_heap& src_;
  salvage_report* out_;
  heap_map map_;
  std::vector<bool> kept_;  // per block (mark index) of the map
  std::vector<kept_root> roots_;
  std::map<std::uint32_t, pod> pods_;                  // old pod id -> its pod in the new heap
  std::map<std::size_t, std::int64_t> segment_shift_;  // copied pages segment -> distance moved
  std::map<std::uint32_t, std::uint64_t> huge_moved_;  // kept huge unit -> its new address
};

void salvager::choose_roots() {
  map_.build(src_.view);
  const layout::heap_meta& meta = *src_.view.meta();
  const bool checksummed = recovery::records_checksummed(src_.sb);
  alloc::reach_marks marks = map_.new_marks();
  kept_.assign(marks.stamp.size(), false);
  for (std::size_t slot = 0; slot < layout::kMaxRoots; ++slot) {
    const layout::root_record& rec = meta.roots[slot];
    if (rec.in_use == recovery::kRootFree || rec.in_use == recovery::kRootRemoved) continue;
    salvaged_root r;
    bool named = ::strnlen(rec.name, sizeof(rec.name)) < sizeof(rec.name);
    r.name = named ? record_name(rec.name, sizeof(rec.name)) : "slot " + std::to_string(slot);
    if (const char* why = recovery::root_damage(rec, src_.sb.base, src_.sb.reserve, checksummed)) {
      r.lost_because = std::string("its record (slot ") + std::to_string(slot) + ") is damaged: " + why;
      out_->roots.push_back(std::move(r));
      continue;
    }
    block_ref first;
    if (map_.resolve(rec.object, &first) == heap_map::found::nothing) {
      r.lost_because = "its object " + hex(rec.object) + " is not inside a live block";
      out_->roots.push_back(std::move(r));
      continue;
    }
    heap_map::reach_result reached;
    map_.reach(rec.object, static_cast<std::uint32_t>(slot + 1), false, &marks, &reached);
    if (reached.damaged) {
      r.lost_because = reached.why;
      out_->roots.push_back(std::move(r));
      continue;
    }
    r.salvaged = true;
    r.blocks = reached.blocks.size();
    for (block_ref b : reached.blocks) {
      r.bytes += map_.block_bytes(b);
      kept_[map_.units()[b.unit].first_mark + b.index] = true;
    }
    roots_.push_back({r.name, rec.object, rec.size});
    out_->roots.push_back(std::move(r));
  }
}

status salvager::new_pod(heap& target, std::uint32_t old_id, pod* out) {
  if (auto found = pods_.find(old_id); found != pods_.end()) {
    *out = found->second;
    return {};
  }
  std::string name = old_id < layout::kMaxPods
                         ? pod_name(*src_.view.meta(), old_id, recovery::records_checksummed(src_.sb))
                         : "damaged-" + std::to_string(old_id);
  if (status s = target.make_pod(name, out); !s.ok()) return s;
  pods_[old_id] = *out;
  return {};
}

status salvager::copy_pages(heap& target) {
  alloc::region& region = target.impl()->region;
  const auto& units = map_.units();
  for (std::size_t first = 0; first < units.size();) {
    if (units[first].kind != map_unit::page) {
      ++first;
      continue;
    }
    // The units of one segment follow each other (the walk goes in order).
    const std::size_t segment = units[first].page_info.segment;
    std::size_t end = first;
    bool any = false;
    for (; end < units.size() && units[end].kind == map_unit::page && units[end].page_info.segment == segment; ++end)
      for (std::size_t b = 0; b < units[end].blocks && !any; ++b) any = kept_[units[end].first_mark + b];
    if (!any) {
      first = end;
      continue;
    }
    pod owner;
    if (status s = new_pod(target, layout::entry_pod(src_.view.entry(segment)), &owner); !s.ok()) return s;
    bool zeroed = false;
    alloc::segment* to = region.acquire(1, owner.id(), layout::kSegmentPages, &zeroed);
    if (to == nullptr) return status::from_errno(errno, "taking a segment in the new heap");
    const std::uint64_t old_address = src_.view.base + (std::uint64_t{segment} << layout::kSegmentShift);
    const std::uint64_t new_address = reinterpret_cast<std::uintptr_t>(to);
    segment_shift_[segment] = static_cast<std::int64_t>(new_address - old_address);
    for (std::size_t u = first; u < end; ++u) {
      const map_unit& unit = units[u];
      const alloc::page_facts& p = unit.page_info;
      std::vector<bool> in_use(unit.blocks, false);
      std::size_t reserved = 0;
      for (std::size_t b = 0; b < unit.blocks; ++b) {
        if (!kept_[unit.first_mark + b]) continue;
        in_use[b] = true;
        reserved = b + 1;
        // A reach read every kept block, so each lies inside the file.
        const std::uint64_t start = unit.start + b * unit.block_bytes;
        std::memcpy(reinterpret_cast<std::uint8_t*>(to) + (start - old_address),
                    src_.view.translate(start, unit.block_bytes), unit.block_bytes);
      }
      if (reserved == 0) continue;
      alloc::write_page(to, new_address, p.slice, p.geometry, reserved, (p.flags & alloc::kPageHasAligned) != 0,
                        in_use);
      std::uint64_t run = (p.slices >= 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << p.slices) - 1)) << p.slice;
      to->free_slices &= ~run;
    }
    first = end;
  }
  return {};
}

status salvager::copy_huge(heap& target) {
  const auto& units = map_.units();
  for (std::size_t u = 0; u < units.size(); ++u) {
    const map_unit& unit = units[u];
    if (unit.kind != map_unit::huge || !kept_[unit.first_mark]) continue;
    pod owner;
    if (status s = new_pod(target, unit.huge_info.pod, &owner); !s.ok()) return s;
    // The alignment its start was given: up to half a segment the block
    // starts at its alignment from the segment's start; past that at a
    // segment boundary that is a multiple of it.
    std::uint64_t offset = unit.huge_info.offset;
    std::size_t alignment = offset <= layout::kSegmentSize / 2 ? std::size_t{1} << std::countr_zero(offset)
                                                               : std::size_t{1} << std::countr_zero(unit.start);
    alignment = std::min<std::size_t>(alignment, std::size_t{1} << 30);
    void* to = owner.allocate(unit.block_bytes, alignment);
    if (to == nullptr)
      return status::from_errno(errno == 0 ? ENOMEM : errno, "allocating a huge block in the new heap");
    std::memcpy(to, src_.view.translate(unit.start, unit.block_bytes), unit.block_bytes);
    huge_moved_[static_cast<std::uint32_t>(u)] = reinterpret_cast<std::uintptr_t>(to);
  }
  return {};
}

// Where `word` goes when it lies inside a copied segment or kept huge block.
bool salvager::relocate_inside(std::uint64_t word, std::uint64_t* to) const noexcept {
  if (word - src_.view.base >= src_.view.size) return false;
  const std::size_t segment = static_cast<std::size_t>((word - src_.view.base) >> layout::kSegmentShift);
  if (auto s = segment_shift_.find(segment); s != segment_shift_.end()) {
    if ((word & (layout::kSegmentSize - 1)) == 0) return false;  // a segment's first byte is its header's
    *to = word + static_cast<std::uint64_t>(s->second);
    return true;
  }
  block_ref b;
  if (map_.resolve(word, &b) != heap_map::found::block || map_.units()[b.unit].kind != map_unit::huge) return false;
  auto moved = huge_moved_.find(b.unit);
  if (moved == huge_moved_.end()) return false;
  *to = moved->second + (word - map_.units()[b.unit].start);
  return true;
}

// Inside a kept block, or one past the end of one.
std::uint64_t salvager::relocate(std::uint64_t word) const noexcept {
  std::uint64_t to = 0;
  if (relocate_inside(word, &to)) return to;
  if (word != 0 && relocate_inside(word - 1, &to)) return to + 1;
  return word;
}

// A pod handle (larder::pod, held by every larder::allocator) is the
// address of its record in the metadata block: the pod of the same name
// in the new heap takes its place.
bool salvager::pod_handle(std::uint64_t word, std::uint32_t* id) const noexcept {
  const std::uint64_t table = src_.view.base + layout::kMetaOffset + offsetof(layout::heap_meta, pods);
  if (word < table || (word - table) % sizeof(layout::pod_record) != 0) return false;
  std::uint64_t index = (word - table) / sizeof(layout::pod_record);
  if (index >= layout::kMaxPods || src_.view.meta()->pods[index].in_use == recovery::kPodFree) return false;
  *id = static_cast<std::uint32_t>(index);
  return true;
}

status salvager::relocate_block(heap& target, std::uint8_t* local, std::size_t bytes) {
  for (std::size_t at = 0; at + sizeof(std::uint64_t) <= bytes; at += sizeof(std::uint64_t)) {
    std::uint64_t word;
    std::memcpy(&word, local + at, sizeof(word));
    std::uint64_t moved = relocate(word);
    std::uint32_t id = 0;
    if (moved == word && pod_handle(word, &id)) {
      pod p;
      if (status s = new_pod(target, id, &p); !s.ok()) return s;
      moved = reinterpret_cast<std::uintptr_t>(p.record());
    }
    if (moved == word) continue;
    std::memcpy(local + at, &moved, sizeof(moved));
    ++out_->pointers_relocated;
  }
  return {};
}

status salvager::copy_into(heap& target) {
  if (status s = copy_pages(target); !s.ok()) return s;
  if (status s = copy_huge(target); !s.ok()) return s;
  const auto& units = map_.units();
  for (std::size_t u = 0; u < units.size(); ++u) {
    const map_unit& unit = units[u];
    for (std::size_t b = 0; b < unit.blocks; ++b) {
      if (!kept_[unit.first_mark + b]) continue;
      std::uint64_t old_start = unit.start + b * unit.block_bytes;
      auto* local = reinterpret_cast<std::uint8_t*>(relocate(old_start));
      if (status s = relocate_block(target, local, unit.block_bytes); !s.ok()) return s;
      ++out_->blocks;
      out_->bytes += unit.block_bytes;
    }
  }
  for (const kept_root& r : roots_) {
    if (status s = target.set_root(r.name, reinterpret_cast<void*>(relocate(r.object)), r.size); !s.ok()) return s;
  }
  out_->pods = pods_.size();
  return {};
}

}  // namespace

status salvage_heap(backing kind, const std::string& path, const std::string& out_path, salvage_report* out) {
  *out = salvage_report{};
  if (kind == backing::anonymous) return status(errc::invalid_argument, "an anonymous heap cannot be salvaged");
  if (path.empty() || out_path.empty())
    return status(errc::invalid_argument, "a heap name and an output path are needed");
  source_heap src;
  if (status s = open_source(kind, path, &src); !s.ok()) return s;
  settle_lanes(&src, out);
  salvager work(src, out);
  work.choose_roots();
  heap_options options;
  options.kind = backing::file;
  options.name = out_path;
  options.mode = open_mode::create;
  options.reserve = src.sb.reserve;
  // The new heap's base is drawn at random among free addresses: keep it
  // out of the source's whole reserve (only the file's length of it is
  // mapped), so that the two can be opened side by side.
  std::uintptr_t hold_from = src.sb.base + src.mapping.length;
  std::size_t hold = src.sb.reserve > src.mapping.length ? src.sb.reserve - src.mapping.length : 0;
  bool held = hold != 0 && src.mapping.local == reinterpret_cast<std::uint8_t*>(src.sb.base) &&
              port::map_fixed(hold_from, hold, -1, false) == 0;
  heap target;
  status opened = heap::open(options, &target);
  if (held) port::unmap(reinterpret_cast<void*>(hold_from), hold);
  if (!opened.ok()) return opened;
  status copied = work.copy_into(target);
  status closed = target.close();
  if (copied.ok()) copied = closed;
  if (!copied.ok()) {
    (void)heap::remove(backing::file, out_path);
    return copied;
  }
  return {};
}

}  // namespace larder
