// Crash-test sample: a singly linked list in a file heap, under the root
// "list". Each operation is one transaction: insert a node at a random
// position, erase the node at one, or update one's value. Built a second
// time with SAMPLE_SKIP_SNAPSHOT as broken_list_sample, whose updates write
// in place without a snapshot: the driver must catch it.
// Usage (see sample_common.hpp): larder crashtest -- list_sample [OPS [SEED]]
#include "sample_common.hpp"

#include <utility>
#include <vector>

namespace {

struct node {
  std::uint64_t key;
  std::uint64_t value;
  node* next;
};

struct list_root {
  std::uint64_t operations;  // transactions committed
  std::uint64_t length;
  node* head;
};

using model = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

enum class list_op_kind { insert, erase, update };
struct list_op {
  list_op_kind kind;
  std::uint64_t position;
  std::uint64_t key;
  std::uint64_t value;
};

// Operation i of the workload, given the list as it is before it. A
// position past the end (only when the list is empty) makes erase and
// update do nothing.
list_op next_op(sample::random& r, std::uint64_t i, std::size_t length) {
  std::uint64_t roll = r.below(4);
  list_op op{roll < 2 ? list_op_kind::insert : roll == 2 ? list_op_kind::erase : list_op_kind::update, 0, i,
             r.next()};
  op.position = r.below(op.kind == list_op_kind::insert ? length + 1 : length);
  return op;
}

void apply_to_model(model& m, const list_op& op) {
  switch (op.kind) {
    case list_op_kind::insert:
      m.insert(m.begin() + static_cast<std::ptrdiff_t>(op.position), {op.key, op.value});
      break;
    case list_op_kind::erase:
      if (!m.empty()) m.erase(m.begin() + static_cast<std::ptrdiff_t>(op.position));
      break;
    case list_op_kind::update:
      if (!m.empty()) m[op.position].second = op.value;
      break;
  }
}

// The link that points at the node at `position` (or at the end).
node** link_at(list_root* root, std::uint64_t position) {
  node** link = &root->head;
  for (std::uint64_t i = 0; i < position; ++i) link = &(*link)->next;
  return link;
}

void perform(larder::transaction& tx, list_root* root, const list_op& op) {
  tx.snapshot(root);
  ++root->operations;
  if (op.kind != list_op_kind::insert && root->length == 0) return;
  node** link = link_at(root, op.position);
  switch (op.kind) {
    case list_op_kind::insert: {
      node* n = tx.make<node>(node{op.key, op.value, *link});
      tx.snapshot(link);
      *link = n;
      ++root->length;
      break;
    }
    case list_op_kind::erase: {
      node* gone = *link;
      tx.snapshot(link);
      *link = gone->next;
      tx.destroy(gone);
      --root->length;
      break;
    }
    case list_op_kind::update:
#ifndef SAMPLE_SKIP_SNAPSHOT
      tx.snapshot(&(*link)->value);
#endif
      (*link)->value = op.value;
      break;
  }
}

list_root* make_root(larder::heap& h) {
  larder::transaction tx(h);
  return h.root<list_root>("list", list_root{0, 0, nullptr});
}

void run(larder::heap& h, const sample::arguments& a) {
  sample::random r(a.seed);
  model m;  // an operation's position depends on the list's length before it
  auto next = [&](std::uint64_t i) {
    list_op op = next_op(r, i, m.size());
    apply_to_model(m, op);
    return op;
  };
  sample::run_operations(h, make_root(h), a.operations, next, perform);
}

// Walks the list against the model; returns the blocks it holds.
std::vector<const void*> check_list(const list_root* root, const model& m) {
  std::vector<const void*> blocks{root};
  if (root->length != m.size())
    sample::fail("the list records length %llu, the model has %zu", static_cast<unsigned long long>(root->length),
                 m.size());
  const node* n = root->head;
  for (std::size_t i = 0; i < m.size(); ++i, n = n->next) {
    if (n == nullptr) sample::fail("the list ends after %zu nodes; the model has %zu", i, m.size());
    if (n->key != m[i].first || n->value != m[i].second)
      sample::fail("node %zu is (%llu, %llu); the model has (%llu, %llu)", i, static_cast<unsigned long long>(n->key),
                   static_cast<unsigned long long>(n->value), static_cast<unsigned long long>(m[i].first),
                   static_cast<unsigned long long>(m[i].second));
    blocks.push_back(n);
  }
  if (n != nullptr) sample::fail("the list goes on past the model's %zu nodes", m.size());
  return blocks;
}

void check(larder::heap& h, const sample::arguments& a, std::uint64_t acknowledged) {
  auto* root = sample::checked_root<list_root>(h, "list", acknowledged, a);
  if (root == nullptr) return;
  std::uint64_t k = root->operations;
  sample::random r(a.seed);
  model m;
  for (std::uint64_t i = 0; i < k; ++i) apply_to_model(m, next_op(r, i, m.size()));
  std::vector<const void*> blocks = check_list(root, m);
  sample::check_no_leak(h, blocks, "after recovery");
  sample::check_still_usable(h, blocks, sizeof(node));
  std::printf("list: %llu operations (%llu acknowledged), %zu nodes: ok\n", static_cast<unsigned long long>(k),
              static_cast<unsigned long long>(acknowledged), m.size());
}

}  // namespace

int main(int argc, char** argv) { return sample::main(argc, argv, {"list", run, check}); }
