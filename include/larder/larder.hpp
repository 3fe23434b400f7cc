// larder: start here.
//
// Glossary (used the same way everywhere in larder):
//   heap      one mapped region with a self-describing layout, mapped at the
//             base address it was created at (heap.hpp)
//   segment   a 4 MiB aligned piece of a heap; belongs to one pod
//   slice     a 64 KiB piece of a segment
//   heap page a run of slices holding blocks of one size class (one or more
//             OS pages; "page" alone means a heap page)
//   OS page   the 4 KiB unit of the MMU
//   pod       a group of objects with an arena of its own (pod.hpp)
//   arena     a pod's pages and segments inside one heap
//   root      a named object that is found again after reopen
#pragma once

#include <larder/allocator.hpp>
#include <larder/containers.hpp>
#include <larder/export.hpp>
#include <larder/heap.hpp>
#include <larder/pod.hpp>
#include <larder/references.hpp>
#include <larder/status.hpp>
#include <larder/tiers.hpp>
#include <larder/version.hpp>
#include <larder/versions.hpp>
