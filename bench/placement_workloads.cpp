// The workloads of larder_placement_bench (bench/placement_bench.cpp
// describes them). Shapes and sizes follow the programs they stand for;
// each choice says where it comes from. All randomness comes from the seed.
#include "placement_workloads.hpp"

#include "ycsb.hpp"

#include <larder/allocator.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace larder_bench::placement {

const char* to_string(way w) {
  switch (w) {
    case way::one_pod: return "one pod";
    case way::hand: return "hand";
    case way::automatic: return "auto";
  }
  return "?";
}

namespace {

using ycsb::random64;

// One call site per kind. noinline, and the store after the call, keep each
// its own return address: a tail call would make the caller the site, and
// identical bodies could be folded into one function.
volatile std::size_t g_last_site = 0;
using site_fn = void* (*)(larder::heap&, std::size_t);
template <std::size_t Site>
__attribute__((noinline)) void* allocate_at(larder::heap& h, std::size_t size) {
  void* p = h.allocate(size);
  g_last_site = Site;
  return p;
}
template <std::size_t... I>
constexpr std::array<site_fn, sizeof...(I)> site_table(std::index_sequence<I...>) {
  return {&allocate_at<I>...};
}
constexpr auto kSites = site_table(std::make_index_sequence<32>());

[[noreturn]] void out_of_memory(const kind_info& k) {
  std::fprintf(stderr, "larder_placement_bench: the heap is full (allocating a %s)\n", k.name);
  std::exit(1);
}

template <class T>
T* make(placer& p, std::size_t kind) {
  return new (p.allocate(kind)) T{};
}

void set_root(larder::heap& h, const char* name, void* object, std::size_t size) {
  larder::status s = h.set_root(name, object, size);
  if (!s.ok()) {
    std::fprintf(stderr, "larder_placement_bench: set_root: %s\n", s.to_string().c_str());
    std::exit(1);
  }
}

// ---- cache ---------------------------------------------------------------
// A memcached-like cache of small items. Facebook's study of memcached
// (Atikoglu et al., SIGMETRICS 2012) found keys of 16-40 bytes and most
// values under a few hundred bytes, with pools of values of a few bytes;
// here a key of up to 60 bytes and a 56-byte value, each its own object,
// beside the entry's node: all three 64-byte blocks. Gets follow YCSB's
// scrambled Zipfian over 1.25x as many keys as the cache holds (a hit rate
// near 87 %; production caches report 81-99 %); a miss reads the item
// through (a put), evicting the least recently used entry. An epoch (a
// checkpoint interval) serves a tenth as many gets as the cache holds
// entries by default: a big cache serves a small share of its entries
// between two checkpoints, and an epoch as long as the cache is big makes
// its puts write nearly every page whatever the placement.

struct cache_key {
  std::uint32_t length;
  char text[60];
};
struct cache_value {
  std::uint64_t version;
  std::uint8_t bytes[56];
};
struct cache_node {  // what every hit writes
  cache_node* chain;  // next in its bucket
  cache_node* lru_prev;
  cache_node* lru_next;
  cache_key* key;
  cache_value* value;
  std::uint64_t hash;
  std::uint64_t hits;
  std::uint64_t last_get;
};
struct cache_header {
  cache_node** buckets;
  std::uint64_t bucket_mask;
  cache_node* lru_head;
  cache_node* lru_tail;
  std::uint64_t entries, gets, hits, misses;
};
static_assert(sizeof(cache_key) == 64 && sizeof(cache_value) == 64 && sizeof(cache_node) == 64);

enum cache_kind : std::size_t { kCacheNode, kCacheKey, kCacheValue, kCacheHeader, kCacheBuckets };

class cache final : public workload {
 public:
  cache(larder::heap& h, placer& p, const workload_sizes& s, std::uint64_t seed)
      : heap_(h), placer_(p), capacity_(s.cache_entries), gets_(s.cache_gets),
        keys_(s.cache_keys != 0 ? s.cache_keys : s.cache_entries + s.cache_entries / 4), rng_(seed) {}

