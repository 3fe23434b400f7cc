// Crash-test sample: plain allocation and free, outside any transaction,
// over every size class up to 8 MiB, on a file heap. A kill at any instant
// must leave a heap that opens, checks clean, keeps every committed
// transaction, and has leaked at most the blocks that were in flight.
// Built twice: plain_alloc_sample (random blocks in 64 slots of the root)
// and container_sample (SAMPLE_CONTAINERS: a std::vector and a std::map
// with larder::allocator grown outside transactions, the README's pattern).
// Usage (see sample_common.hpp): larder crashtest --kill N -- SAMPLE [OPS [SEED]]
// With a third argument `power` (for --every and --random), the check
// phase asks only what a power failure keeps: plain stores reach the file
// only at close, so the slots may name anything, but the heap must open,
// check clean, hold every committed transaction and go on working.
// With `mixed` as an argument after the seed, each of those transactions
// also allocates or frees a block of its own (kept slots), in the same
// pages as the plain blocks: committed blocks must survive too. With
// `mixed-pods` it does so in a pod of its own, as docs/persistence.md
// asks of programs that mix the two and must survive power failures.
// With `placed`, the heap has automatic pod placement and is tracked, with
// a collect every 64 operations: placement makes pods and rewrites its
// record in the heap at collects, beside the plain allocation.
#include "sample_common.hpp"

#include <larder/allocator.hpp>

#include <cstring>
#include <map>
#include <vector>

