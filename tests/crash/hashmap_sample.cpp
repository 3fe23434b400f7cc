// Crash-test sample: a hash map with chained nodes in a file heap, under
// the root "hashmap". Each operation is one transaction: put, erase or
// update a key. The bucket array doubles when the map holds more than two
// entries per bucket and halves below one per two buckets, rehashing
// every node inside the same transaction.
// Usage (see sample_common.hpp): larder crashtest -- hashmap_sample [OPS [SEED]]
#include "sample_common.hpp"

#include <cstring>
#include <map>
#include <set>
#include <vector>

namespace {

struct node {
  std::uint64_t key;
  std::uint64_t value;
  node* next;
};

struct map_root {
  std::uint64_t operations;  // transactions committed
  std::uint64_t size;
  std::uint64_t bucket_count;  // a power of two, at least kMinBuckets
  node** buckets;
};

constexpr std::uint64_t kMinBuckets = 4;

using model = sample::keyed_model;

std::uint64_t bucket_of(std::uint64_t key, std::uint64_t bucket_count) {
  std::uint64_t x = key * 0x9E3779B97F4A7C15ull;
  return (x ^ (x >> 29)) & (bucket_count - 1);
}

node** new_buckets(larder::transaction& tx, std::uint64_t count) {
  auto* b = static_cast<node**>(tx.allocate(count * sizeof(node*), alignof(node*)));
  std::memset(b, 0, count * sizeof(node*));
  return b;
}

// Moves every node to a new array of `count` buckets; the nodes' links
// are logged as they change, the old array is freed at commit.
void rehash(larder::transaction& tx, map_root* root, std::uint64_t count) {
  node** fresh = new_buckets(tx, count);
  for (std::uint64_t b = 0; b < root->bucket_count; ++b) {
    for (node* n = root->buckets[b]; n != nullptr;) {
      node* next = n->next;
      node** head = &fresh[bucket_of(n->key, count)];
      tx.snapshot(&n->next);
      n->next = *head;
      *head = n;
      n = next;
    }
  }
  tx.free(root->buckets);
  root->buckets = fresh;
  root->bucket_count = count;
}

// The link that points at `key`'s node, or at the end of its chain.
node** find(map_root* root, std::uint64_t key) {
  node** link = &root->buckets[bucket_of(key, root->bucket_count)];
  while (*link != nullptr && (*link)->key != key) link = &(*link)->next;
  return link;
}

void perform(larder::transaction& tx, map_root* root, const sample::keyed_op& op) {
  tx.snapshot(root);
  ++root->operations;
  node** link = find(root, op.key);
  node* n = *link;
  switch (op.kind) {
    case sample::op_kind::put:
    case sample::op_kind::update:
      if (n != nullptr) {
        tx.snapshot(&n->value);
        n->value = op.value;
      } else if (op.kind == sample::op_kind::put) {
        node* added = tx.make<node>(node{op.key, op.value, nullptr});
        tx.snapshot(link);
        *link = added;
        if (++root->size > 2 * root->bucket_count) rehash(tx, root, root->bucket_count * 2);
      }
      break;
    case sample::op_kind::erase:
      if (n == nullptr) break;
      tx.snapshot(link);
      *link = n->next;
      tx.destroy(n);
      if (--root->size < root->bucket_count / 2 && root->bucket_count > kMinBuckets)
        rehash(tx, root, root->bucket_count / 2);
      break;
  }
}

map_root* make_root(larder::heap& h) {
  larder::transaction tx(h);
  if (void* found = h.find_root("hashmap")) return static_cast<map_root*>(found);
  map_root* root = h.root<map_root>("hashmap", map_root{0, 0, kMinBuckets, nullptr});
  root->buckets = new_buckets(tx, kMinBuckets);
  return root;
}

void run(larder::heap& h, const sample::arguments& a) { sample::run_keyed(h, a, make_root(h), perform); }

// Walks every bucket against the model; returns the blocks the map holds.
std::vector<const void*> check_map(const map_root* root, const model& m) {
  std::uint64_t count = root->bucket_count;
  if (count < kMinBuckets || (count & (count - 1)) != 0)
    sample::fail("the map has %llu buckets, not a power of two >= %llu", static_cast<unsigned long long>(count),
                 static_cast<unsigned long long>(kMinBuckets));
  if (root->size != m.size())
    sample::fail("the map records %llu entries, the model has %zu", static_cast<unsigned long long>(root->size),
                 m.size());
  if (root->size > 2 * count || (count > kMinBuckets && root->size < count / 2))
    sample::fail("%llu entries in %llu buckets: a resize is missing", static_cast<unsigned long long>(root->size),
                 static_cast<unsigned long long>(count));
  std::vector<const void*> blocks{root, root->buckets};
  std::set<std::uint64_t> seen;
  for (std::uint64_t b = 0; b < count; ++b) {
    for (const node* n = root->buckets[b]; n != nullptr; n = n->next) {
      if (bucket_of(n->key, count) != b)
        sample::fail("key %llu is in bucket %llu, not %llu", static_cast<unsigned long long>(n->key),
                     static_cast<unsigned long long>(b), static_cast<unsigned long long>(bucket_of(n->key, count)));
      if (!seen.insert(n->key).second) sample::fail("key %llu is in the map twice", static_cast<unsigned long long>(n->key));
      auto it = m.find(n->key);
      if (it == m.end()) sample::fail("key %llu is in the map, not in the model", static_cast<unsigned long long>(n->key));
      if (it->second != n->value)
        sample::fail("key %llu maps to %llu; the model has %llu", static_cast<unsigned long long>(n->key),
                     static_cast<unsigned long long>(n->value), static_cast<unsigned long long>(it->second));
      if (blocks.size() > m.size() + 2) sample::fail("the chains hold more nodes than the model (a cycle?)");
      blocks.push_back(n);
    }
  }
  if (seen.size() != m.size()) sample::fail("the map holds %zu keys, the model %zu", seen.size(), m.size());
  return blocks;
}

void check(larder::heap& h, const sample::arguments& a, std::uint64_t acknowledged) {
  auto* root = sample::checked_root<map_root>(h, "hashmap", acknowledged, a);
  if (root == nullptr) return;
  std::uint64_t k = root->operations;
  model m = sample::keyed_model_after(a, k);
  std::vector<const void*> blocks = check_map(root, m);
  sample::check_no_leak(h, blocks, "after recovery");
  sample::check_still_usable(h, blocks, sizeof(node));
  std::printf("hashmap: %llu operations (%llu acknowledged), %zu entries in %llu buckets: ok\n",
              static_cast<unsigned long long>(k), static_cast<unsigned long long>(acknowledged), m.size(),
              static_cast<unsigned long long>(root->bucket_count));
}

}  // namespace

int main(int argc, char** argv) { return sample::main(argc, argv, {"hashmap", run, check}); }