  void build() override {
    header_ = make<cache_header>(placer_, kCacheHeader);
    std::size_t buckets = 1;
    while (buckets < capacity_) buckets <<= 1;
    header_->buckets = static_cast<cache_node**>(placer_.allocate(kCacheBuckets, buckets * sizeof(cache_node*)));
    std::memset(header_->buckets, 0, buckets * sizeof(cache_node*));
    header_->bucket_mask = buckets - 1;
    set_root(heap_, "cache", header_, sizeof(cache_header));
    for (std::uint64_t id = 0; id < capacity_; ++id) get(id);
  }

  void step() override {
    for (std::size_t i = 0; i < gets_; ++i) get(keys_.next(rng_));
  }

  std::string outcome() const override {
    const double gets = static_cast<double>(header_->gets - capacity_);
    char text[96];
    std::snprintf(text, sizeof text, "hit rate %.1f %% after the load",
                  100.0 * static_cast<double>(header_->hits) / gets);
    return text;
  }

 private:
  struct key_text {
    char text[32];
    std::uint32_t length;
  };
  static key_text text_of(std::uint64_t hash) {
    key_text k;
    k.length = static_cast<std::uint32_t>(std::snprintf(k.text, sizeof k.text, "user%llu",
                                                        static_cast<unsigned long long>(hash)));
    return k;
  }

  void get(std::uint64_t id) {
    const std::uint64_t hash = ycsb::fnv1a64(id);
    const key_text k = text_of(hash);
    ++header_->gets;
    for (cache_node* n = header_->buckets[hash & header_->bucket_mask]; n != nullptr; n = n->chain) {
      if (n->hash == hash && n->key->length == k.length && std::memcmp(n->key->text, k.text, k.length) == 0) {
        ++header_->hits;
        ++n->hits;
        n->last_get = header_->gets;
        move_to_front(n);
        return;
      }
    }
    ++header_->misses;
    insert(hash, k);
  }

  void move_to_front(cache_node* n) {
    if (header_->lru_head == n) return;
    unlink(n);
    link_at_front(n);
  }
  void unlink(cache_node* n) {
    if (n->lru_prev != nullptr) n->lru_prev->lru_next = n->lru_next;
    else header_->lru_head = n->lru_next;
    if (n->lru_next != nullptr) n->lru_next->lru_prev = n->lru_prev;
    else header_->lru_tail = n->lru_prev;
  }
  void link_at_front(cache_node* n) {
    n->lru_prev = nullptr;
    n->lru_next = header_->lru_head;
    if (header_->lru_head != nullptr) header_->lru_head->lru_prev = n;
    header_->lru_head = n;
    if (header_->lru_tail == nullptr) header_->lru_tail = n;
  }

  // The node, key and value of one entry, made one after the other as a
  // put makes them.
  void insert(std::uint64_t hash, const key_text& k) {
    if (header_->entries == capacity_) evict(header_->lru_tail);
    auto* n = make<cache_node>(placer_, kCacheNode);
    auto* key = make<cache_key>(placer_, kCacheKey);
    auto* value = make<cache_value>(placer_, kCacheValue);
    key->length = k.length;
    std::memcpy(key->text, k.text, k.length);
    value->version = header_->gets;
    for (std::size_t i = 0; i < sizeof value->bytes; i += 8) {
      std::uint64_t word = rng_.next();
      std::memcpy(value->bytes + i, &word, 8);
    }
    n->key = key;
    n->value = value;
    n->hash = hash;
    cache_node** bucket = &header_->buckets[hash & header_->bucket_mask];
    n->chain = *bucket;
    *bucket = n;
    link_at_front(n);
    ++header_->entries;
  }

  void evict(cache_node* n) {
    unlink(n);
    cache_node** link = &header_->buckets[n->hash & header_->bucket_mask];
    while (*link != n) link = &(*link)->chain;
    *link = n->chain;
    larder::heap::deallocate(n->key);
    larder::heap::deallocate(n->value);
    larder::heap::deallocate(n);
    --header_->entries;
  }