namespace {

constexpr std::size_t kSlots = 64;
constexpr std::size_t kMaxBlock = std::size_t{8} << 20;
// Every 16th operation also commits a transaction that counts operations:
// committed work must survive whatever plain allocation was doing.
constexpr std::uint64_t kCommitEvery = 16;

bool g_power_failure = false;
bool g_mixed = false;
bool g_kept_pod = false;  // kept blocks in a pod of their own
constexpr std::size_t kKeptSlots = 16;

using vector_type = std::vector<std::uint64_t, larder::allocator<std::uint64_t>>;
using map_type = std::map<std::uint64_t, std::uint64_t, std::less<>,
                          larder::allocator<std::pair<const std::uint64_t, std::uint64_t>>>;

struct plain_root {
  std::uint64_t operations;  // committed by transactions, every kCommitEvery
  std::uint64_t next_op;     // plain: the operation being done
  void* slots[kSlots];       // live blocks, written plainly
  std::uint64_t sizes[kSlots];
  vector_type* vector;
  map_type* map;
  void* kept[kKeptSlots];  // committed by transactions (mixed)
  std::uint64_t kept_sizes[kKeptSlots];
};

// Sizes spread over every size class: log-uniform from 1 byte to 8 MiB.
std::size_t draw_size(sample::random& r) {
  unsigned shift = static_cast<unsigned>(r.below(24));
  std::size_t low = std::size_t{1} << shift;
  std::size_t size = low + r.below(low);
  return size > kMaxBlock ? kMaxBlock : size;
}

std::uint64_t tag_of(std::size_t slot, std::uint64_t size) { return 0x5A5A000000000000ull ^ (slot << 40) ^ size; }

void fill(void* p, std::size_t slot, std::uint64_t size) {
  std::uint64_t tag = tag_of(slot, size);
  auto* bytes = static_cast<unsigned char*>(p);
  std::memcpy(bytes, &tag, size < 8 ? size : 8);
  if (size >= 16) std::memcpy(bytes + size - 8, &tag, 8);
}

bool tagged(const void* p, std::size_t slot, std::uint64_t size) {
  std::uint64_t tag = tag_of(slot, size);
  auto* bytes = static_cast<const unsigned char*>(p);
  if (std::memcmp(bytes, &tag, size < 8 ? size : 8) != 0) return false;
  return size < 16 || std::memcmp(bytes + size - 8, &tag, 8) == 0;
}

// One plain operation: free the block in a random slot, or allocate one
// into it. The slot is cleared before the free and set after the
// allocation, so a kill in between leaks the block and never leaves a
// slot naming freed memory.
[[maybe_unused]] void plain_step(larder::heap& h, plain_root* root, sample::random& r) {
  std::size_t slot = r.below(kSlots);
  if (void* p = root->slots[slot]) {
    root->slots[slot] = nullptr;
    larder::heap::deallocate(p);
    return;
  }
  std::size_t size = draw_size(r);
  void* p = h.allocate(size);
  if (p == nullptr) sample::fail("allocating %zu bytes failed", size);
  fill(p, slot, size);
  root->sizes[slot] = size;
  root->slots[slot] = p;
}

// The README's pattern: containers with larder::allocator growing with no
// transaction. A kill may leave them half-updated (nothing promises
// otherwise), but never the heap.
[[maybe_unused]] void container_step(plain_root* root, sample::random& r) {
  std::uint64_t key = r.below(4096);
  if (r.below(4) == 0) {
    root->map->erase(key);
  } else {
    (*root->map)[key] = r.next();
  }
  // The vector grows by doubling past 8 MiB, through every size class and
  // huge blocks, and now and then starts over.
  if (r.below(1u << 14) == 0) {
    root->vector->clear();
    root->vector->shrink_to_fit();
  }
  for (int i = 0; i < 8; ++i) root->vector->push_back(key);
}

plain_root* make_root(larder::heap& h) {
  larder::transaction tx(h);
  auto* root = h.root<plain_root>("plain", plain_root{});
#ifdef SAMPLE_CONTAINERS
  if (root->vector == nullptr) {
    tx.snapshot(root);
    larder::pod_scope scope(h.default_pod());
    root->vector = tx.make<vector_type>();
    root->map = tx.make<map_type>();
  }
#endif
  return root;
}

std::uint64_t kept_tag(std::size_t slot, std::uint64_t size) { return ~tag_of(slot + kSlots, size); }

// A transaction's own allocation or free, in a kept slot: sizes up to
// 64 KiB, so that it shares pages with plain blocks of the same classes.
void kept_step(larder::transaction& tx, plain_root* root, sample::random& r) {
  std::size_t slot = r.below(kKeptSlots);
  tx.snapshot(&root->kept[slot]);
  tx.snapshot(&root->kept_sizes[slot]);
  if (void* p = root->kept[slot]) {
    tx.free(p);
    root->kept[slot] = nullptr;
    return;
  }
  std::size_t size = 16 + r.below((std::size_t{64} << 10) >> r.below(12));
  larder::pod in = g_kept_pod ? tx.owner().find_pod("kept") : larder::pod();
  auto* p = static_cast<std::uint64_t*>(tx.allocate(size, alignof(std::max_align_t), in));
  p[0] = kept_tag(slot, size);
  root->kept[slot] = p;
  root->kept_sizes[slot] = size;
}

void run(larder::heap& h, const sample::arguments& a) {
  plain_root* root = make_root(h);
  if (g_kept_pod) {
    larder::pod kept;
    larder::throw_if_error(h.make_pod("kept", &kept));
  }
  sample::random r(a.seed);
  const bool collecting = sample::g_placement != larder::placement_policy::off && h.start_tracking().ok();
  larder::dirty_set written;
  for (std::uint64_t i = root->next_op; i < a.operations; ++i) {
    if (collecting && i % 64 == 0) larder::throw_if_error(h.collect_dirty(&written));
    root->next_op = i;
#ifdef SAMPLE_CONTAINERS
    container_step(root, r);
#else
    plain_step(h, root, r);
#endif
    if ((i + 1) % kCommitEvery == 0) {
      {
        larder::transaction tx(h);
        tx.snapshot(&root->operations);
        root->operations = (i + 1) / kCommitEvery;
        if (g_mixed) kept_step(tx, root, r);
      }
      larder::crashtest::acknowledge(root->operations);
    }
  }
}

// The blocks of the containers, or false when a kill left them half-updated
// (a tree rotation or a vector's growth cut short: nothing promises
// otherwise outside a transaction). The tree is walked by hand, every link
// checked before it is followed and the walk bounded, since a torn tree
// may hold cycles or links to freed blocks. libstdc++'s node layout: the
// tree links (_Rb_tree_node_base), then the value.
bool collect_container_blocks(const larder::heap& h, const plain_root* root, std::vector<const void*>* blocks) {
  std::size_t mapped = h.stats().mapped_size;
  auto inside = [&](const void* p, std::size_t bytes) {
    auto at = static_cast<const char*>(p) - static_cast<const char*>(h.base());
    return p != nullptr && h.contains(p) && static_cast<std::size_t>(at) + bytes <= mapped &&
           larder::usable_size(p) >= bytes;
  };
  if (!inside(root->vector, sizeof(vector_type)) || !inside(root->map, sizeof(map_type))) return false;
  blocks->push_back(root->vector);
  blocks->push_back(root->map);
  std::size_t capacity = root->vector->capacity();
  if (capacity != 0) {
    if (!inside(root->vector->data(), capacity * sizeof(std::uint64_t))) return false;
    blocks->push_back(root->vector->data());
  }
  using node = std::_Rb_tree_node_base;
  const node* header = root->map->end()._M_node;
  std::vector<const node*> stack;
  if (header->_M_parent != nullptr) stack.push_back(header->_M_parent);
  std::size_t limit = 2 * 4096;  // keys are below 4096
  while (!stack.empty()) {
    const node* n = stack.back();
    stack.pop_back();
    if (!inside(n, sizeof(node) + sizeof(std::pair<const std::uint64_t, std::uint64_t>)) || blocks->size() > limit)
      return false;
    blocks->push_back(n);
    if (n->_M_left != nullptr) stack.push_back(n->_M_left);
    if (n->_M_right != nullptr) stack.push_back(n->_M_right);
  }
  return blocks->size() == 2 + (capacity != 0) + root->map->size();
}

// Fresh blocks of every size class must be distinct, writable and apart
// from every committed block.
void check_usable_after_power_failure(larder::heap& h, const plain_root* root, const sample::arguments& a) {
  sample::random r(a.seed ^ 0xFEED);
  std::vector<std::pair<char*, std::size_t>> fresh;
  for (int i = 0; i < 32; ++i) {
    std::size_t size = draw_size(r);
    auto* p = static_cast<char*>(h.allocate(size));
    if (p == nullptr) sample::fail("allocating %zu bytes after the crash failed", size);
    for (const auto& [q, n] : fresh)
      if (p < q + n && q < p + size) sample::fail("two fresh blocks overlap: %p and %p", static_cast<void*>(p), q);
    for (std::size_t slot = 0; slot < kKeptSlots; ++slot) {
      auto* q = static_cast<const char*>(root->kept[slot]);
      if (q != nullptr && p < q + root->kept_sizes[slot] && q < p + size)
        sample::fail("a fresh block at %p overlaps the committed block in kept slot %zu", static_cast<void*>(p), slot);
    }
    std::memset(p, i, size);
    fresh.emplace_back(p, size);
  }
  for (std::size_t i = 0; i < fresh.size(); ++i)
    if (fresh[i].first[0] != static_cast<char>(i) || fresh[i].first[fresh[i].second - 1] != static_cast<char>(i))
      sample::fail("a fresh block was overwritten by another");
  for (const auto& block : fresh) larder::heap::deallocate(block.first);
}

void check(larder::heap& h, const sample::arguments& a, std::uint64_t acknowledged) {
  std::size_t root_size = 0;
  auto* root = static_cast<plain_root*>(h.find_root("plain", &root_size));
  if (root == nullptr) {
    if (acknowledged != 0) sample::fail("the root \"plain\" is missing after %llu commits",
                                        static_cast<unsigned long long>(acknowledged));
    std::printf("plain: no root yet\n");
    return;
  }
  if (root_size != sizeof(plain_root)) sample::fail("the root has size %zu", root_size);
  sample::check_counter(root->operations, acknowledged, a.operations / kCommitEvery);
  std::size_t expected = larder::usable_size(root);
  for (std::size_t slot = 0; slot < kKeptSlots; ++slot) {
    const auto* p = static_cast<const std::uint64_t*>(root->kept[slot]);
    if (p == nullptr) continue;
    if (!h.contains(p) || larder::usable_size(p) < root->kept_sizes[slot])
      sample::fail("kept slot %zu names %p, not a committed block", slot, static_cast<const void*>(p));
    if (p[0] != kept_tag(slot, root->kept_sizes[slot]))
      sample::fail("kept slot %zu: the committed block's contents changed", slot);
    expected += larder::usable_size(p);
  }
  if (g_power_failure) {
    check_usable_after_power_failure(h, root, a);
    std::printf("plain: %llu commits (%llu acknowledged): ok\n", static_cast<unsigned long long>(root->operations),
                static_cast<unsigned long long>(acknowledged));
    return;
  }
  std::size_t live = 0;
  for (std::size_t slot = 0; slot < kSlots; ++slot) {
    const void* p = root->slots[slot];
    if (p == nullptr) continue;
    if (!h.contains(p)) sample::fail("slot %zu names %p, outside the heap", slot, p);
    if (larder::usable_size(p) < root->sizes[slot])
      sample::fail("slot %zu: block of %llu bytes has only %zu usable", slot,
                   static_cast<unsigned long long>(root->sizes[slot]), larder::usable_size(p));
    if (!tagged(p, slot, root->sizes[slot])) sample::fail("slot %zu: the block's contents changed", slot);
    expected += larder::usable_size(p);
    ++live;
  }
  std::size_t container_blocks = 0;
  bool measured = true;
  if (root->vector != nullptr) {
    std::vector<const void*> blocks;
    measured = collect_container_blocks(h, root, &blocks);
    for (const void* b : blocks) expected += larder::usable_size(b);
    container_blocks = blocks.size();
  }
  std::size_t in_use = sample::bytes_in_use(h);
  std::size_t leaked = 0;
  if (measured) {
    if (in_use < expected)
      sample::fail("the heap counts %zu bytes in use, less than the %zu its live blocks hold", in_use, expected);
    leaked = in_use - expected;
    // In flight at a kill: one block being allocated or freed (at most
    // 8 MiB), or a container's old and new buffers while it grows (at most
    // twice its largest buffer), plus blocks parked in the thread's cache.
    std::size_t bound = 2 * kMaxBlock + (std::size_t{1} << 20);
    if (root->vector != nullptr) bound += 3 * root->vector->capacity() * sizeof(std::uint64_t);
    if (leaked > bound) sample::fail("%zu bytes leaked, more than the %zu in flight", leaked, bound);
  }
  // The heap must go on working: fresh blocks overlap nothing live.
  std::vector<void*> fresh;
  sample::random r(a.seed ^ 0xC0FFEE);
  for (int i = 0; i < 32; ++i) {
    std::size_t size = draw_size(r);
    void* p = h.allocate(size);
    if (p == nullptr) sample::fail("allocating %zu bytes after the crash failed", size);
    for (std::size_t slot = 0; slot < kSlots; ++slot) {
      auto* s = static_cast<const char*>(root->slots[slot]);
      auto* q = static_cast<const char*>(p);
      if (s != nullptr && q < s + root->sizes[slot] && s < q + size)
        sample::fail("a new block at %p overlaps the live block in slot %zu", p, slot);
    }
    for (std::size_t slot = 0; slot < kKeptSlots; ++slot) {
      auto* k = static_cast<const char*>(root->kept[slot]);
      auto* q = static_cast<const char*>(p);
      if (k != nullptr && q < k + root->kept_sizes[slot] && k < q + size)
        sample::fail("a new block at %p overlaps the committed block in kept slot %zu", p, slot);
    }
    std::memset(p, 0xEE, size);
    fresh.push_back(p);
  }
  for (std::size_t slot = 0; slot < kSlots; ++slot)
    if (root->slots[slot] != nullptr && !tagged(root->slots[slot], slot, root->sizes[slot]))
      sample::fail("slot %zu was overwritten by a new block", slot);
  for (void* p : fresh) larder::heap::deallocate(p);
  if (!measured) {
    std::printf("plain: %llu commits (%llu acknowledged), %zu live blocks; the kill left the containers "
                "half-updated, leak not measured\n",
                static_cast<unsigned long long>(root->operations), static_cast<unsigned long long>(acknowledged), live);
    return;
  }
  std::printf("plain: %llu commits (%llu acknowledged), %zu live blocks, %zu container blocks, leaked %zu bytes\n",
              static_cast<unsigned long long>(root->operations), static_cast<unsigned long long>(acknowledged), live,
              container_blocks, leaked);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 3; i < argc; ++i) {
    g_power_failure |= std::strcmp(argv[i], "power") == 0;
    g_kept_pod |= std::strcmp(argv[i], "mixed-pods") == 0;
    g_mixed |= g_kept_pod || std::strcmp(argv[i], "mixed") == 0;
  }
  return sample::main(argc, argv, {"plain", run, check});
}
