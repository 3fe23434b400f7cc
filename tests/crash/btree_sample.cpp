// Crash-test sample: a B-tree of minimum degree 3 (order 6: 2 to 5 keys
// per node but the root) in a file heap, under the root "btree". Each
// operation is one transaction: put, erase or update a key. Insertion
// splits full nodes on the way down and erasure borrows or merges on the
// way down (CLRS 18), so one operation may touch a node per level, make a
// new root or free the old one.
// Usage (see sample_common.hpp): larder crashtest -- btree_sample [OPS [SEED]]
#include "sample_common.hpp"

#include <map>
#include <vector>

namespace {

constexpr int kMinDegree = 3;
constexpr int kMaxKeys = 2 * kMinDegree - 1;

struct node {
  std::uint32_t count;  // keys in use
  std::uint32_t leaf;
  std::uint64_t keys[kMaxKeys];
  std::uint64_t values[kMaxKeys];
  node* children[kMaxKeys + 1];
};

struct tree_root {
  std::uint64_t operations;  // transactions committed
  std::uint64_t size;
  node* top;  // nullptr when empty
};

using model = sample::keyed_model;

// Every write to a node goes after this; logging a node twice is harmless.
node* touch(larder::transaction& tx, node* n) {
  tx.snapshot(n);
  return n;
}

node* new_node(larder::transaction& tx, bool leaf) {
  node* n = tx.make<node>();
  n->count = 0;
  n->leaf = leaf ? 1 : 0;
  return n;
}

// The first index whose key is >= key.
int lower_bound(const node* n, std::uint64_t key) {
  int i = 0;
  while (i < static_cast<int>(n->count) && n->keys[i] < key) ++i;
  return i;
}

node* find(node* n, std::uint64_t key, int* index) {
  while (n != nullptr) {
    int i = lower_bound(n, key);
    if (i < static_cast<int>(n->count) && n->keys[i] == key) {
      *index = i;
      return n;
    }
    n = n->leaf ? nullptr : n->children[i];
  }
  return nullptr;
}

// Splits the full child i of `parent` around its median.
void split_child(larder::transaction& tx, node* parent, int i) {
  node* full = touch(tx, parent->children[i]);
  node* right = new_node(tx, full->leaf != 0);
  right->count = kMinDegree - 1;
  for (int j = 0; j < kMinDegree - 1; ++j) {
    right->keys[j] = full->keys[j + kMinDegree];
    right->values[j] = full->values[j + kMinDegree];
  }
  if (!full->leaf)
    for (int j = 0; j < kMinDegree; ++j) right->children[j] = full->children[j + kMinDegree];
  full->count = kMinDegree - 1;
  touch(tx, parent);
  for (int j = static_cast<int>(parent->count); j > i; --j) parent->children[j + 1] = parent->children[j];
  parent->children[i + 1] = right;
  for (int j = static_cast<int>(parent->count) - 1; j >= i; --j) {
    parent->keys[j + 1] = parent->keys[j];
    parent->values[j + 1] = parent->values[j];
  }
  parent->keys[i] = full->keys[kMinDegree - 1];
  parent->values[i] = full->values[kMinDegree - 1];
  ++parent->count;
}

void insert_nonfull(larder::transaction& tx, node* n, std::uint64_t key, std::uint64_t value) {
  while (!n->leaf) {
    int i = lower_bound(n, key);
    if (n->children[i]->count == kMaxKeys) {
      split_child(tx, n, i);
      if (key > n->keys[i]) ++i;
    }
    n = n->children[i];
  }
  touch(tx, n);
  int i = static_cast<int>(n->count);
  for (; i > 0 && n->keys[i - 1] > key; --i) {
    n->keys[i] = n->keys[i - 1];
    n->values[i] = n->values[i - 1];
  }
  n->keys[i] = key;
  n->values[i] = value;
  ++n->count;
}

void insert(larder::transaction& tx, tree_root* root, std::uint64_t key, std::uint64_t value) {
  if (root->top == nullptr) root->top = new_node(tx, true);
  if (root->top->count == kMaxKeys) {
    node* top = new_node(tx, false);
    top->children[0] = root->top;
    root->top = top;
    split_child(tx, top, 0);
  }
  insert_nonfull(tx, root->top, key, value);
  ++root->size;
}

// Moves key i of `parent` down into child i, and child i+1's first key up.
void borrow_from_right(larder::transaction& tx, node* parent, int i) {
  node* c = touch(tx, parent->children[i]);
  node* s = touch(tx, parent->children[i + 1]);
  c->keys[c->count] = parent->keys[i];
  c->values[c->count] = parent->values[i];
  if (!c->leaf) c->children[c->count + 1] = s->children[0];
  ++c->count;
  parent->keys[i] = s->keys[0];
  parent->values[i] = s->values[0];
  for (int j = 1; j < static_cast<int>(s->count); ++j) {
    s->keys[j - 1] = s->keys[j];
    s->values[j - 1] = s->values[j];
  }
  if (!s->leaf)
    for (int j = 1; j <= static_cast<int>(s->count); ++j) s->children[j - 1] = s->children[j];
  --s->count;
}

// Moves key i-1 of `parent` down into child i, and child i-1's last key up.
void borrow_from_left(larder::transaction& tx, node* parent, int i) {
  node* c = touch(tx, parent->children[i]);
  node* s = touch(tx, parent->children[i - 1]);
  for (int j = static_cast<int>(c->count); j > 0; --j) {
    c->keys[j] = c->keys[j - 1];
    c->values[j] = c->values[j - 1];
  }
  if (!c->leaf)
    for (int j = static_cast<int>(c->count) + 1; j > 0; --j) c->children[j] = c->children[j - 1];
  c->keys[0] = parent->keys[i - 1];
  c->values[0] = parent->values[i - 1];
  if (!c->leaf) c->children[0] = s->children[s->count];
  ++c->count;
  parent->keys[i - 1] = s->keys[s->count - 1];
  parent->values[i - 1] = s->values[s->count - 1];
  --s->count;
}

// Merges child i+1 and key i of `parent` into child i and frees child i+1.
void merge(larder::transaction& tx, node* parent, int i) {
  node* c = touch(tx, parent->children[i]);
  node* s = parent->children[i + 1];
  c->keys[c->count] = parent->keys[i];
  c->values[c->count] = parent->values[i];
  for (int j = 0; j < static_cast<int>(s->count); ++j) {
    c->keys[c->count + 1 + j] = s->keys[j];
    c->values[c->count + 1 + j] = s->values[j];
  }
  if (!c->leaf)
    for (int j = 0; j <= static_cast<int>(s->count); ++j) c->children[c->count + 1 + j] = s->children[j];
  c->count += s->count + 1;
  for (int j = i + 1; j < static_cast<int>(parent->count); ++j) {
    parent->keys[j - 1] = parent->keys[j];
    parent->values[j - 1] = parent->values[j];
  }
  for (int j = i + 2; j <= static_cast<int>(parent->count); ++j) parent->children[j - 1] = parent->children[j];
  --parent->count;
  tx.destroy(s);
}

// Makes child i of `parent` (touched) hold at least kMinDegree keys;
// returns the index of the child that now covers its range.
int fill_child(larder::transaction& tx, node* parent, int i) {
  if (parent->children[i]->count >= kMinDegree) return i;
  if (i > 0 && parent->children[i - 1]->count >= kMinDegree) {
    borrow_from_left(tx, parent, i);
  } else if (i < static_cast<int>(parent->count) && parent->children[i + 1]->count >= kMinDegree) {
    borrow_from_right(tx, parent, i);
  } else if (i < static_cast<int>(parent->count)) {
    merge(tx, parent, i);
  } else {
    merge(tx, parent, i - 1);
    return i - 1;
  }
  return i;
}

// Removes `key`, which is in the subtree of `n`, from it (CLRS 18.3). `n`
// has at least kMinDegree keys unless it is the top.
void erase_from(larder::transaction& tx, node* n, std::uint64_t key) {
  for (;;) {
    touch(tx, n);
    int i = lower_bound(n, key);
    bool here = i < static_cast<int>(n->count) && n->keys[i] == key;
    if (here && n->leaf) {
      for (int j = i + 1; j < static_cast<int>(n->count); ++j) {
        n->keys[j - 1] = n->keys[j];
        n->values[j - 1] = n->values[j];
      }
      --n->count;
      return;
    }
    if (here) {
      node* left = n->children[i];
      node* right = n->children[i + 1];
      if (left->count >= kMinDegree || right->count >= kMinDegree) {
        // Replace by the predecessor (or successor) and erase that instead.
        bool from_left = left->count >= kMinDegree;
        node* m = from_left ? left : right;
        while (!m->leaf) m = from_left ? m->children[m->count] : m->children[0];
        int at = from_left ? static_cast<int>(m->count) - 1 : 0;
        n->keys[i] = m->keys[at];
        n->values[i] = m->values[at];
        key = m->keys[at];
        n = from_left ? left : right;
        continue;
      }
      merge(tx, n, i);
      n = left;
      continue;
    }
    if (n->leaf) return;  // not in the tree (erase() looks first, so never)
    n = n->children[fill_child(tx, n, i)];
  }
}

void erase(larder::transaction& tx, tree_root* root, std::uint64_t key) {
  erase_from(tx, root->top, key);
  --root->size;
  node* top = root->top;
  if (top->count == 0) {
    root->top = top->leaf ? nullptr : top->children[0];
    tx.destroy(top);
  }
}

void perform(larder::transaction& tx, tree_root* root, const sample::keyed_op& op) {
  tx.snapshot(root);
  ++root->operations;
  int index = 0;
  node* n = find(root->top, op.key, &index);
  switch (op.kind) {
    case sample::op_kind::put:
    case sample::op_kind::update:
      if (n != nullptr) {
        tx.snapshot(&n->values[index]);
        n->values[index] = op.value;
      } else if (op.kind == sample::op_kind::put) {
        insert(tx, root, op.key, op.value);
      }
      break;
    case sample::op_kind::erase:
      if (n != nullptr) erase(tx, root, op.key);
      break;
  }
}

tree_root* make_root(larder::heap& h) {
  larder::transaction tx(h);
  return h.root<tree_root>("btree", tree_root{0, 0, nullptr});
}

void run(larder::heap& h, const sample::arguments& a) { sample::run_keyed(h, a, make_root(h), perform); }

// The tree's invariants: keys strictly increasing in order and within
// their parent's bounds, 2..5 keys per node but the top (1..5), every
// leaf at the same depth, children exactly on inner nodes.
struct walker {
  const model& m;
  model::const_iterator next;
  std::vector<const void*> blocks;
  int leaf_depth = -1;