  larder::heap& heap_;
  placer& placer_;
  std::size_t capacity_, gets_;
  ycsb::scrambled_zipfian keys_;
  random64 rng_;
  cache_header* header_ = nullptr;
};

// ---- graph ---------------------------------------------------------------
// A graph store with fixed-size records, as record-based graph databases
// keep one (a vertex record, its edges in a chain of fixed-size blocks),
// and a breadth-first sweep whose state lives in the vertex records. Out-
// degrees follow a power law (exponent 2.5, as in many measured social and
// web graphs; at least a third of the mean) with a mean of 35 by default,
// as in the Twitter-2010 follower graph and the Web Data Commons 2012 page
// graph (LiveJournal's is 14, Facebook's about 190); half of a vertex's
// edges go to vertices within 1024 ids of it (crawl or sign-up order groups
// communities), half anywhere. Each epoch takes --graph-sweep vertices off
// the frontier; when a sweep has reached all it can, the next starts from a
// random vertex.

struct edge_chunk {
  edge_chunk* next;
  std::uint32_t count;
  std::uint32_t targets[13];
};
struct vertex {
  edge_chunk* edges;
  std::uint64_t label;
  std::uint32_t id, degree;
  std::uint32_t round;  // the sweep that last reached it
  std::uint32_t distance;
  std::uint32_t parent;
  std::uint32_t frontier;  // 1 while queued
  std::uint64_t reached;   // sweeps that reached it
  std::uint64_t spare[2];
};
struct graph_header {
  std::uint64_t vertices, edges, round, visits;
};
static_assert(sizeof(edge_chunk) == 64 && sizeof(vertex) == 64);

enum graph_kind : std::size_t { kGraphVertex, kGraphChunk, kGraphHeader };

class graph final : public workload {
 public:
  graph(larder::heap& h, placer& p, const workload_sizes& s, std::uint64_t seed)
      : heap_(h), placer_(p), count_(s.graph_vertices), mean_degree_(s.graph_degree), sweep_(s.graph_sweep),
        rng_(seed) {}

  void build() override {
    header_ = make<graph_header>(placer_, kGraphHeader);
    set_root(heap_, "graph", header_, sizeof(graph_header));
    vertices_.reserve(count_);
    for (std::uint32_t id = 0; id < count_; ++id) add_vertex(id);
    header_->vertices = count_;
  }

  void step() override {
    for (std::size_t taken = 0; taken < sweep_; ++taken) {
      if (queue_head_ == queue_.size()) start_round();
      visit(vertices_[queue_[queue_head_++]]);
    }
  }

  std::string outcome() const override {
    char text[96];
    std::snprintf(text, sizeof text, "mean degree %.1f, %.1f edge blocks a vertex, %llu sweeps begun",
                  static_cast<double>(header_->edges) / static_cast<double>(count_),
                  static_cast<double>(chunks_) / static_cast<double>(count_),
                  static_cast<unsigned long long>(header_->round));
    return text;
  }

 private:
  std::uint32_t degree() {
    // Pareto with shape 1.5 (density exponent 2.5): mean = 3 x_min.
    const double x_min = std::max(1.0, mean_degree_ / 3);
    const double d = x_min / std::pow(1 - rng_.unit(), 1 / 1.5);
    return static_cast<std::uint32_t>(std::min(d, static_cast<double>(std::min<std::size_t>(count_ - 1, 5000))));
  }
  std::uint32_t neighbour(std::uint32_t id) {
    if (rng_.below(2) == 0) return static_cast<std::uint32_t>(rng_.below(count_));
    const std::int64_t near = static_cast<std::int64_t>(id) + static_cast<std::int64_t>(rng_.below(2049)) - 1024;
    return static_cast<std::uint32_t>((near + static_cast<std::int64_t>(count_)) % static_cast<std::int64_t>(count_));
  }

  // The vertex, then the blocks of its edges: a loader writes them in turn.
  void add_vertex(std::uint32_t id) {
    auto* v = make<vertex>(placer_, kGraphVertex);
    v->id = id;
    v->label = rng_.next();
    v->degree = degree();
    edge_chunk** tail = &v->edges;
    for (std::uint32_t left = v->degree; left > 0;) {
      auto* c = make<edge_chunk>(placer_, kGraphChunk);
      ++chunks_;
      c->count = std::min<std::uint32_t>(left, 13);
      for (std::uint32_t i = 0; i < c->count; ++i) c->targets[i] = neighbour(id);
      left -= c->count;
      *tail = c;
      tail = &c->next;
    }
    header_->edges += v->degree;
    vertices_.push_back(v);
  }

