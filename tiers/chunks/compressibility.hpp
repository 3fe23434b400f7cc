// Whether a page is worth a zstd attempt: a test much cheaper than the
// attempt itself (about a tenth of zstd level 1 on a page), run on every
// page a checkpoint writes.
#pragma once

namespace larder::chunks {

// The order-0 entropy of the kPageSize bytes at `page`, in bits per byte
// (0 for a page of one byte value, 8 for uniformly random bytes).
double page_entropy_bits(const void* page) noexcept;

// False when the page's byte entropy says zstd cannot save
// kMinCompressionSaving bytes: saving an eighth of the page by coding
// bytes alone needs fewer than 7 bits per byte, so above kMaxEntropyBits
// only long repeats could save it, and a page with many repeats has low
// entropy too. Measured on pages of an object heap, level 1: of those
// above 7.1 bits, 1 in 3,000 would have saved the eighth; below 6.9,
// all but 1 in 700 did.
bool worth_compressing(const void* page) noexcept;

inline constexpr double kMaxEntropyBits = 7.1;

}  // namespace larder::chunks