  void walk(const node* n, int depth, bool is_top) {
    blocks.push_back(n);
    if (blocks.size() > m.size() + 2) sample::fail("the tree has more nodes than keys (a cycle?)");
    if (n->count > kMaxKeys || n->count < (is_top ? 1u : kMinDegree - 1u))
      sample::fail("a node at depth %d holds %u keys", depth, n->count);
    if (n->leaf > 1) sample::fail("a node at depth %d has leaf flag %u", depth, n->leaf);
    if (n->leaf && leaf_depth < 0) leaf_depth = depth;
    if (n->leaf && depth != leaf_depth) sample::fail("leaves at depths %d and %d", leaf_depth, depth);
    for (std::uint32_t i = 0; i <= n->count; ++i) {
      if (!n->leaf) {
        if (n->children[i] == nullptr) sample::fail("inner node at depth %d lacks child %u", depth, i);
        walk(n->children[i], depth + 1, false);
      }
      if (i == n->count) break;
      if (next == m.end())
        sample::fail("key %llu is in the tree after the model's last key", static_cast<unsigned long long>(n->keys[i]));
      if (n->keys[i] != next->first || n->values[i] != next->second)
        sample::fail("in order, the tree has (%llu, %llu) where the model has (%llu, %llu)",
                     static_cast<unsigned long long>(n->keys[i]), static_cast<unsigned long long>(n->values[i]),
                     static_cast<unsigned long long>(next->first), static_cast<unsigned long long>(next->second));
      ++next;
    }
  }
};

void check(larder::heap& h, const sample::arguments& a, std::uint64_t acknowledged) {
  auto* root = sample::checked_root<tree_root>(h, "btree", acknowledged, a);
  if (root == nullptr) return;
  std::uint64_t k = root->operations;
  model m = sample::keyed_model_after(a, k);
  if (root->size != m.size())
    sample::fail("the tree records %llu keys, the model has %zu", static_cast<unsigned long long>(root->size), m.size());
  walker w{m, m.begin(), {root}};
  if (root->top != nullptr) w.walk(root->top, 0, true);
  if (w.next != m.end())
    sample::fail("the tree ends before the model's key %llu", static_cast<unsigned long long>(w.next->first));
  sample::check_no_leak(h, w.blocks, "after recovery");
  sample::check_still_usable(h, w.blocks, sizeof(node));
  std::printf("btree: %llu operations (%llu acknowledged), %zu keys in %zu nodes, depth %d: ok\n",
              static_cast<unsigned long long>(k), static_cast<unsigned long long>(acknowledged), m.size(),
              w.blocks.size() - 1, w.leaf_depth + 1);
}

}  // namespace

int main(int argc, char** argv) { return sample::main(argc, argv, {"btree", run, check}); }
