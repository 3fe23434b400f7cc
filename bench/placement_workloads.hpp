// The four programs larder_placement_bench runs (bench/placement_bench.cpp):
// each keeps hot and cold objects of one size class allocated interleaved,
// the way real programs do, and does one epoch's work per step(). Every
// object goes through a placer, which allocates it one of three ways (the
// program's code is the same in all three); entry point: workloads().
#pragma once

#include <larder/heap.hpp>
#include <larder/pod.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace larder_bench::placement {

enum class way : std::uint8_t {
  one_pod,    // placement off: everything in the default pod
  hand,       // placement off: each kind in the named pod a careful programmer picks
  automatic,  // placement on, the program allocating exactly as in one_pod
};
const char* to_string(way w);

enum class role : std::uint8_t { hot, cold, other };

// One kind of object a workload allocates, each from a call site of its own.
struct kind_info {
  const char* name;
  std::size_t size;      // bytes asked for
  role temperature;      // what the program does with it after it is made
  const char* hand_pod;  // its pod in the `hand` way
};

// Allocates a workload's objects by kind. one_pod and automatic call
// heap::allocate from one site per kind (the same code either way; the
// heap's options decide); hand allocates from the kind's named pod.
class placer {
 public:
  placer(larder::heap& h, way w, const std::vector<kind_info>& kinds, std::size_t first_site);
  // A block of `size` bytes (0: the kind's size); exits the program when
  // the heap is full.
  void* allocate(std::size_t kind, std::size_t size = 0);
  // The usable size of the first block of `kind` (its size class); 0 until one.
  std::size_t block_bytes(std::size_t kind) const { return block_bytes_[kind]; }
  // The pod the first block of `kind` went to (for telling sites apart).
  std::uint32_t first_pod(std::size_t kind) const { return first_pod_[kind]; }

 private:
  larder::heap& heap_;
  way way_;
  std::vector<kind_info> kinds_;
  std::size_t first_site_;
  std::vector<larder::pod> pods_;
  std::vector<std::size_t> block_bytes_;
  std::vector<std::uint32_t> first_pod_;
};

// Sizes of the programs, from the command line (defaults in the .cpp).
struct workload_sizes {
  std::size_t cache_entries = 100000;
  std::size_t cache_gets = 10000;   // per epoch
  std::size_t cache_keys = 0;       // keys gets draw from; 0: 1.25 x cache_entries
  std::size_t graph_vertices = 100000;
  double graph_degree = 35;         // mean out-degree
  std::size_t graph_sweep = 12500;  // vertices taken off the frontier per epoch
  std::size_t log_keys = 20000;
  std::size_t log_history = 400000;  // records before the epochs
  std::size_t log_appends = 40000;   // per epoch
  std::size_t notebook_history = 40;  // cells before the epochs
  std::size_t notebook_max_rows = 4096;  // per cell; at least 64
};

class workload {
 public:
  virtual ~workload() = default;
  // The program's state before the first epoch.
  virtual void build() = 0;
  // One epoch's work.
  virtual void step() = 0;
  // What the program did, for the report ("hit rate 91.0 %").
  virtual std::string outcome() const = 0;
};

struct workload_def {
  const char* name;
  const char* summary;  // one line for the report
  std::vector<kind_info> kinds;
  std::unique_ptr<workload> (*make)(larder::heap& h, placer& p, const workload_sizes& sizes, std::uint64_t seed);
};

// cache, graph, log, notebook: in that order.
const std::vector<workload_def>& workloads();

}  // namespace larder_bench::placement
