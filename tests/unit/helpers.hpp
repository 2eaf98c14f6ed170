// SPDX-License-Identifier: Apache-2.0
// Shared by the core's unit tests.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>

#include "abi.hpp"
#include "register.hpp"
#include "ring.hpp"

namespace luring::test {

using namespace luring::uring;

// Entries in /proc/self/fd and io_uring mappings in /proc/self/maps: leak detectors.
int fd_count();
int map_count();

// A ring with `entries` and `flags`, checked to have opened.
Ring make_ring(std::uint32_t entries, std::uint32_t flags = 0);

// True if the running kernel supports `op`; otherwise prints why the test is skipped.
// doctest's skip decorator is fixed at registration time, hence this run-time check.
bool require_op(Op op, const char* what);

// Submits everything queued and reaps exactly one CQE (waiting for it).
Cqe submit_and_reap_one(Ring& ring);

}  // namespace luring::test