  void start_round() {
    queue_.clear();
    queue_head_ = 0;
    const std::uint32_t round = static_cast<std::uint32_t>(++header_->round);
    vertex* source = vertices_[rng_.below(count_)];
    source->round = round;
    source->distance = 0;
    source->parent = source->id;
    source->frontier = 1;
    queue_.push_back(source->id);
  }

  void visit(vertex* v) {
    const std::uint32_t round = static_cast<std::uint32_t>(header_->round);
    v->frontier = 0;
    ++header_->visits;
    for (const edge_chunk* c = v->edges; c != nullptr; c = c->next) {
      for (std::uint32_t i = 0; i < c->count; ++i) {
        vertex* u = vertices_[c->targets[i]];
        if (u->round == round) continue;
        u->round = round;
        u->distance = v->distance + 1;
        u->parent = v->id;
        u->frontier = 1;
        ++u->reached;
        queue_.push_back(u->id);
      }
    }
  }

  larder::heap& heap_;
  placer& placer_;
  std::size_t count_;
  double mean_degree_;
  std::size_t sweep_;
  random64 rng_;
  graph_header* header_ = nullptr;
  // Process memory: the id -> record table a loader rebuilds and the
  // sweep's queue, which the frontier flags in the records stand for.
  std::vector<vertex*> vertices_;
  std::vector<std::uint32_t> queue_;
  std::size_t queue_head_ = 0;
  std::size_t chunks_ = 0;
};

// ---- log -----------------------------------------------------------------
// An append-only event log with a per-key index, as time-series and
// event-sourcing stores keep one: each record (64 bytes with a 32-byte
// payload, like a metric sample or a small event) is written once and
// links back to the key's previous record; the key's index node (count,
// first, last, running sum, min and max) is updated at every append for
// that key, and is made at the key's first record, between records. Keys
// (sensors, users) are drawn by YCSB's scrambled Zipfian; by default an
// epoch appends two records a key on average, as a store that checkpoints
// every couple of samples does.

struct log_record {
  std::uint64_t sequence;
  std::uint64_t timestamp;
  log_record* previous;  // the key's record before this one
  std::uint32_t key;
  std::uint32_t length;
  std::uint8_t payload[32];
};
struct index_node {
  std::uint32_t key;
  std::uint32_t spare;
  std::uint64_t count;
  log_record* first;
  log_record* last;
  std::uint64_t last_timestamp;
  double sum, minimum, maximum;
};
struct log_header {
  std::uint64_t records;
  std::uint64_t keys;
  index_node** directory;  // by key
  log_record* tail;
};
static_assert(sizeof(log_record) == 64 && sizeof(index_node) == 64);

enum log_kind : std::size_t { kLogRecord, kLogIndex, kLogDirectory, kLogHeader };

class event_log final : public workload {
 public:
  event_log(larder::heap& h, placer& p, const workload_sizes& s, std::uint64_t seed)
      : heap_(h), placer_(p), key_count_(s.log_keys), history_(s.log_history), appends_(s.log_appends),
        keys_(s.log_keys), rng_(seed) {}

  void build() override {
    header_ = make<log_header>(placer_, kLogHeader);
    header_->directory = static_cast<index_node**>(placer_.allocate(kLogDirectory, key_count_ * sizeof(index_node*)));
    std::memset(header_->directory, 0, key_count_ * sizeof(index_node*));
    set_root(heap_, "log", header_, sizeof(log_header));
    for (std::size_t i = 0; i < history_; ++i) append();
  }

  void step() override {
    for (std::size_t i = 0; i < appends_; ++i) append();
  }

  std::string outcome() const override {
    char text[96];
    std::snprintf(text, sizeof text, "%llu of %zu keys seen, %llu records",
                  static_cast<unsigned long long>(header_->keys), key_count_,
                  static_cast<unsigned long long>(header_->records));
    return text;
  }

