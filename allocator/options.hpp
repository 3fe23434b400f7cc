// The allocator's view of the runtime options and messages. The one table
// lives in port/options.hpp, where every layer that needs an option can
// reach it; this keeps the allocator's spelling of it.
#pragma once

#include "port/options.hpp"
#include "recovery/layout.hpp"

namespace larder::alloc {

// The option's range is written in port/, which cannot see the layout.
static_assert(port::kMaxProcessReserve == layout::kMaxReserve);

using port::message;
using port::option;
using port::option_row;
using port::option_table;
using port::option_value;
using port::read_options;
using port::set_option;
using port::verbose;
using port::warning;

}  // namespace larder::alloc
