// The interface of a tier: a place below the heap's own memory that holds
// copies of pods' pages (disk, persistent memory, GPU memory, a remote
// store). The migrator writes a cold pod's pages to a tier before it drops
// them from memory, and reads them back when they are touched again; it
// sees every backend only through this class. Backends: tiers/disk,
// tiers/pmem, tiers/gpu, each over tiers/slots/slotted_tier.
#pragma once

#include <larder/status.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder::tiers {

// A tier stores whole OS pages (port::kOsPageSize bytes).
inline constexpr std::size_t kTierPageSize = 4096;

// A page of a pod: its index within the pod, and the memory that holds its
// bytes (the source of a write, the destination of a read). Addresses are
// page aligned, as heap pages are, so that a backend can move them without
// a copy (O_DIRECT, DMA).
struct page_ref {
  std::uint64_t index;
  void* address;
};

struct tier_usage {
  std::uint64_t capacity_pages;  // the most the tier will hold
  std::uint64_t used_pages;      // held now, over all pods
};

// Thread-safety: every call may run on several threads at once for
// different pods. Calls for the same pod must not overlap (the migrator
// moves a pod on one thread at a time).
class tier {
 public:
  virtual ~tier() = default;

  // Stores the pages of `pod` (any order; an index at most once), in
  // place of any copy the tier held of the same pages; other pages of the
  // pod stay. All or nothing: on failure the tier holds what it held
  // before. Not durable before sync(). Errors: out_of_space (the tier's
  // capacity or its device is full; the message says which),
  // invalid_argument (an unaligned address, an index twice), or the errno
  // value of a failed transfer.
  virtual status write(std::uint64_t pod, const page_ref* pages, std::size_t count) = 0;

  // Copies the stored pages of `pod` into each page_ref's memory.
  // not_found when the tier holds no copy of one of them (the others may
  // have been read).
  virtual status read(std::uint64_t pod, const page_ref* pages, std::size_t count) = 0;

  // Forgets every page of `pod`; its space is reused. Fine for a pod the
  // tier holds nothing of.
  virtual status drop(std::uint64_t pod) = 0;

  // Forgets pages `indexes` of `pod` (those the tier holds; the rest are
  // ignored); their space is reused. The migrator moves pages from one
  // tier to the next with it, and forgets stale copies.
  virtual status drop_pages(std::uint64_t pod, const std::uint64_t* indexes, std::size_t count) = 0;

  // Whether `pod` has a copy of page `index` here.
  virtual bool holds(std::uint64_t pod, std::uint64_t index) const = 0;

  // The indexes of every page of `pod` held, ascending (a snapshot).
  virtual std::vector<std::uint64_t> held_pages(std::uint64_t pod) const = 0;

  // Makes what write() stored durable on the tier's device.
  virtual status sync() = 0;

  virtual tier_usage usage() const = 0;
};

}  // namespace larder::tiers