 private:
  void append() {
    const auto key = static_cast<std::uint32_t>(keys_.next(rng_));
    auto* r = make<log_record>(placer_, kLogRecord);
    r->sequence = header_->records;
    r->timestamp = header_->records * 1000 + rng_.below(1000);
    r->key = key;
    r->length = sizeof r->payload;
    for (std::size_t i = 0; i < sizeof r->payload; i += 8) {
      std::uint64_t word = rng_.next();
      std::memcpy(r->payload + i, &word, 8);
    }
    const double value = rng_.unit() * 100;
    index_node*& slot = header_->directory[key];
    if (slot == nullptr) {
      slot = make<index_node>(placer_, kLogIndex);
      slot->key = key;
      slot->first = r;
      slot->minimum = slot->maximum = value;
      ++header_->keys;
    }
    index_node* node = slot;
    r->previous = node->last;
    node->last = r;
    ++node->count;
    node->last_timestamp = r->timestamp;
    node->sum += value;
    node->minimum = std::min(node->minimum, value);
    node->maximum = std::max(node->maximum, value);
    header_->tail = r;
    ++header_->records;
  }

  larder::heap& heap_;
  placer& placer_;
  std::size_t key_count_, history_, appends_;
  ycsb::scrambled_zipfian keys_;
  random64 rng_;
  log_header* header_ = nullptr;
};

// ---- notebook ------------------------------------------------------------
// A data notebook, one cell per epoch: each cell makes rows of results
// (256 bytes: 32 values), between 64 and --notebook-max-rows of them, log-
// uniformly (most cells make a small table, some a large one), which later
// cells only read (a sample of 256 earlier rows); a quarter of the cells
// define a new long-lived accumulator (running count, sum, sum of squares,
// extremes and a histogram of one column: 256 bytes too, made while the
// cell makes its rows), up to 16; every cell folds its rows into every
// accumulator.

struct row {
  double values[32];
};
struct accumulator {
  std::uint64_t count;
  std::uint32_t column, defined_in_cell;
  double sum, sum_squares, minimum, maximum;
  double histogram[26];
};
struct notebook_header {
  std::uint64_t cells, rows, accumulators;
  double last_sample;  // what the last cell read of earlier rows
};
static_assert(sizeof(row) == 256 && sizeof(accumulator) == 256);

enum notebook_kind : std::size_t { kNotebookRow, kNotebookAccumulator, kNotebookHeader };
constexpr std::size_t kMaxAccumulators = 16;
constexpr std::size_t kRowsRead = 256;

class notebook final : public workload {
 public:
  notebook(larder::heap& h, placer& p, const workload_sizes& s, std::uint64_t seed)
      : heap_(h), placer_(p), history_(s.notebook_history), max_rows_(std::max<std::size_t>(s.notebook_max_rows, 64)),
        rng_(seed) {}

  void build() override {
    header_ = make<notebook_header>(placer_, kNotebookHeader);
    set_root(heap_, "notebook", header_, sizeof(notebook_header));
    for (std::size_t i = 0; i < history_; ++i) step();
  }

  void step() override {
    const auto n = static_cast<std::size_t>(64 * std::pow(static_cast<double>(max_rows_) / 64, rng_.unit()));
    const bool defines = header_->cells == 0 || (accumulators_.size() < kMaxAccumulators && rng_.below(4) == 0);
    const std::size_t define_at = defines ? rng_.below(n) : n;
    const std::size_t first = rows_.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i == define_at) define_accumulator();
      auto* r = make<row>(placer_, kNotebookRow);
      for (double& v : r->values) v = rng_.unit() * 100;
      rows_.push_back(r);
    }
    double seen = 0;
    for (std::size_t i = 0; i < kRowsRead; ++i) seen += rows_[rng_.below(first == 0 ? rows_.size() : first)]->values[0];
    for (accumulator* a : accumulators_) fold(a, first);
    header_->last_sample = seen;
    ++header_->cells;
    header_->rows += n;
  }

  std::string outcome() const override {
    char text[96];
    std::snprintf(text, sizeof text, "%llu cells, %llu rows, %zu accumulators",
                  static_cast<unsigned long long>(header_->cells), static_cast<unsigned long long>(header_->rows),
                  accumulators_.size());
    return text;
  }

 private:
  void define_accumulator() {
    auto* a = make<accumulator>(placer_, kNotebookAccumulator);
    a->column = static_cast<std::uint32_t>(accumulators_.size() % 32);
    a->defined_in_cell = static_cast<std::uint32_t>(header_->cells);
    a->minimum = 1e300;
    a->maximum = -1e300;
    accumulators_.push_back(a);
    ++header_->accumulators;
  }

  void fold(accumulator* a, std::size_t first) {
    for (std::size_t i = first; i < rows_.size(); ++i) {
      const double v = rows_[i]->values[a->column];
      ++a->count;
      a->sum += v;
      a->sum_squares += v * v;
      a->minimum = std::min(a->minimum, v);
      a->maximum = std::max(a->maximum, v);
      a->histogram[std::min<std::size_t>(static_cast<std::size_t>(v / 4), 25)] += 1;
    }
  }

  larder::heap& heap_;
  placer& placer_;
  std::size_t history_, max_rows_;
  random64 rng_;
  notebook_header* header_ = nullptr;
  // Process memory: the notebook's variables (pointers to the rows and
  // accumulators it made).
  std::vector<row*> rows_;
  std::vector<accumulator*> accumulators_;
};

