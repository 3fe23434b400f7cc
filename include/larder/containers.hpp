// Standard containers whose every allocation, nested ones included, comes
// from a larder pod: larder::string, wstring, vector, deque, list, map, set,
// unordered_map and unordered_set, plus std::hash for larder's strings.
// Start with "Which pod a container allocates from" below; docs/containers.md
// has the design and the corner cases.
#pragma once

#include <larder/allocator.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <scoped_allocator>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace larder {

// Which pod a container allocates from
// ------------------------------------
// A container holds a larder::allocator, and the allocator holds one pod
// handle, fixed when the container is constructed: the pod given to it
// (`larder::vector<int> v(larder::allocator<int>(p))`), else the calling
// thread's current pod (pod_scope), else none, which means the process heap
// (operator new) and nothing that survives the process. So:
//
//   auto* m = h.root<larder::map<larder::string, larder::vector<int>>>("m");
//
// constructs the map inside a pod_scope of h's default pod (heap::root
// does that); every node, key and vector inserted later, from any thread
// and with or without a pod_scope, allocates from the map's stored pod.
//
// The containers below use std::scoped_allocator_adaptor, so the container
// hands its allocator down to the elements it constructs (uses-allocator
// construction): in larder::map<larder::string, larder::vector<larder::string>>
// the strings inside the vectors are in the map's pod too, and an element
// built from a temporary of another pod (or of the process heap) is copied
// into the container's pod. A type of your own gets this only if it says it
// takes an allocator (an `allocator_type` member and allocator-extended
// constructors); otherwise its members are constructed with the current
// pod, like any object.
//
// Propagation (larder::allocator's, which the adaptor passes on): copy and
// move assignment keep the target's pod, copying the elements in when the
// pods differ, so `*m = std::move(built_elsewhere)` leaves *m in its pod;
// copy construction takes the source's pod; swap exchanges the allocators
// with the blocks, so swap only containers of the same pod.
//
// Lifetime: a container frees into its pod's heap, so one that holds blocks
// of a heap must be destroyed (or left alone) before that heap is closed.
// Thread-safety is that of the standard containers: concurrent reads are
// safe, a write needs exclusive access. The pod allocator itself may be
// used from any number of threads.

// The allocator the containers use; scoped so that nested containers and
// strings get the container's pod.
template <class T>
using scoped_allocator = std::scoped_allocator_adaptor<allocator<T>>;

// Characters need no scoping: a string holds no allocator-aware elements.
using string = std::basic_string<char, std::char_traits<char>, allocator<char>>;
using wstring = std::basic_string<wchar_t, std::char_traits<wchar_t>, allocator<wchar_t>>;

template <class T>
using vector = std::vector<T, scoped_allocator<T>>;
template <class T>
using deque = std::deque<T, scoped_allocator<T>>;
template <class T>
using list = std::list<T, scoped_allocator<T>>;

// std::less<> by default, so a map or set of larder::string is searched by
// std::string_view or a literal without making a string first.
template <class Key, class Value, class Compare = std::less<>>
using map = std::map<Key, Value, Compare, scoped_allocator<std::pair<const Key, Value>>>;
template <class Key, class Compare = std::less<>>
using set = std::set<Key, Compare, scoped_allocator<Key>>;

// Heterogeneous lookup (find(std::string_view)) needs both the hash and the
// equality to be transparent: std::hash<larder::string> below is, and
// std::equal_to<> is.
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<>>
using unordered_map = std::unordered_map<Key, Value, Hash, KeyEqual, scoped_allocator<std::pair<const Key, Value>>>;
template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<>>
using unordered_set = std::unordered_set<Key, Hash, KeyEqual, scoped_allocator<Key>>;

}  // namespace larder

// The standard hashes basic_string only with std::allocator (and pmr); these
// hash larder's strings as their std::basic_string_view, which is what
// std::hash<std::string> gives for the same characters. Transparent: they
// also take string views and literals, for heterogeneous lookup.
template <>
struct std::hash<larder::string> {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

template <>
struct std::hash<larder::wstring> {
  using is_transparent = void;
  std::size_t operator()(std::wstring_view text) const noexcept { return std::hash<std::wstring_view>{}(text); }
};