template <class W>
std::unique_ptr<workload> make_workload(larder::heap& h, placer& p, const workload_sizes& s, std::uint64_t seed) {
  return std::make_unique<W>(h, p, s, seed);
}

}  // namespace

placer::placer(larder::heap& h, way w, const std::vector<kind_info>& kinds, std::size_t first_site)
    : heap_(h), way_(w), kinds_(kinds), first_site_(first_site), pods_(kinds.size()), block_bytes_(kinds.size()),
      first_pod_(kinds.size()) {
  if (first_site + kinds.size() > kSites.size()) {
    std::fprintf(stderr, "larder_placement_bench: too few allocation sites\n");
    std::exit(1);
  }
  if (w != way::hand) return;
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    larder::status s = h.make_pod(kinds[k].hand_pod, &pods_[k]);
    if (!s.ok()) {
      std::fprintf(stderr, "larder_placement_bench: make_pod %s: %s\n", kinds[k].hand_pod, s.to_string().c_str());
      std::exit(1);
    }
  }
}

void* placer::allocate(std::size_t kind, std::size_t size) {
  if (size == 0) size = kinds_[kind].size;
  void* p = way_ == way::hand ? pods_[kind].allocate(size) : kSites[first_site_ + kind](heap_, size);
  if (p == nullptr) out_of_memory(kinds_[kind]);
  if (block_bytes_[kind] == 0) {
    block_bytes_[kind] = larder::usable_size(p);
    first_pod_[kind] = heap_.pod_of(p).id();
  }
  return p;
}

const std::vector<workload_def>& workloads() {
  static const std::vector<workload_def> list = {
      {"cache",
       "hash table of entries; a 64 B node per entry (hit count, LRU links) written by every hit, made between "
       "its 64 B key and value, written once; Zipfian gets, misses put and evict the LRU entry",
       {{"node", sizeof(cache_node), role::hot, "cache.hot"},
        {"key", sizeof(cache_key), role::cold, "cache.cold"},
        {"value", sizeof(cache_value), role::cold, "cache.cold"},
        {"header", sizeof(cache_header), role::other, "cache.hot"},
        {"buckets", 0, role::other, "cache.hot"}},
       &make_workload<cache>},
      {"graph",
       "64 B vertex records whose sweep state (round, distance, parent, frontier flag) a breadth-first sweep writes, "
       "made between 64 B edge blocks written once at load",
       {{"vertex", sizeof(vertex), role::hot, "graph.state"},
        {"edges", sizeof(edge_chunk), role::cold, "graph.edges"},
        {"header", sizeof(graph_header), role::other, "graph.state"}},
       &make_workload<graph>},
      {"log",
       "append-only 64 B records written once, a 64 B index node per key updated at each append for its key and "
       "made between records at the key's first one",
       {{"record", sizeof(log_record), role::cold, "log.records"},
        {"index", sizeof(index_node), role::hot, "log.index"},
        {"directory", 0, role::other, "log.index"},
        {"header", sizeof(log_header), role::other, "log.index"}},
       &make_workload<event_log>},
      {"notebook",
       "one cell per epoch: 256 B result rows written once then only read, 256 B accumulators (a few, long-lived, "
       "defined between rows) updated by every cell",
       {{"row", sizeof(row), role::cold, "nb.data"},
        {"accumulator", sizeof(accumulator), role::hot, "nb.state"},
        {"header", sizeof(notebook_header), role::other, "nb.state"}},
       &make_workload<notebook>},
  };
  return list;
}

}  // namespace larder_bench::placement
